// End-to-end through the BUILT binary (node bin/stowage.js) against the real docker-registry.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRandomImage, makeTestImage, makeTestIndex, pushRaw, writeOciLayout, type TestImage } from '../harness/images.js';
import { startFaultProxy } from '../harness/proxy.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { defaultRoot } from '../../src/images/index.js';
import { compareTrees, formatTreeDiff, listDirectory } from '../../src/testing/index.js';
import { BIN, ensureBuilt, stowage, type RunResult } from './binary.js';

const execFileP = promisify(execFile);
const HEX12 = /^[0-9a-f]{12}$/;

let reg: Registry;
let tmp: string;
let root: string;
let appV1: TestImage;
let appV2: TestImage;
let tool: TestImage;

/** `stowage --root <private root> ARGS`. */
function run(...args: string[]): Promise<RunResult> {
  return stowage(['--root', root, ...args], { env: { DOCKER_CONFIG: path.join(tmp, 'docker-config') } });
}

async function ok(...args: string[]): Promise<string> {
  const r = await run(...args);
  if (r.code !== 0) throw new Error(`stowage ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

function lines(s: string): string[] { return s.split('\n').filter((l) => l !== ''); }
function short(d: string): string { return d.slice('sha256:'.length, 'sha256:'.length + 12); }

beforeAll(async () => {
  await ensureBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-cli-'));
  root = path.join(tmp, 'root');
  reg = await startRegistry();
  appV1 = await makeTestImage({
    labels: { 'com.example.tier': 'web' },
    layers: [
      { files: [
        { path: 'bin', type: 'directory' },
        { path: 'bin/app', content: '#!/bin/sh\necho app\n', mode: 0o755 },
        { path: 'bin/run', type: 'symlink', linkname: 'app' },
        { path: 'etc', type: 'directory' },
        { path: 'etc/old.conf', content: 'old\n' },
        { path: 'etc/app.conf', content: 'v=1\n' },
        { path: 'var', type: 'directory' },
        { path: 'var/cache', type: 'directory' },
        { path: 'var/cache/a', content: 'a\n' },
      ] },
      { files: [
        { path: 'etc', type: 'directory' },
        { path: 'etc/.wh.old.conf', content: '' },
        { path: 'etc/app.conf', content: 'v=2\n' },
        { path: 'var/cache', type: 'directory' },
        { path: 'var/cache/.wh..wh..opq', content: '' },
        { path: 'var/cache/b', content: 'b\n' },
      ] },
    ],
  });
  appV2 = await makeTestImage({ labels: { 'com.example.tier': 'web' }, layers: [{ files: { 'etc/app.conf': 'v=3\n' } }] });
  tool = await makeTestImage({ labels: { 'com.example.tier': 'cli' }, layers: [{ files: { 'usr/bin/tool': 'tool\n' } }] });
  await pushRaw(reg.url, 'app', 'v1', appV1);
  await pushRaw(reg.url, 'app', 'v2', appV2);
  await pushRaw(reg.url, 'tool', 'latest', tool);
});

afterAll(async () => {
  await reg?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('pull', () => {
  it('prints docker\'s plain progress lines off a terminal and the canonical name last', async () => {
    const r = await run('pull', `${reg.host}/app:v1`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = lines(r.stdout);
    expect(out[0]).toBe('v1: Pulling from app');
    for (const layer of appV1.layers) expect(out).toContain(`${short(layer.digest)}: Pull complete`);
    expect(r.stdout).not.toMatch(/\x1b\[/);
    expect(r.stdout).not.toMatch(/Downloading/);
    expect(out.at(-3)).toBe(`Digest: ${appV1.manifest.digest}`);
    expect(out.at(-2)).toBe(`Status: Downloaded newer image for ${reg.host}/app:v1`);
    expect(out.at(-1)).toBe(`${reg.host}/app:v1`);
  });

  it('says "Image is up to date" on a second pull, without layer lines', async () => {
    const out = lines(await ok('pull', `${reg.host}/app:v1`));
    expect(out).toContain(`Status: Image is up to date for ${reg.host}/app:v1`);
    expect(out.some((l) => l.includes('Pull complete'))).toBe(false);
  });

  it('adds the default tag and says so; -q prints only the name', async () => {
    const out = lines(await ok('pull', `${reg.host}/tool`));
    expect(out[0]).toBe('Using default tag: latest');
    expect(out.at(-1)).toBe(`${reg.host}/tool:latest`);
    expect(await ok('pull', '-q', `${reg.host}/tool`)).toBe(`${reg.host}/tool:latest\n`);
  });

  it('reports a missing repository and a bad reference with exit 1', async () => {
    const missing = await run('pull', `${reg.host}/nothing-here:v1`);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^Error: /);
    const bad = await run('pull', 'Foo');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('Error: invalid reference format: repository name (library/Foo) must be lowercase\n');
  });

  it('draws live bars with cursor moves on a terminal', async () => {
    await ok('rmi', `${reg.host}/tool:latest`);
    // `script` gives the command a pseudo-terminal.
    const { stdout } = await execFileP('script', ['-qefc', `${process.execPath} bin/stowage.js --root ${root} pull ${reg.host}/tool:latest`, '/dev/null'], {
      cwd: path.resolve(import.meta.dirname, '..', '..'), env: { ...process.env, COLUMNS: '120' },
    });
    expect(stdout).toMatch(/\x1b\[\d+A/);
    expect(stdout).toMatch(/\x1b\[2K/);
    expect(stdout).toContain(`${short(tool.layers[0]!.digest)}: Pull complete`);
    expect(stdout).toContain(`Status: Downloaded newer image for ${reg.host}/tool:latest`);
  });
});

describe('Ctrl-C', () => {
  it('stops a pull with exit 130 and no error text; the next pull completes', async () => {
    const proxy = await startFaultProxy(reg.url);
    try {
      // The layer download never answers: only an abort that reaches it can end the pull.
      proxy.addFault({ method: 'GET', path: `/blobs/${appV2.layers[0]!.digest}`, fault: { kind: 'hang' }, times: 1000 });
      const child = spawn(process.execPath, [BIN, '--root', root, 'pull', `${proxy.host}/app:v2`], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
      child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
      let closed = false;
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => { closed = true; resolve(code); }));
      // Interrupt once the pull is waiting on the stalled layer download.
      while (!proxy.requests.some((r) => r.fault === 'hang')) {
        if (closed) throw new Error(`pull ended before any layer: ${out}${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      // The stalled download was given up by the client, not answered.
      const stalled = proxy.requests.filter((r) => r.fault === 'hang');
      expect(stalled.length).toBeGreaterThan(0);
      expect(stalled.every((r) => r.status === 0)).toBe(true);
      expect(err).toBe('');
    } finally {
      await proxy.stop();
    }
    expect(lines(await ok('pull', `${reg.host}/app:v2`)).at(-1)).toBe(`${reg.host}/app:v2`);
    await ok('rmi', `${reg.host}/app:v2`);
  });
});

describe('a slow download', () => {
  it('is followed by the hash checkpointer of the built command line, whose state an interrupted pull keeps', async () => {
    // The checkpointer is a worker thread shipped as source text: this runs it from the bundle users get.
    const image = await makeRandomImage([24 << 20]);
    await pushRaw(reg.url, 'slow', 'v1', image);
    const proxy = await startFaultProxy(reg.url);
    const layer = image.layers[0]!.digest;
    try {
      // ~4 s for the layer: seconds left when its pace is judged (at 8 MiB), so it gets a checkpointer.
      proxy.addFault({ method: 'GET', path: `/blobs/${layer}`, fault: { kind: 'throttle', bytesPerSecond: 6e6 }, times: 1000 });
      const child = spawn(process.execPath, [BIN, '--root', root, 'pull', '-q', `${proxy.host}/slow:v1`], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
      let closed = false;
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => { closed = true; resolve(code); }));
      const ingested = () => {
        if (!fs.existsSync(path.join(root, 'ingest'))) return undefined; // the store is not made yet
        const dirs = fs.readdirSync(path.join(root, 'ingest'), { withFileTypes: true }).filter((d) => d.isDirectory());
        return dirs.map((d) => path.join(root, 'ingest', d.name)).find((d) => fs.existsSync(path.join(d, 'data')) && fs.statSync(path.join(d, 'data')).size >= 14 << 20);
      };
      let dir: string | undefined;
      while (!(dir = ingested())) {
        if (closed) throw new Error(`pull ended early: ${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      // close() had the checkpointer finish and save: the state covers bytes of the partial blob
      const state = JSON.parse(fs.readFileSync(path.join(dir, 'hashstate'), 'utf8')) as { length: number };
      expect(state.length).toBeGreaterThanOrEqual(8 << 20);
      expect(state.length).toBeLessThanOrEqual(fs.statSync(path.join(dir, 'data')).size);
    } finally {
      await proxy.stop();
    }
    // the next pull resumes the ingest and completes
    expect(lines(await ok('pull', `${reg.host}/slow:v1`)).at(-1)).toBe(`${reg.host}/slow:v1`);
    await ok('rmi', `${reg.host}/slow:v1`);
  });
});

describe('pull --platform', () => {
  it('pulls the requested platform of an index', async () => {
    const amd = await makeTestImage({ platform: { os: 'linux', architecture: 'amd64' }, layers: [{ files: { 'arch': 'amd64\n' } }] });
    const arm = await makeTestImage({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, layers: [{ files: { 'arch': 'arm64\n' } }] });
    const index = await makeTestIndex([amd, arm]);
    await pushRaw(reg.url, 'multi', 'v1', index);
    const out = lines(await ok('pull', '--platform', 'linux/arm64', `${reg.host}/multi:v1`));
    expect(out).toContain(`Digest: ${index.index.digest}`);
    expect(await ok('inspect', '--platform', 'linux/arm64', '-f', '{{.Os}}/{{.Architecture}}', `${reg.host}/multi:v1`)).toBe('linux/arm64\n');
    const wrong = await run('inspect', '--platform', 'linux/s390x', `${reg.host}/multi:v1`);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^Error: .*platform/);
    await ok('rmi', `${reg.host}/multi:v1`);
  });
});

describe('images', () => {
  it('prints docker\'s table', async () => {
    const out = lines(await ok('images'));
    expect(out[0]).toMatch(/^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$/);
    const row = out.find((l) => l.startsWith(`${reg.host}/app `))!;
    const cells = row.split(/ {3,}/);
    expect(cells[1]).toBe('v1');
    expect(cells[2]).toBe(short(appV1.manifest.digest));
    expect(cells[3]).toMatch(/ago$/);
    expect(cells[4]).toMatch(/^\d+(\.\d+)?[kMG]?B$/);
    // Columns line up: every row starts its TAG column where the header does.
    const tagCol = out[0]!.indexOf('TAG');
    for (const l of out.slice(1)) expect(l[tagCol - 1]).toBe(' ');
  });

  it('supports -q, --no-trunc, a repository argument, and combined short flags', async () => {
    const ids = lines(await ok('images', '-q'));
    expect(ids.length).toBe(2);
    for (const id of ids) expect(id).toMatch(HEX12);
    expect(lines(await ok('images', '-aq', `${reg.host}/app`))).toEqual([short(appV1.manifest.digest)]);
    expect(lines(await ok('images', '--no-trunc', '-q', `${reg.host}/app:v1`))).toEqual([appV1.manifest.digest]);
  });

  it('prints Engine API summaries with --format json and Go templates', async () => {
    const items = lines(await ok('images', '--format', 'json')).map((l) => JSON.parse(l) as { Id: string; RepoTags: string[]; Size: number; Labels: Record<string, string> });
    const app = items.find((i) => i.Id === appV1.manifest.digest)!;
    expect(app.RepoTags).toEqual([`${reg.host}/app:v1`]);
    expect(app.Labels['com.example.tier']).toBe('web');
    expect(app.Size).toBeGreaterThan(0);
    expect(await ok('images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}', `${reg.host}/app`)).toBe(`${reg.host}/app:v1 ${short(appV1.manifest.digest)}\n`);
    const table = lines(await ok('images', '--format', 'table {{.ID}}\\t{{.Tag}}', `${reg.host}/tool`));
    expect(table[0]).toMatch(/^IMAGE ID +TAG$/);
    const digests = lines(await ok('images', '--digests', `${reg.host}/app`));
    expect(digests[0]).toMatch(/^REPOSITORY +TAG +DIGEST +IMAGE ID +CREATED +SIZE$/);
    expect(digests[1]).toContain(`   ${appV1.manifest.digest}   ${short(appV1.manifest.digest)}   `);
  });

  it('filters by label and reference; an unknown filter is an error', async () => {
    expect(lines(await ok('images', '--filter', 'label=com.example.tier=cli', '--format', '{{.Repository}}'))).toEqual([`${reg.host}/tool`]);
    expect(lines(await ok('images', '-f', 'reference=*/app:*', '--format', '{{.Tag}}'))).toEqual(['v1']);
    const bad = await run('images', '--filter', 'color=red');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("invalid filter 'color'");
  });
});

describe('tag, inspect, history', () => {
  it('tags an image and shows the new name', async () => {
    expect(await ok('tag', `${reg.host}/app:v1`, 'mine/app:prod')).toBe('');
    const rows = lines(await ok('images', '--format', '{{.Repository}} {{.Tag}} {{.ID}}', 'mine/app'));
    expect(rows).toContain(`mine/app prod ${short(appV1.manifest.digest)}`);
    expect(rows.filter((r) => r.includes(' prod ') || r.includes(' v1 '))).toEqual([`mine/app prod ${short(appV1.manifest.digest)}`]);
  });

  it('prints the inspect array with the Engine API fields', async () => {
    const [info] = JSON.parse(await ok('inspect', 'mine/app:prod')) as Array<{ Id: string; RepoTags: string[]; RootFS: { Layers: string[] }; Os: string; Config: { Labels: Record<string, string> } }>;
    expect(info!.Id).toBe(appV1.manifest.digest);
    expect(info!.RepoTags.sort()).toEqual([`${reg.host}/app:v1`, 'mine/app:prod'].sort());
    expect(info!.RootFS.Layers).toEqual(appV1.diffIds);
    expect(info!.Os).toBe('linux');
    expect(info!.Config.Labels['com.example.tier']).toBe('web');
    expect(await ok('image', 'inspect', '-f', '{{.Id}}', short(appV1.manifest.digest))).toBe(`${appV1.manifest.digest}\n`);
    const two = JSON.parse(await ok('inspect', 'mine/app:prod', `${reg.host}/tool`)) as Array<{ Id: string }>;
    expect(two.map((i) => i.Id)).toEqual([appV1.manifest.digest, tool.manifest.digest]);
  });

  it('inspect of a missing image prints [] and docker\'s error, exit 1', async () => {
    const r = await run('inspect', 'nope');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('[]\n');
    expect(r.stderr).toBe('Error: No such image: nope:latest\n');
  });

  it('prints history newest first with the image ID on the top row', async () => {
    const out = lines(await ok('history', `${reg.host}/app:v1`));
    expect(out[0]).toMatch(/^IMAGE +CREATED +CREATED BY +SIZE +COMMENT$/);
    expect(out.length).toBe(1 + appV1.layers.length);
    expect(out[1]!.startsWith(short(appV1.manifest.digest))).toBe(true);
    expect(out[2]!.startsWith('<missing>')).toBe(true);
    const json = lines(await ok('image', 'history', '--format', 'json', `${reg.host}/app:v1`)).map((l) => JSON.parse(l) as { Id: string; CreatedBy: string });
    expect(json.map((h) => h.CreatedBy)).toEqual(['layer 1', 'layer 0']);
    expect(lines(await ok('history', '-q', '--no-trunc', `${reg.host}/app:v1`))).toEqual([appV1.manifest.digest, '<missing>']);
  });
});

describe('checkout', () => {
  it('writes the same tree as umoci unpack of the same image', async () => {
    const dest = path.join(tmp, 'checkout');
    expect(await ok('checkout', `${reg.host}/app:v1`, dest)).toBe('');
    const layout = writeOciLayout(path.join(tmp, 'layout'), appV1, 'v1');
    const bundle = path.join(tmp, 'bundle');
    await execFileP('umoci', ['unpack', '--rootless', '--image', `${layout}:v1`, bundle]);
    const ours = listDirectory(dest);
    expect(formatTreeDiff(compareTrees(ours, path.join(bundle, 'rootfs'), { directoryModes: true }))).toBe('');
    expect(ours.has('/etc/old.conf')).toBe(false);
    expect(ours.has('/var/cache/a')).toBe(false);
    expect(ours.get('/bin/run')?.target).toBe('app');
  });

  it('refuses a directory that is not empty', async () => {
    const r = await run('checkout', `${reg.host}/app:v1`, path.join(tmp, 'checkout'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Error: /);
  });
});

describe('working containers', () => {
  it('create, ls, changes, rm', async () => {
    const id = (await ok('container', 'create', '--name', 'c1', `${reg.host}/app:v1`)).trim();
    expect(id).toMatch(/^[0-9a-f]{12,64}$/);
    const ls = lines(await ok('container', 'ls'));
    expect(ls[0]).toMatch(/^CONTAINER ID +IMAGE +CREATED +NAMES$/);
    expect(ls[1]).toContain('c1');
    expect(ls[1]).toContain(`${reg.host}/app:v1`);
    expect(lines(await ok('container', 'ls', '-q', '--no-trunc'))).toEqual([id]);
    const sized = lines(await ok('container', 'ls', '-s'));
    expect(sized[0]).toMatch(/^CONTAINER ID +IMAGE +CREATED +SIZE +NAMES$/);
    expect(sized[1]).toMatch(/ \d+(\.\d+)?[kMG]?B \(virtual \d+(\.\d+)?[kMG]?B\) +c1$/);

    const mounts = JSON.parse(await ok('container', 'mounts', 'c1')) as Array<{ type: string; source: string; options: string[] }>;
    // overlay or fuse-overlayfs (a chain with deletions) name the upper dir; a bind is the layer itself.
    const upperOpt = mounts[0]!.options.find((o) => o.startsWith('upperdir='));
    const upper = upperOpt ? upperOpt.slice('upperdir='.length) : mounts[0]!.source;
    fs.mkdirSync(path.join(upper, 'srv'), { recursive: true });
    fs.writeFileSync(path.join(upper, 'srv', 'new.txt'), 'new\n');
    const changes = lines(await ok('container', 'changes', 'c1'));
    expect(changes).toContain('A /srv');
    expect(changes).toContain('A /srv/new.txt');

    // The image is in use: removing a name that is not the last one only untags; the last one needs force.
    expect(await ok('rmi', `${reg.host}/app:v1`)).toBe(`Untagged: ${reg.host}/app:v1\n`);
    const conflict = await run('rmi', 'mine/app:prod');
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(/^Error: conflict: unable to delete/);

    expect(await ok('container', 'rm', 'c1')).toBe('c1\n');
    expect(await ok('container', 'ls', '-q')).toBe('');
    const gone = await run('container', 'rm', 'c1');
    expect(gone.code).toBe(1);
  });
});

describe('rmi', () => {
  it('untags when other names remain, then deletes', async () => {
    await ok('pull', `${reg.host}/app:v1`);
    expect(await ok('rmi', 'mine/app:prod')).toBe('Untagged: mine/app:prod\n');
    const out = lines(await ok('image', 'rm', `${reg.host}/app:v1`));
    expect(out[0]).toBe(`Untagged: ${reg.host}/app:v1`);
    expect(out).toContain(`Deleted: ${appV1.manifest.digest}`);
    expect(lines(await ok('images', '-q', `${reg.host}/app`))).toEqual([]);
  });

  it('reports each missing image and exits 1, still removing the others', async () => {
    await ok('tag', `${reg.host}/tool:latest`, 'extra/tool:1');
    const r = await run('rmi', 'nope', 'extra/tool:1');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('Error: No such image: nope:latest\n');
    expect(r.stdout).toBe('Untagged: extra/tool:1\n');
    // With --force a missing name does not fail the command; docker still prints its error.
    expect(await run('rmi', '-f', 'nope')).toEqual({ code: 0, stdout: '', stderr: 'Error: No such image: nope:latest\n' });
  });
});

describe('prune, df, events, check, gc', () => {
  it('keeps a moved tag\'s old image as <none> and prunes only dangling images by default', async () => {
    await ok('pull', `${reg.host}/app:v1`);
    // Move the registry tag v1 to the v2 image; pulling again leaves the old image dangling.
    await pushRaw(reg.url, 'app', 'v1', appV2);
    await ok('pull', `${reg.host}/app:v1`);
    const rows = lines(await ok('images', '--format', '{{.Repository}} {{.Tag}} {{.ID}}'));
    expect(rows).toContain(`<none> <none> ${short(appV1.manifest.digest)}`);
    const pruned = await ok('image', 'prune', '-f');
    expect(pruned).toContain('Deleted Images:\n');
    expect(pruned).toContain(`deleted: ${appV1.manifest.digest}`);
    expect(pruned).toMatch(/Total reclaimed space: \d/);
    expect(lines(await ok('images', '-q')).length).toBe(2);
    await pushRaw(reg.url, 'app', 'v1', appV1);
  });

  it('system df counts images and containers', async () => {
    const out = lines(await ok('system', 'df'));
    expect(out[0]).toMatch(/^TYPE +TOTAL +ACTIVE +SIZE +RECLAIMABLE$/);
    expect(out[1]).toMatch(/^Images +2 +0 +\S+ +\S+ \(100%\)$/);
    expect(out[2]).toMatch(/^Containers +0 +0 +0B +0B$/);
    const verbose = await ok('system', 'df', '-v');
    expect(verbose).toMatch(/^Images space usage:\n\nREPOSITORY +TAG +IMAGE ID +CREATED +SIZE +SHARED SIZE +UNIQUE SIZE +CONTAINERS\n/);
    expect(verbose).toContain(`${reg.host}/tool `);
    expect(verbose).toMatch(/\nContainers space usage:\n\nCONTAINER ID +IMAGE +SIZE +CREATED +NAMES\n$/);
    const json = JSON.parse(await ok('system', 'df', '--format', 'json')) as { ImageUsage: { TotalCount: number; TotalSize: number } };
    expect(json.ImageUsage.TotalCount).toBe(2);
    expect(json.ImageUsage.TotalSize).toBeGreaterThan(0);
  });

  it('events replays what happened, in docker\'s line form and as JSON', async () => {
    const until = String(Math.ceil(Date.now() / 1000) + 1);
    const out = lines(await ok('events', '--since', '0', '--until', until));
    expect(out.some((l) => new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[0-9:.]{18}Z image pull ${reg.host}/app:v1 \\(.*name=${reg.host}/app`).test(l))).toBe(true);
    expect(out.some((l) => l.includes(' image tag ') && l.includes('name=mine/app:prod'))).toBe(true);
    expect(out.some((l) => l.includes(' image untag '))).toBe(true);
    expect(out.some((l) => l.includes(` image delete ${appV1.manifest.digest}`))).toBe(true);
    const json = lines(await ok('events', '--since', '0', '--until', until, '--format', 'json', '--filter', 'event=tag')).map((l) => JSON.parse(l) as { Type: string; Action: string });
    expect(json.length).toBeGreaterThan(0);
    expect(json.every((e) => e.Type === 'image' && e.Action === 'tag')).toBe(true);
  });

  it('events follows new events until Ctrl-C, then exits 0', async () => {
    // --since replays from before the tag (so starting late misses nothing); the image filter keeps out
    // the tags earlier tests made within that second.
    const since = String(Math.floor(Date.now() / 1000) - 1);
    const child = spawn(process.execPath, [BIN, '--root', root, 'events', '--since', since, '--filter', 'event=tag', '--filter', 'image=followed/app:1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const seen = new Promise<void>((resolve) => child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('name=followed/app:1')) resolve(); }));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await ok('tag', `${reg.host}/tool:latest`, 'followed/app:1');
    await seen;
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(lines(out).length).toBe(1);
    await ok('rmi', 'followed/app:1');
  });

  it('check passes on a sound store and fails on a corrupted blob', async () => {
    expect(lines(await ok('check')).at(-1)).toBe('Store is consistent.');
    expect(JSON.parse(await ok('check', '--repair', '--format', 'json'))).toMatchObject({ ok: true, problems: [] });
    const hex = tool.layers[0]!.digest.slice('sha256:'.length);
    const blob = findFile(root, hex);
    expect(blob).toBeDefined();
    const saved = fs.readFileSync(blob!);
    fs.chmodSync(blob!, 0o644);
    fs.writeFileSync(blob!, Buffer.concat([saved, Buffer.from('x')]));
    const bad = await run('check');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(hex);
    fs.writeFileSync(blob!, saved);
    expect((await run('check')).code).toBe(0);
  });

  it('image prune -af removes every unused image, then gc has nothing left to keep', async () => {
    const out = await ok('image', 'prune', '-af');
    expect(out).toContain(`untagged: ${reg.host}/tool:latest`);
    expect(out).toMatch(/Total reclaimed space: /);
    expect(await ok('images', '-q')).toBe('');
    const gc = JSON.parse(await ok('gc', '--format', 'json')) as { blobsRemoved: number; snapshotsRemoved: number; bytesReclaimed: number };
    // Nothing is left in the store: every blob file and snapshot directory went (by the prune or this gc).
    expect(countFiles(path.join(root, 'blobs'))).toBe(0);
    expect(fs.readdirSync(path.join(root, 'snapshots')).filter((d) => /^\d+$/.test(d))).toEqual([]);
    expect(await ok('gc')).toMatch(/Removed 0 blob\(s\), 0 snapshot\(s\), 0 ingest\(s\), 0 lease\(s\)\nTotal reclaimed space: 0B\n$/);
    expect(gc.bytesReclaimed === 0).toBe(gc.blobsRemoved === 0);
  });
});

function countFiles(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  return fs.readdirSync(dir, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? countFiles(path.join(dir, e.name)) : 1), 0);
}

function findFile(dir: string, name: string): string | undefined {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) { const f = findFile(full, name); if (f) return f; } else if (e.name === name) return full;
  }
  return undefined;
}

describe('push', () => {
  it('pushes to the registry with docker\'s lines; the registry serves the same manifest', async () => {
    await ok('pull', `${reg.host}/app:v1`);
    await ok('tag', `${reg.host}/app:v1`, `${reg.host}/pushed:1`);
    const out = lines(await ok('push', `${reg.host}/pushed:1`));
    expect(out[0]).toBe(`The push refers to repository [${reg.host}/pushed]`);
    expect(out.at(-1)).toMatch(new RegExp(`^1: digest: ${appV1.manifest.digest} size: \\d+$`));
    const res = await fetch(`${reg.url}/v2/pushed/manifests/1`, { method: 'HEAD', headers: { accept: appV1.manifest.mediaType } });
    expect(res.headers.get('docker-content-digest')).toBe(appV1.manifest.digest);
    const digestRef = await run('push', `${reg.host}/pushed@${appV1.manifest.digest}`);
    expect(digestRef.code).toBe(1);
  });
});

describe('usage errors and exit codes (docker\'s)', () => {
  it('help exits 0', async () => {
    const r = await run('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: {2}stowage \[OPTIONS\] COMMAND/);
    const h = await run('images', '--help');
    expect(h.stdout).toMatch(/^Usage: {2}stowage images \[OPTIONS\] \[REPOSITORY\[:TAG\]\]/);
    expect(h.stdout).toContain('Aliases:\n  stowage image ls, stowage image list, stowage images');
    expect((await run('image')).stdout).toContain('  prune       Remove unused images');
    expect((await run('help', 'system', 'df')).stdout).toMatch(/^Usage: {2}stowage system df/);
  });

  it('an unknown flag exits 125 with the usage hint', async () => {
    const r = await run('images', '--bogus');
    expect(r.code).toBe(125);
    expect(r.stderr).toBe("unknown flag: --bogus\n\nUsage:  stowage images [OPTIONS] [REPOSITORY[:TAG]]\n\nRun 'stowage images --help' for more information\n");
    expect((await stowage(['--bogus', 'images'])).code).toBe(125);
    // Global options go before the command.
    expect((await run('images', '--root', root)).code).toBe(125);
  });

  it('a wrong argument count or unknown command exits 1', async () => {
    const r = await run('tag', 'only-one');
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe("stowage: 'stowage tag' requires 2 arguments");
    const u = await run('frobnicate');
    expect(u.code).toBe(1);
    expect(u.stderr).toContain('stowage: unknown command: stowage frobnicate');
    expect((await run('image', 'frob')).code).toBe(1);
    expect((await run('version', 'x')).stderr.split('\n')[0]).toBe("stowage: 'stowage version' accepts no arguments");
  });

  it('version prints the package version; --debug adds the error code', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    expect(await ok('version')).toContain(` Version:           ${pkg.version}\n`);
    expect(await ok('version', '--format', '{{.Version}}')).toBe(`${pkg.version}\n`);
    expect((await stowage(['-v'])).stdout).toBe(`Stowage version ${pkg.version}\n`);
    // version states the library's default-root rule without loading the library: both must agree.
    for (const env of [{ STOWAGE_ROOT: path.join(tmp, 'r1') }, { STOWAGE_ROOT: '', XDG_DATA_HOME: path.join(tmp, 'xdg') }]) {
      const shown = (await stowage(['version', '--format', '{{.Root}}'], { env })).stdout.trim();
      expect(shown).toBe(defaultRoot(env));
    }
    const home = (await stowage(['version', '--format', '{{.Root}}'], { env: { STOWAGE_ROOT: '', XDG_DATA_HOME: '', HOME: tmp } })).stdout.trim();
    expect(home).toBe(path.join(tmp, '.local', 'share', 'stowage'));
    const d = await stowage(['--root', root, '--debug', 'inspect', 'nope']);
    expect(d.stderr).toContain('code: NotFound');
  });

  it('image prune without -f asks, and "no" (or end of input) cancels', async () => {
    const r = await stowage(['--root', root, 'image', 'prune'], { input: 'n\n' });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] ');
  });
});
