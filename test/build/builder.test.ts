/**
 * The image service's builder methods (commitBuildStep, makeImageCache, getImageAndReleasableLayer,
 * createLayerFromImage, layerFolders, layerMountId, cleanup) and `stowage build`'s own behaviour: cache
 * hits and misses, rebuild from the step that copies a changed file, SOURCE_DATE_EPOCH, --chmod, ADD
 * archives, refusals — on a real store, no daemon.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build, type BuildOptions } from '../../src/build/index.js';
import { openStowage, type Stowage } from '../../src/images/index.js';
import { openMetadata } from '../../src/metadata/index.js';
import { BIN, ensureBuilt } from '../cli/binary.js';
import { runCli } from '../cli/in-process.js';
import { makeContext, treeFingerprint } from './fixtures.js';

let work: string;
let ctxDir: string;
let store: Stowage;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-builder-'));
  ctxDir = path.join(work, 'ctx');
  makeContext(ctxDir);
  store = await openStowage({ root: path.join(work, 'store') });
  await build(store, { context: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile.base'), tags: ['base:1'] });
});

afterAll(async () => {
  await store?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

function leases(root: string): string[] {
  const md = openMetadata(root);
  try { return md.leases.list().map((l) => l.labels['io.stowage.purpose'] ?? l.id); } finally { md.close(); }
}

async function buildText(dockerfile: string, opts: Partial<BuildOptions> = {}, s: Stowage = store, context = ctxDir) {
  const lines: string[] = [];
  const r = await build(s, { context, dockerfileText: dockerfile, out: (l) => lines.push(l), ...opts });
  return { ...r, out: lines };
}

describe('builder methods', () => {
  it('commitBuildStep: a config-only step is an empty-layer child with the builder labels and a create event', async () => {
    const parent = (await store.getImage('base:1')).id;
    const since = new Date(Date.now() - 1000);
    const runConfig = { Env: ['PATH=/bin'], Cmd: ['/bin/sh', '-c', '#(nop) ', 'LABEL a=b'], Labels: { a: 'b' } };
    const r = await store.commitBuildStep({ parent, config: { ...runConfig, Cmd: null }, containerConfig: runConfig });
    expect(r.emptyLayer).toBe(true);
    const img = await store.getImage(r.id);
    expect(img.name).toBe(`dangling@${r.id}`);
    expect(img.labels['org.mobyproject.image.parent']).toBe(parent);
    const cfg = await img.manifest!.readConfig();
    expect(cfg.history!.at(-1)).toMatchObject({ created_by: '/bin/sh -c #(nop)  LABEL a=b', empty_layer: true });
    expect(cfg.rootfs.diff_ids).toEqual((await (await store.getImage(parent)).manifest!.readConfig()).rootfs.diff_ids);
    expect(await store.children(parent)).toContain(r.id);
    const events = [];
    for await (const e of store.events({ since, filters: { event: ['create'] } })) events.push(e.Actor.ID);
    expect(events).toContain(r.id);
  });

  it('createLayerFromImage on scratch, layerFolders, layerMountId, and a commit of what was written', async () => {
    const c = await store.createLayerFromImage('');
    expect(c.imageId).toBeUndefined();
    const folders = await store.layerFolders(c.id);
    expect(folders).toHaveLength(1);
    expect(await store.layerMountId(c.id)).toBe(c.snapshotKey);
    fs.writeFileSync(path.join(folders[0]!, 'hello'), 'hi\n');
    const runConfig = { Cmd: ['/bin/sh', '-c', '#(nop) COPY file:x in / '] };
    const r = await store.commitBuildStep({ container: c.id, config: {}, containerConfig: runConfig });
    await store.releaseLayer(c.id);
    expect(r.emptyLayer).toBe(false);
    const img = await store.getImage(r.id);
    expect(img.labels['org.mobyproject.image.fromscratch']).toBe('1');
    expect((await img.manifest!.manifestDoc()).layers).toHaveLength(1);
    const out = path.join(work, 'scratch-tree');
    await store.checkout(r.id, out);
    expect(fs.readFileSync(path.join(out, 'hello'), 'utf8')).toBe('hi\n');
  });

  it('makeImageCache: same parent and run config hit (sets in any order), other order or platform miss', async () => {
    const parent = (await store.getImage('base:1')).id;
    const runConfig = { Env: ['A=1', 'B=2'], ExposedPorts: { '80/tcp': {}, '53/udp': {} }, Labels: { x: '1', y: '2' }, Cmd: ['/bin/sh', '-c', '#(nop) ', 'EXPOSE 80'] };
    const made = await store.commitBuildStep({ parent, config: runConfig, containerConfig: runConfig });
    const cache = await store.makeImageCache();
    expect(await cache.getCache(parent, { ...runConfig, ExposedPorts: { '53/udp': {}, '80/tcp': {} }, Labels: { y: '2', x: '1' } })).toBe(made.id);
    expect(await cache.getCache(parent, { ...runConfig, Env: ['B=2', 'A=1'] })).toBeUndefined();
    expect(await cache.getCache(parent, { ...runConfig, Cmd: ['/bin/sh', '-c', '#(nop) ', 'EXPOSE 81'] })).toBeUndefined();
    const other = process.arch === 'arm64' ? 'amd64' : 'arm64';
    expect(await cache.getCache(parent, runConfig, { os: 'linux', architecture: other })).toBeUndefined();
    // docker skips a --cache-from image it cannot find
    expect(await (await store.makeImageCache({ cacheFrom: ['no-such-image:1'] })).getCache(parent, { ...runConfig, Env: ['B=2', 'A=1'] })).toBeUndefined();
  });

  it('getImageAndReleasableLayer: a mounted tree until released; nothing held after a failure, a release or cleanup', async () => {
    const root = store.root;
    const before = leases(root).length;
    const got = await store.getImageAndReleasableLayer('base:1');
    const dir = await got.layer.mount();
    expect(fs.readFileSync(path.join(dir, 'etc/group'), 'utf8')).toContain('staff');
    expect(leases(root).length).toBe(before + 1);
    await got.layer.release();
    await got.layer.release(); // idempotent
    expect(fs.existsSync(dir)).toBe(false);
    await expect(got.layer.mount()).rejects.toMatchObject({ code: 'FailedPrecondition' });
    expect(leases(root).length).toBe(before);

    await expect(store.getImageAndReleasableLayer('missing:1', { pullPolicy: 'never' })).rejects.toMatchObject({ code: 'NotFound' });
    expect(leases(root).length).toBe(before);

    const scratch = await store.getImageAndReleasableLayer('');
    expect(scratch.image).toBeUndefined();
    expect(fs.readdirSync(await scratch.layer.mount())).toEqual([]);
    const held = await store.getImageAndReleasableLayer('base:1');
    const heldDir = await held.layer.mount();
    await store.cleanup();
    expect(fs.existsSync(heldDir)).toBe(false);
    expect(leases(root).length).toBe(before);
  });

  it('removes working directories and build containers a dead process left when a store opens, never a live one\'s', async () => {
    const root = path.join(work, 'store-sweep');
    const first = await openStowage({ root });
    const live = first.scratchDir('layer');
    const liveStep = await first.createLayer(undefined, '', { name: first.scratchName('build-step') });
    const deadStep = await first.createLayer(undefined, '', { name: 'build-step-4194305-0123456789abcdef' });
    const userNamed = await first.createLayer(undefined, '', { name: 'mine' });
    await first.close();
    fs.mkdirSync(live);
    // A pid that cannot be running: above the kernel's pid_max.
    const dead = path.join(root, 'tmp', 'build-context-4194305-0123456789abcdef');
    fs.mkdirSync(path.join(dead, 'sub'), { recursive: true });
    fs.writeFileSync(`${dead}.tar`, 'spool');
    const other = path.join(root, 'tmp', 'squash-0123456789abcdef');
    fs.mkdirSync(other);
    const again = await openStowage({ root });
    const left = (await again.listLayers()).map((c) => c.id).sort();
    await again.close();
    expect(left).toEqual([liveStep.id, userNamed.id].sort());
    expect(left).not.toContain(deadStep.id);
    expect(fs.existsSync(dead)).toBe(false);
    expect(fs.existsSync(`${dead}.tar`)).toBe(false);
    expect(fs.existsSync(live)).toBe(true);
    expect(fs.existsSync(other)).toBe(true);
  });
});

describe('stowage build', () => {
  it('hits the cache for every step of an unchanged build and rebuilds from the step that copies a changed file', async () => {
    const dir = path.join(work, 'ctx-cache');
    fs.cpSync(ctxDir, dir, { recursive: true });
    const df = 'FROM scratch\nCOPY a.txt /cache-a\nCOPY b.txt /cache-b\nLABEL cache=1\n';
    const first = await buildText(df, {}, store, dir);
    expect(first).toMatchObject({ cacheHits: 0, cacheMisses: 3 });
    const second = await buildText(df, {}, store, dir);
    expect(second).toMatchObject({ cacheHits: 3, cacheMisses: 0, id: first.id });
    expect(second.out.filter((l) => l === ' ---> Using cache')).toHaveLength(3);
    fs.writeFileSync(path.join(dir, 'b.txt'), 'changed\n');
    const third = await buildText(df, {}, store, dir);
    expect(third).toMatchObject({ cacheHits: 1, cacheMisses: 2 });
    expect(third.id).not.toBe(first.id);
    const nocache = await buildText(df, { noCache: true }, store, dir);
    expect(nocache).toMatchObject({ cacheHits: 0, cacheMisses: 3 });
  });

  it('uses --cache-from images that carry no builder records (saved and loaded elsewhere): whole or restored step by step', async () => {
    const df = 'FROM scratch\nCOPY a.txt /cf-a\nENV CF=1\nCOPY b.txt /cf-b\n';
    const built = await buildText(df, { tags: ['cf:1'] });
    const tarPath = path.join(work, 'cf.tar');
    const ws = fs.createWriteStream(tarPath);
    const written = once(ws, 'close');
    await store.save(['cf:1'], ws);
    await written;
    const other = await openStowage({ root: path.join(work, 'store-cf') });
    try {
      await other.load(fs.createReadStream(tarPath));
      const loadedId = (await other.getImage('cf:1')).id;
      expect((await buildText(df, { noCache: false }, other)).cacheHits).toBe(0); // no builder records: no local cache
      const same = await buildText(df, { cacheFrom: ['cf:1'] }, other);
      expect(same).toMatchObject({ cacheHits: 3, cacheMisses: 0, id: loadedId });
      const diverging = await buildText('FROM scratch\nCOPY a.txt /cf-a\nENV CF=1\nLABEL other=1\n', { cacheFrom: ['cf:1'] }, other);
      expect(diverging).toMatchObject({ cacheHits: 2, cacheMisses: 1 });
      const history = await other.history(diverging.id);
      expect(history.map((h) => h.CreatedBy)).toEqual([
        '/bin/sh -c #(nop)  LABEL other=1', '/bin/sh -c #(nop)  ENV CF=1', expect.stringMatching(/^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \/cf-a $/),
      ]);
      const tree = path.join(work, 'cf-tree');
      await other.checkout(diverging.id, tree);
      expect(fs.readdirSync(tree)).toEqual(['cf-a']);
    } finally {
      await other.close();
    }
    expect(built.cacheMisses).toBe(3);
  });

  it('is reproducible: the same context and Dockerfile with SOURCE_DATE_EPOCH give the same image in two stores', async () => {
    const other = await openStowage({ root: path.join(work, 'store2') });
    try {
      const df = 'FROM scratch\nCOPY src /src\nWORKDIR /app\nCOPY --chmod=600 a.txt .\nENV A=1\n';
      const a = await buildText(df, { sourceDateEpoch: 1_700_000_000 });
      const b = await buildText(df, { sourceDateEpoch: 1_700_000_000 }, other);
      expect(b.id).toBe(a.id);
      const cfg = await (await store.getImage(a.id)).manifest!.readConfig();
      expect(cfg.created).toBe('2023-11-14T22:13:20.000Z');
      const tree = path.join(work, 'repro-tree');
      await store.checkout(a.id, tree);
      expect(treeFingerprint(tree).find((l) => l.startsWith('app/a.txt '))).toMatch(/^app\/a.txt f 600 0:0 /);
    } finally {
      await other.close();
    }
  });

  it('extracts local archives with ADD, honours .dockerignore, multi-stage references and unused build-arg warnings', async () => {
    const df = 'ARG UNUSED_DEFAULT=1\nFROM scratch AS one\nADD pkg.tar.gz /x/\nFROM one\nCOPY --from=one /x/inner/f /copied\nCOPY logs /logs\n';
    const r = await buildText(df, { buildArgs: { NOT_DECLARED: 'x' }, tags: ['multi:1'] });
    expect(r.out).toContain('[Warning] One or more build-args [NOT_DECLARED] were not consumed');
    expect(r.out.at(-1)).toBe('Successfully tagged multi:1');
    const tree = path.join(work, 'multi-tree');
    await store.checkout('multi:1', tree);
    const fp = treeFingerprint(tree).map((l) => l.split(' ').slice(0, 4).join(' '));
    expect(fp).toEqual(['copied f 600 0:0', 'logs d 755 0:0', 'logs/keep.log f 644 0:0', 'x d 755 0:0', 'x/inner d 755 0:0', 'x/inner/f f 600 0:0']);
  });

  it('writes the same layers rootless (owners and modes as override records) as privileged', async () => {
    const df = 'FROM base:1\nCOPY --chown=app:staff run.sh /x/\nCOPY --chmod=400 a.txt /ro\nWORKDIR /w/deep\nADD pkg.tar.gz /pkg/\nCOPY src /src\nCOPY --from=base:1 /etc /etc2\n';
    const privileged = await buildText(df, { noCache: true });
    const rootless = await buildText(df, { noCache: true, rootless: true });
    expect(rootless.id).not.toBe(privileged.id);
    const trees = await Promise.all([privileged.id, rootless.id].map(async (id, i) => {
      const dir = path.join(work, `rootless-${i}`);
      await store.checkout(id, dir);
      return treeFingerprint(dir);
    }));
    expect(trees[1]).toEqual(trees[0]);
    expect(trees[0]!).toContain('ro f 400 0:0 aGVsbG8K');
    expect(trees[0]!.find((l) => l.startsWith('x/run.sh '))).toMatch(/^x\/run.sh f 750 1234:2345 /);
    expect(trees[0]!.find((l) => l.startsWith('src/sub '))).toBe('src/sub d 700 0:0 ');
  });

  it('builds for another platform with --platform, and FROM --platform per stage', async () => {
    const other = process.arch === 'arm64' ? 'amd64' : 'arm64';
    const r = await buildText(`FROM scratch\nCOPY a.txt /p\nFROM --platform=linux/s390x scratch AS two\nCOPY --from=0 /p /q\n`, { platform: `linux/${other}` });
    const cfg = await (await store.getImage(r.id)).manifest!.readConfig();
    expect(`${cfg.os}/${cfg.architecture}`).toBe('linux/s390x');
    const first = await buildText('FROM scratch\nCOPY a.txt /p\n', { platform: `linux/${other}` });
    expect(first.cacheHits).toBe(1);
    const firstCfg = await (await store.getImage(first.id)).manifest!.readConfig();
    expect(`${firstCfg.os}/${firstCfg.architecture}`).toBe(`linux/${other}`);
  });

  it('refuses what it cannot do with clear errors', async () => {
    await expect(buildText('FROM scratch\nCOPY x.tmp /\n')).rejects.toThrow(/file not found in build context or excluded by .dockerignore: stat x.tmp/);
    await expect(buildText('FROM scratch\nCOPY *.nothing /\n')).rejects.toThrow(/no source files were specified/);
    await expect(buildText('FROM scratch\nCOPY a.txt b.txt /dir\n')).rejects.toThrow(/must be a directory and end with a \//);
    await expect(buildText('FROM scratch\nRUN make\n')).rejects.toMatchObject({ code: 'InvalidArgument', data: { line: 2 } });
    await expect(buildText('FROM scratch AS a\n', { target: 'b' })).rejects.toThrow(/failed to reach build target b/);
    await expect(buildText('FROM scratch\nADD http://127.0.0.1:1/x /x\n')).rejects.toThrow(/need the network/);
    await expect(buildText('FROM scratch\nCOPY --chown=nobody a.txt /\n')).rejects.toThrow(/unable to convert user nobody/);
    await expect(buildText('LABEL a=b\nFROM scratch\n')).rejects.toThrow(/before any FROM/);
  });

  it('runs from the command line with docker’s output, -q printing the image ID', async () => {
    const root = ['--root', store.root];
    const df = path.join(work, 'Dockerfile.cli');
    fs.writeFileSync(df, 'FROM base:1\nCOPY a.txt /cli\n');
    // The store is opened by this process too: the CLI shares it through the same root, as two processes would.
    const r = await runCli([...root, 'build', '-t', 'cli:1', '-f', df, ctxDir]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Step 1\/2 : FROM base:1\n# Executing 2 build triggers\n( ---> Using cache\n)* ---> [0-9a-f]{12}\nStep 2\/2 : COPY a.txt \/cli\n/);
    expect(r.out).toMatch(/Successfully built [0-9a-f]{12}\nSuccessfully tagged cli:1\n$/);
    const iid = path.join(work, 'cli.iid');
    const q = await runCli([...root, 'build', '-q', '--iidfile', iid, '--label', 'via=cli', '-f', df, ctxDir]);
    expect(q.out).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect(fs.readFileSync(iid, 'utf8')).toBe(q.out.trim());
    expect((await (await store.getImage(q.out.trim())).manifest!.readConfig()).config?.Labels).toMatchObject({ via: 'cli' });

    // `stowage build -`: the context as a (gzip) tar on standard input, through the built binary.
    await ensureBuilt();
    const small = path.join(work, 'stdin-ctx');
    fs.mkdirSync(small);
    fs.writeFileSync(path.join(small, 'Dockerfile'), 'FROM scratch\nCOPY hello /hello\n');
    fs.writeFileSync(path.join(small, 'hello'), 'from stdin\n');
    const tgz = execFileSync('tar', ['-cz', '-C', small, '.']);
    const piped = spawnSync(process.execPath, [BIN, ...root, 'build', '-q', '-t', 'stdin:1', '-'], { input: tgz, encoding: 'utf8' });
    expect(piped.stderr).toBe('');
    expect(piped.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const tree = path.join(work, 'stdin-tree');
    await store.checkout('stdin:1', tree);
    expect(fs.readFileSync(path.join(tree, 'hello'), 'utf8')).toBe('from stdin\n');
  });
});
