/**
 * `stowage build` against dockerd 20.10's classic builder (DOCKER_BUILDKIT=0 with the docker CLI 28), on the
 * same contexts: the config fields, layer count, history rows (created_by and empty_layer, content hashes
 * included), the checked-out tree (docker's side read by skopeo + umoci), the step output and the cache
 * hits of a second build must be equal. The built image is then pushed and read back by skopeo.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from '../../src/build/index.js';
import { openStowage, type Stowage } from '../../src/images/index.js';
import type { ImageConfig } from '../../src/oci/index.js';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { comparableBuildLines, makeContext, treeFingerprint } from './fixtures.js';

const run = promisify(execFile);

let dockerd: Dockerd;
let registry: Registry;
let store: Stowage;
let work: string;
let ctxDir: string;

async function docker(args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { env: { ...process.env, DOCKER_HOST: `unix://${dockerd.socket}`, DOCKER_BUILDKIT: '0', DOCKER_CONFIG: path.join(work, 'docker-config') }, maxBuffer: 64 << 20 });
  return stdout;
}


async function dockerBuild(file: string, tag: string, extra: string[] = []): Promise<string> {
  return docker(['build', '-f', path.join(ctxDir, file), '-t', tag, ...extra, ctxDir]);
}

async function stowageBuild(file: string, tag: string, opts: { target?: string; buildArgs?: Record<string, string>; labels?: Record<string, string> } = {}): Promise<{ out: string; hits: number; misses: number }> {
  const lines: string[] = [];
  const r = await build(store, { context: ctxDir, dockerfile: path.join(ctxDir, file), tags: [tag], out: (l) => lines.push(l), ...opts });
  return { out: lines.join('\n') + '\n', hits: r.cacheHits, misses: r.cacheMisses };
}

/** docker's image config and layer tar files, from `docker save`, and its merged tree through skopeo + umoci. */
async function dockerImage(tag: string): Promise<{ config: ImageConfig; tree: string[] }> {
  const dir = fs.mkdtempSync(path.join(work, 'docker-'));
  await run('sh', ['-c', `DOCKER_HOST=unix://${dockerd.socket} docker save ${tag} > ${dir}/image.tar`]);
  await run('tar', ['-xf', `${dir}/image.tar`, '-C', dir, 'manifest.json']);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Array<{ Config: string }>;
  await run('tar', ['-xf', `${dir}/image.tar`, '-C', dir, manifest[0]!.Config]);
  const config = JSON.parse(fs.readFileSync(path.join(dir, manifest[0]!.Config), 'utf8')) as ImageConfig;
  await run('skopeo', ['copy', '-q', `docker-archive:${dir}/image.tar`, `oci:${dir}/oci:x`]);
  await run('umoci', ['unpack', '--image', `${dir}/oci:x`, `${dir}/bundle`]);
  return { config, tree: treeFingerprint(path.join(dir, 'bundle', 'rootfs')) };
}

async function stowageImage(tag: string): Promise<{ config: ImageConfig; tree: string[] }> {
  const img = await store.getImage(tag);
  const config = await img.manifest!.readConfig();
  const dir = path.join(fs.mkdtempSync(path.join(work, 'ours-')), 'tree');
  await store.checkout(tag, dir);
  return { config, tree: treeFingerprint(dir) };
}

const FIELDS = ['Env', 'Labels', 'WorkingDir', 'User', 'ExposedPorts', 'Entrypoint', 'Cmd', 'Volumes', 'Healthcheck', 'StopSignal', 'Shell', 'OnBuild'];

/** The compared config fields, with docker's null / empty values dropped (the same image either way). */
function fields(c: ImageConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of FIELDS) {
    const v = c.config?.[k];
    if (v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) continue;
    out[k] = v;
  }
  return out;
}

const history = (c: ImageConfig): Array<[string, boolean]> => (c.history ?? []).map((h) => [h.created_by ?? '', h.empty_layer === true]);

async function expectSameImage(tag: string): Promise<void> {
  const [theirs, ours] = await Promise.all([dockerImage(tag), stowageImage(tag)]);
  expect(fields(ours.config)).toEqual(fields(theirs.config));
  expect(ours.config.rootfs.diff_ids.length).toBe(theirs.config.rootfs.diff_ids.length);
  expect(history(ours.config)).toEqual(history(theirs.config));
  expect(ours.tree).toEqual(theirs.tree);
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-build-dockerd-'));
  ctxDir = path.join(work, 'ctx');
  makeContext(ctxDir);
  [dockerd, registry] = await Promise.all([startDockerd(), startRegistry()]);
  store = await openStowage({ root: path.join(work, 'store') });
});

afterAll(async () => {
  await store?.close();
  await Promise.all([dockerd?.stop(), registry?.stop()]);
  fs.rmSync(work, { recursive: true, force: true });
});

describe('stowage build vs dockerd 20.10 classic builder', () => {
  it('builds a base image from scratch with ONBUILD triggers identically', async () => {
    const theirs = await dockerBuild('Dockerfile.base', 'base:1');
    const ours = await stowageBuild('Dockerfile.base', 'base:1');
    expect(comparableBuildLines(ours.out)).toEqual(comparableBuildLines(theirs));
    await expectSameImage('base:1');
  });

  it('builds a multi-stage Dockerfile using every supported instruction identically', async () => {
    const theirs = await dockerBuild('Dockerfile.main', 'main:1', ['--build-arg', 'WHO=me']);
    const ours = await stowageBuild('Dockerfile.main', 'main:1', { buildArgs: { WHO: 'me' } });
    expect(comparableBuildLines(ours.out)).toEqual(comparableBuildLines(theirs));
    expect(ours.out).toContain('# Executing 2 build triggers');
    await expectSameImage('main:1');
  });

  it('builds an intermediate stage with --target identically', async () => {
    const theirs = await dockerBuild('Dockerfile.main', 'stage:1', ['--target', 'build', '--build-arg', 'WHO=me']);
    const ours = await stowageBuild('Dockerfile.main', 'stage:1', { target: 'build', buildArgs: { WHO: 'me' } });
    expect(comparableBuildLines(ours.out)).toEqual(comparableBuildLines(theirs));
    expect(ours.misses).toBe(0); // every step was made by the previous build
    await expectSameImage('stage:1');
  });

  it('honours the escape directive, continuations, substitution defaults and --label identically', async () => {
    const theirs = await dockerBuild('Dockerfile.escape', 'escape:1', ['--label', "built.by=a 'quoted' test"]);
    const ours = await stowageBuild('Dockerfile.escape', 'escape:1', { labels: { 'built.by': "a 'quoted' test" } });
    expect(comparableBuildLines(ours.out)).toEqual(comparableBuildLines(theirs));
    await expectSameImage('escape:1');
  });

  it('builds legacy forms, globs, symlink sources, numeric owners and shell changes identically', async () => {
    const theirs = await dockerBuild('Dockerfile.more', 'more:1');
    const ours = await stowageBuild('Dockerfile.more', 'more:1');
    expect(comparableBuildLines(ours.out)).toEqual(comparableBuildLines(theirs));
    await expectSameImage('more:1');
  });

  it('answers a second build from the cache for every step, as docker does', async () => {
    const theirs = await dockerBuild('Dockerfile.main', 'main:1', ['--build-arg', 'WHO=me']);
    const ours = await stowageBuild('Dockerfile.main', 'main:1', { buildArgs: { WHO: 'me' } });
    expect(comparableBuildLines(ours.out)).toEqual(comparableBuildLines(theirs));
    expect(ours.misses).toBe(0);
    expect(ours.hits).toBe(comparableBuildLines(theirs).filter((l) => l === ' ---> Using cache').length);
  });

  it('pushes the built image to a registry, where skopeo reads the same config', async () => {
    const dest = `${registry.host}/build/main:1`;
    await store.tag('main:1', dest);
    await store.push(dest);
    // --raw: the config blob's own bytes (without it skopeo re-encodes times the Go way).
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--config', '--tls-verify=false', `docker://${dest}`]);
    const remote = JSON.parse(stdout) as ImageConfig;
    const local = await (await store.getImage('main:1')).manifest!.readConfig();
    expect(remote).toEqual(local);
    expect(fields(remote)).toEqual(fields((await dockerImage('main:1')).config));
  });
});
