/**
 * Images made without a registry: import (every compression, stdin, http URL), commit (whiteouts,
 * config changes, empty commits), squash, CreateImage. Trees are checked by checkout against the
 * expected tree, and by umoci unpacking what skopeo pulled after a push to a real docker-registry.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage, type Stowage } from '../../src/index.js';
import { applyChanges } from '../../src/images/index.js';
import { skopeo } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { describeTree } from '../snapshots/helpers.js';
import { runCli } from '../cli/in-process.js';

let work: string;
let store: Stowage;
let rootfs: string;
let n = 0;
const tmp = (name: string) => path.join(work, `${name}-${n++}`);

async function treeOf(ref: string, s: Stowage = store) {
  const dir = tmp('co');
  await s.checkout(ref, dir);
  return describeTree(dir);
}

/** A small root filesystem: dirs, files, a symlink, an executable, a file owned by someone else. */
function makeRootfs(dir: string): void {
  fs.mkdirSync(path.join(dir, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'usr/bin'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'etc/os-release'), 'ID=test\n');
  fs.writeFileSync(path.join(dir, 'etc/remove-me'), 'bye\n');
  fs.writeFileSync(path.join(dir, 'usr/bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
  fs.symlinkSync('usr/bin', path.join(dir, 'bin'));
  fs.mkdirSync(path.join(dir, 'var/lib/data'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'var/lib/data/db'), 'rows\n');
  if (process.geteuid?.() === 0) fs.chownSync(path.join(dir, 'var/lib/data/db'), 1000, 1000);
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-offline-'));
  rootfs = path.join(work, 'rootfs');
  makeRootfs(rootfs);
  execFileSync('tar', ['--numeric-owner', '-C', rootfs, '-cf', path.join(work, 'rootfs.tar'), '.']);
});

afterAll(async () => {
  await store?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('import', () => {
  it('every compression gives the same tree and diff ID; gzip and zstd are stored as given', async () => {
    store = await openStowage({ root: tmp('store') });
    const plain = path.join(work, 'rootfs.tar');
    const expected = await describeTree(rootfs);
    const diffIds = new Set<string>();
    for (const [ext, tool] of [['', ''], ['.gz', 'gzip'], ['.zst', 'zstd'], ['.xz', 'xz'], ['.bz2', 'bzip2']] as const) {
      const file = plain + ext;
      if (tool) execFileSync(tool, ['-k', '-f', '-q', plain].filter((a) => !(tool === 'gzip' && a === '-q')));
      const { id } = await store.importImage(fs.createReadStream(file), { ref: `imp:${tool || 'plain'}` });
      const ins = await store.inspect(`imp:${tool || 'plain'}`);
      expect(ins.Id).toBe(id);
      diffIds.add(ins.RootFS.Layers![0]!);
      expect(await treeOf(`imp:${tool || 'plain'}`)).toEqual(expected);
      if (tool === 'gzip' || tool === 'zstd') {
        const layerDigest = `sha256:${execFileSync('sha256sum', [file]).toString().slice(0, 64)}`;
        expect(ins.Size).toBeGreaterThan(0);
        const saved = tmp('saved') + '.tar';
        await store.save([`imp:${tool}`], fs.createWriteStream(saved));
        expect(execFileSync('tar', ['-tf', saved]).toString()).toContain(layerDigest.slice(7));
      }
    }
    expect(diffIds.size).toBe(1);
    const hist = await store.history('imp:plain');
    expect(hist).toHaveLength(1);
    const plainId = (await store.inspect('imp:plain')).Id;
    const actions: string[] = [];
    for await (const e of store.events({ filters: { image: [plainId] } })) actions.push(`${e.Action} ${e.Actor.Attributes.name}`);
    expect(actions).toEqual([`import ${plainId}`, 'tag imp:plain']);
    expect(hist[0]!.Comment).toBe('Imported from -');
  });

  it('applies --change lines and refuses the others with docker\'s words, before reading anything', async () => {
    const { id } = await store.importImage(fs.createReadStream(path.join(work, 'rootfs.tar')), {
      ref: 'imp:changes', message: 'from a test', platform: 'linux/arm/v7',
      changes: ['CMD ["/usr/bin/tool"]', 'ENV A=1 B=two', 'EXPOSE 8080/tcp', 'LABEL k=v', 'WORKDIR /etc', 'USER 1000:1000', 'VOLUME /data', 'STOPSIGNAL SIGINT', 'ONBUILD RUN x', 'ENTRYPOINT ["/bin/sh", "-c"]'],
    });
    const ins = await store.inspect(id);
    expect(ins.Architecture).toBe('arm');
    expect(ins.Variant).toBe('v7');
    expect(ins.Config).toMatchObject({
      Cmd: ['/usr/bin/tool'], Env: ['A=1', 'B=two'], ExposedPorts: { '8080/tcp': {} }, Labels: { k: 'v' }, WorkingDir: '/etc',
      User: '1000:1000', Volumes: { '/data': {} }, StopSignal: 'SIGINT', OnBuild: ['RUN x'], Entrypoint: ['/bin/sh', '-c'],
    });
    expect((await store.history(id))[0]!.Comment).toBe('from a test');
    const before = (await store.images()).length;
    let read = false;
    const src = new (await import('node:stream')).Readable({ read() { read = true; this.push(null); } });
    await expect(store.importImage(src, { changes: ['RUN echo no'] })).rejects.toMatchObject({ code: 'InvalidArgument', message: 'run is not a valid change command' });
    expect(read).toBe(false);
    expect((await store.images()).length).toBe(before);
    expect(() => applyChanges({}, ['FROM x'])).toThrow('from is not a valid change command');
    expect(() => applyChanges({}, ['ONBUILD MAINTAINER x'])).toThrow("MAINTAINER isn't allowed as an ONBUILD trigger");
  });

  it('fetches an http URL (loopback), following redirects, and reports it in the history', async () => {
    const body = fs.readFileSync(path.join(work, 'rootfs.tar'));
    const server = http.createServer((req, res) => {
      if (req.url === '/moved') { res.writeHead(302, { location: '/again' }).end(); return; }
      if (req.url === '/again') { res.writeHead(307, { location: `http://127.0.0.1:${(server.address() as AddressInfo).port}/rootfs.tar` }).end(); return; }
      if (req.url === '/loop') { res.writeHead(302, { location: '/loop' }).end(); return; }
      if (req.url !== '/rootfs.tar') { res.writeHead(404).end(); return; }
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rootfs.tar`;
    try {
      const statuses: string[] = [];
      const { id } = await store.importImage(new URL(url), { onProgress: (m) => { if (m.status && !m.progressDetail) statuses.push(m.status); } });
      expect(statuses[0]).toBe(`Downloading from ${url}`);
      expect(statuses.at(-1)).toBe(id);
      expect((await store.history(id))[0]!.Comment).toBe(`Imported from ${url}`);
      expect((await store.images({ all: true })).some((i) => i.Id === id && i.RepoTags.length === 0)).toBe(true);
      await expect(store.importImage(new URL(url + '.missing'))).rejects.toMatchObject({ code: 'NotFound' });
      const moved = await store.importImage(new URL('/moved', url));
      expect((await store.history(moved.id))[0]!.Comment).toBe(`Imported from ${new URL('/moved', url).href}`);
      expect((await store.inspect(moved.id)).RootFS).toEqual((await store.inspect(id)).RootFS);
      await expect(store.importImage(new URL('/loop', url))).rejects.toMatchObject({ code: 'Unavailable', message: expect.stringContaining('too many redirects') });
    } finally {
      server.close();
    }
  });

  it('a file that is not a tar fails typed and records nothing', async () => {
    const junk = tmp('junk');
    fs.writeFileSync(junk, 'not a tar at all, just text that goes on'.repeat(40));
    const before = await store.images({ all: true });
    await expect(store.importImage(fs.createReadStream(junk), { ref: 'junk:1' })).rejects.toMatchObject({ code: 'InvalidArgument' });
    expect(await store.images({ all: true })).toEqual(before);
  });
});

describe('commit', () => {
  it('records the working container\'s changes (with whiteouts), config, author, comment and parent', async () => {
    await store.createLayer(undefined, 'imp:plain', { name: 'work1' });
    const upper = await store.layerPath('work1');
    fs.mkdirSync(path.join(upper, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(upper, 'etc/os-release'), 'ID=changed\n');
    fs.writeFileSync(path.join(upper, 'etc/.wh.remove-me'), '');
    fs.writeFileSync(path.join(upper, 'new-file'), 'new\n');
    const { id } = await store.commit('work1', { ref: 'committed:1', author: 'A. Author <a@example.com>', message: 'a change', changes: ['ENV X=1', 'CMD ["/usr/bin/tool"]'] });
    const ins = await store.inspect('committed:1');
    expect(ins.Id).toBe(id);
    expect(ins.Author).toBe('A. Author <a@example.com>');
    expect(ins.Config).toMatchObject({ Env: ['X=1'], Cmd: ['/usr/bin/tool'] });
    const base = await store.inspect('imp:plain');
    expect(ins.RootFS.Layers!.slice(0, 1)).toEqual(base.RootFS.Layers);
    expect(ins.RootFS.Layers).toHaveLength(2);
    const hist = await store.history('committed:1');
    expect(hist[0]).toMatchObject({ Comment: 'a change' });
    expect(hist[0]!.Size).toBeGreaterThan(0);
    expect(await store.children('imp:plain')).toContain(id);
    const events: string[] = [];
    for await (const e of store.events({ filters: { event: ['commit'] } })) events.push(`${e.Type} ${e.Actor.Attributes.imageID} ${e.Actor.Attributes.comment}`);
    expect(events).toEqual([`container ${id} a change`]);

    const expected = tmp('expected');
    execFileSync('cp', ['-a', rootfs, expected]);
    fs.writeFileSync(path.join(expected, 'etc/os-release'), 'ID=changed\n');
    fs.rmSync(path.join(expected, 'etc/remove-me'));
    fs.writeFileSync(path.join(expected, 'new-file'), 'new\n');
    const got = await treeOf('committed:1');
    const want = await describeTree(expected);
    // Files the test wrote have this process's owner; compare what the image defines.
    for (const k of ['etc/os-release', 'new-file']) { delete got[k]; delete want[k]; }
    expect(got).toEqual(want);
    expect(Object.keys(await treeOf('committed:1'))).toEqual(Object.keys(await describeTree(expected)));
  });

  it('an unchanged container still makes a new image, with an empty_layer history entry', async () => {
    await store.createLayer(undefined, 'imp:plain', { name: 'work2' });
    const { id } = await store.commit('work2', { message: 'nothing' });
    const base = await store.inspect('imp:plain');
    const ins = await store.inspect(id);
    expect(id).not.toBe(base.Id);
    expect(ins.RootFS.Layers).toEqual(base.RootFS.Layers);
    const hist = await store.history(id);
    expect(hist[0]).toMatchObject({ Comment: 'nothing', Size: 0 });
    await expect(store.commit('no-such-container')).rejects.toMatchObject({ code: 'NotFound', message: 'No such container: no-such-container' });
    const before = (await store.images({ all: true })).length;
    await expect(store.commit('work2', { ref: 'Bad:Name' })).rejects.toMatchObject({ code: 'InvalidArgument' });
    expect((await store.images({ all: true })).length).toBe(before);
  });

  it('--squash gives one layer with the same tree; only the squashed image is announced and kept', async () => {
    const creates = async () => { const out: string[] = []; for await (const e of store.events({ filters: { event: ['create'] } })) out.push(e.Actor.ID); return out; };
    const dangling = async () => (await store.images({ all: true })).filter((i) => i.RepoTags.length === 0).map((i) => i.Id).sort();
    const [createdBefore, danglingBefore] = [await creates(), await dangling()];
    const { id } = await store.commit('work1', { ref: 'committed:squashed', squash: true });
    const ins = await store.inspect(id);
    expect(ins.RootFS.Layers).toHaveLength(1);
    expect(await treeOf('committed:squashed')).toEqual(await treeOf('committed:1'));
    expect(await creates()).toEqual([...createdBefore, id]);
    expect(await dangling()).toEqual(danglingBefore);
  });
});

describe('squash', () => {
  it('merges everything (or what is above a parent) into one layer, tree and history kept', async () => {
    const { id } = await store.squash('committed:1', { ref: 'squashed:all' });
    const ins = await store.inspect(id);
    expect(ins.RootFS.Layers).toHaveLength(1);
    expect(await treeOf('squashed:all')).toEqual(await treeOf('committed:1'));
    const hist = await store.history(id);
    expect(hist[0]!.Comment).toBe(`create new from ${(await store.inspect('committed:1')).Id}`);
    expect(hist.slice(1).every((h) => h.Size === 0)).toBe(true);
    expect(hist).toHaveLength((await store.history('committed:1')).length + 1);

    const onParent = await store.squash('committed:1', { parent: 'imp:plain', ref: 'squashed:parent' });
    const p = await store.inspect(onParent.id);
    const base = await store.inspect('imp:plain');
    expect(p.RootFS.Layers).toHaveLength(2);
    expect(p.RootFS.Layers![0]).toBe(base.RootFS.Layers![0]);
    expect(await treeOf('squashed:parent')).toEqual(await treeOf('committed:1'));
    expect((await store.history(onParent.id))[0]!.Comment).toBe(`merge ${(await store.inspect('committed:1')).Id} to ${base.Id}`);
    await expect(store.squash('imp:plain', { parent: 'committed:1' })).rejects.toMatchObject({ code: 'InvalidArgument' });
  });
});

describe('createImage (the builder\'s entry point)', () => {
  it('adds layers on a parent, leaving out empty tars, with the parent label', async () => {
    const empty = tmp('empty') + '.tar';
    fs.writeFileSync(empty, Buffer.alloc(1024));
    const extra = tmp('extra');
    fs.mkdirSync(path.join(extra, 'opt'), { recursive: true });
    fs.writeFileSync(path.join(extra, 'opt/app'), 'app\n');
    execFileSync('tar', ['-C', extra, '-czf', extra + '.tgz', 'opt']);
    const base = await store.inspect('imp:plain');
    const { id } = await store.createImage(
      { architecture: base.Architecture, os: base.Os, rootfs: { type: 'layers', diff_ids: [] }, config: { Cmd: ['/opt/app'] } },
      { parent: 'imp:plain', layers: [{ stream: fs.createReadStream(empty) }, { stream: fs.createReadStream(extra + '.tgz') }], ref: 'built:1' },
    );
    const ins = await store.inspect(id);
    expect(ins.RootFS.Layers).toHaveLength(2);
    expect(ins.Config.Cmd).toEqual(['/opt/app']);
    expect(await store.children('imp:plain')).toContain(id);
    const tree = await treeOf('built:1');
    expect(tree['opt/app']).toMatchObject({ type: 'file', size: 4 });
    expect(tree['etc/os-release']).toBeDefined();
    const actions: string[] = [];
    for await (const e of store.events({ filters: { image: [id] } })) actions.push(e.Action);
    expect(actions).toEqual(['create', 'tag']);
  });

  it('the store checks clean after all of it', async () => {
    expect(await store.check()).toMatchObject({ ok: true });
  });
});

describe('peers read the results', () => {
  let registry: Registry;
  beforeAll(async () => { registry = await startRegistry(); }, 60_000);
  afterAll(async () => { await registry?.stop(); });

  it('pushed, skopeo copies them and umoci unpacks the same tree as our checkout', async () => {
    for (const name of ['committed:1', 'squashed:all', 'imp:xz']) {
      const ref = `${registry.host}/offline/${name}`;
      await store.tag(name, ref);
      await store.push(ref);
      const layout = tmp('layout');
      await skopeo(['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:t`]);
      const bundle = tmp('bundle');
      execFileSync('umoci', ['unpack', ...(process.geteuid?.() === 0 ? [] : ['--rootless']), '--image', `${layout}:t`, bundle], { stdio: 'pipe' });
      expect(await describeTree(path.join(bundle, 'rootfs'))).toEqual(await treeOf(name));
    }
  }, 120_000);
});

describe('stowage import / commit / image squash commands', () => {
  it('run end to end and print the new IDs', async () => {
    const root = store.root;
    await store.close();
    try {
      const i = await runCli(['--root', root, 'import', '-c', 'ENV FROM_CLI=1', '-m', 'cli import', path.join(work, 'rootfs.tar'), 'cli:imported']);
      expect(i.code).toBe(0);
      expect(i.out).toMatch(/^sha256:[a-f0-9]{64}\n$/);
      const bad = await runCli(['--root', root, 'import', '-c', 'COPY a b', path.join(work, 'rootfs.tar')]);
      expect(bad).toMatchObject({ code: 1 });
      expect(bad.err).toContain('copy is not a valid change command');
      const c = await runCli(['--root', root, 'container', 'create', '--name', 'clic', 'cli:imported']);
      expect(c.code).toBe(0);
      const cm = await runCli(['--root', root, 'commit', '-a', 'me', '-m', 'cli commit', 'clic', 'cli:committed']);
      expect(cm.code).toBe(0);
      const sq = await runCli(['--root', root, 'image', 'squash', '-t', 'cli:squashed', 'cli:committed']);
      expect(sq).toMatchObject({ code: 0 });
      expect(sq.out).toMatch(/^sha256:[a-f0-9]{64}\n$/);
    } finally {
      store = await openStowage({ root });
    }
    expect((await store.inspect('cli:committed')).Author).toBe('me');
    expect((await store.inspect('cli:imported')).Config.Env).toEqual(['FROM_CLI=1']);
  });
});
