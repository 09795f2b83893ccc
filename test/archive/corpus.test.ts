/**
 * Broken and malicious archives: each fails with its typed error and leaves the store as it was (no
 * record added or moved, the store checks clean, GC takes back every blob the load wrote). Plus the
 * archives older tools write (docker < 25's per-layer `json`/`VERSION`/`layer.tar`, links between
 * repeated layers) that must load.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage, type Stowage } from '../../src/index.js';
import { filesFor, writeOciLayout, type GenImage } from '../images/gen.js';
import { buildTar, describeTree } from '../snapshots/helpers.js';

interface Member { name: string; body?: Buffer | string; type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'fifo'; linkname?: string; size?: number }

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

async function tarOf(members: Member[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => { chunks.push(c as Buffer); });
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const m of members) {
    const type = m.type ?? 'file';
    const body = m.body === undefined ? undefined : Buffer.from(m.body);
    const header = { name: m.name, type, mode: 0o644, mtime: new Date(0), ...(m.linkname ? { linkname: m.linkname } : {}), size: type === 'file' ? body?.length ?? 0 : 0 } as tar.Header;
    if (type === 'file') pack.entry(header, body ?? Buffer.alloc(0));
    else pack.entry(header);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Every file of an OCI layout dir as members (layout metadata first, then blobs). */
function layoutMembers(dir: string): Member[] {
  const out: Member[] = [];
  const walk = (rel: string) => {
    for (const n of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      if (fs.statSync(path.join(dir, r)).isDirectory()) walk(r);
      else out.push({ name: r, body: fs.readFileSync(path.join(dir, r)) });
    }
  };
  walk('');
  return out;
}

let work: string;
let store: Stowage;
let img: GenImage;
let good: Member[];
let blobsBefore: string[];
let imagesBefore: string;

const blobFiles = () => {
  const d = path.join(store.root, 'blobs', 'sha256');
  return fs.existsSync(d) ? fs.readdirSync(d).sort() : [];
};
const recordSnapshot = async () => JSON.stringify((await store.images({ all: true })).map((i) => [i.Id, i.RepoTags]));

/** Loads `archive`, expects the error, then checks the store is as it was once GC has run. */
async function expectRefused(archive: Buffer, code: string, message?: RegExp): Promise<void> {
  const p = store.load(Readable.from([archive]));
  await expect(p).rejects.toMatchObject({ code });
  if (message) await expect(p).rejects.toThrow(message);
  expect(await recordSnapshot()).toBe(imagesBefore);
  expect((await store.check()).ok).toBe(true);
  await store.gc();
  expect(blobFiles(), `blobs after a refused load (${code})`).toEqual(blobsBefore);
  expect(fs.readdirSync(path.join(store.root, 'ingest')).filter((n) => !n.startsWith('.'))).toEqual([]);
}

/** A legacy (docker < 25) archive of `layers` (uncompressed tars) with per-layer dirs. */
async function legacyArchive(layers: Buffer[], opts: { tags?: string[]; configName?: string; badDiff?: boolean; linkSecond?: boolean } = {}): Promise<Buffer> {
  const diffIds = layers.map((l) => `sha256:${sha(l)}`);
  if (opts.badDiff) diffIds[diffIds.length - 1] = `sha256:${sha('other')}`;
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: diffIds }, history: layers.map(() => ({ created_by: 'x' })) });
  const cfgName = opts.configName ?? `${sha(config)}.json`;
  const members: Member[] = [];
  const ids: string[] = [];
  layers.forEach((l, i) => {
    const id = sha(`layer${i}`);
    ids.push(id);
    members.push({ name: `${id}/`, type: 'directory' }, { name: `${id}/VERSION`, body: '1.0' }, { name: `${id}/json`, body: JSON.stringify({ id }) });
    if (opts.linkSecond && i > 0 && layers[i]!.equals(layers[0]!)) members.push({ name: `${id}/layer.tar`, type: 'symlink', linkname: `../${ids[0]}/layer.tar` });
    else members.push({ name: `${id}/layer.tar`, body: l });
  });
  members.push({ name: cfgName, body: config });
  members.push({ name: 'manifest.json', body: JSON.stringify([{ Config: cfgName, RepoTags: opts.tags ?? ['legacy/app:1'], Layers: ids.map((id) => `${id}/layer.tar`) }]) });
  members.push({ name: 'repositories', body: JSON.stringify({ 'legacy/app': { 1: ids[ids.length - 1] } }) });
  return tarOf(members);
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-corpus-'));
  img = await writeOciLayout(path.join(work, 'img'), [{ layers: [filesFor('one'), filesFor('two')] }], 'example.com/corpus/app:1');
  good = layoutMembers(img.dir);
  store = await openStowage({ root: path.join(work, 'store') });
  // A named image already there: a failed load must not move it.
  const other = await writeOciLayout(path.join(work, 'other'), [{ layers: [filesFor('keep')] }], 'example.com/corpus/app:1');
  await store.load(Readable.from([await tarOf(layoutMembers(other.dir))]));
  blobsBefore = blobFiles();
  imagesBefore = await recordSnapshot();
});

afterAll(async () => {
  await store?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const layerBlob = () => `blobs/sha256/${img.manifests[0]!.layers[1]!.digest.slice(7)}`;
const manifestBlob = () => `blobs/sha256/${img.manifests[0]!.manifest.digest.slice(7)}`;
const replace = (members: Member[], name: string, m: Partial<Member> | null): Member[] =>
  members.flatMap((x) => (x.name === name ? (m === null ? [] : [{ ...x, ...m }]) : [x]));

describe('archives that must be refused', () => {
  it('the good archive loads (the corpus is built from it)', async () => {
    const s = await openStowage({ root: path.join(work, 'control') });
    const r = await s.load(Readable.from([await tarOf(good)]));
    expect(r.images).toEqual([{ name: 'example.com/corpus/app:1', id: img.target.digest }]);
    await s.close();
  });

  it('a blob whose bytes do not hash to its name: DigestMismatch', async () => {
    const bad = replace(good, layerBlob(), { body: zlib.gzipSync(Buffer.from('tampered')) });
    await expectRefused(await tarOf(bad), 'DigestMismatch', /holds sha256:/);
  });

  it('a layer whose content does not match the config\'s diff ID: DigestMismatch', async () => {
    const broken = await writeOciLayout(path.join(work, 'baddiff'), [{ layers: [filesFor('bd')], badDiffId: true }], 'example.com/corpus/app:1');
    await expectRefused(await tarOf(layoutMembers(broken.dir)), 'DigestMismatch');
  });

  it('member names with "..", absolute paths, or NUL: InvalidArgument', async () => {
    await expectRefused(await tarOf([...good, { name: '../escape', body: 'x' }]), 'InvalidArgument', /"\.\." segment/);
    await expectRefused(await tarOf([...good, { name: 'blobs/../../escape', body: 'x' }]), 'InvalidArgument');
    await expectRefused(await tarOf([{ name: '/etc/evil', body: 'x' }, ...good]), 'InvalidArgument', /absolute path/);
  });

  it('symlinks and hard links that leave the archive: InvalidArgument; a dangling one: NotFound', async () => {
    await expectRefused(await tarOf([...replace(good, layerBlob(), { type: 'symlink', linkname: '/etc/passwd', body: undefined })]), 'InvalidArgument', /absolute link target/);
    await expectRefused(await tarOf([...replace(good, layerBlob(), { type: 'symlink', linkname: '../../../../etc/passwd', body: undefined })]), 'InvalidArgument', /outside the archive/);
    await expectRefused(await tarOf([...replace(good, layerBlob(), { type: 'link', linkname: '../x', body: undefined })]), 'InvalidArgument');
    await expectRefused(await tarOf([...good, { name: 'dangling', type: 'symlink', linkname: 'nowhere' }]), 'NotFound', /does not hold/);
  });

  it('device nodes and FIFOs as members: InvalidArgument', async () => {
    await expectRefused(await tarOf([...good, { name: 'dev', type: 'character-device' }]), 'InvalidArgument', /not a file/);
    await expectRefused(await tarOf([...good, { name: 'pipe', type: 'fifo' }]), 'InvalidArgument');
  });

  it('a member given twice (a later copy replacing a verified one): InvalidArgument', async () => {
    const dup = [...good, { name: layerBlob(), body: zlib.gzipSync(Buffer.from('second')) }];
    await expectRefused(await tarOf(dup), 'InvalidArgument', /appears twice/);
    await expectRefused(await tarOf([...good, { name: 'index.json', body: '{}' }]), 'InvalidArgument', /appears twice/);
  });

  it('missing blobs: a manifest, a layer: NotFound', async () => {
    await expectRefused(await tarOf(replace(good, manifestBlob(), null)), 'NotFound', /missing/);
    await expectRefused(await tarOf(replace(good, layerBlob(), null)), 'NotFound', /missing/);
  });

  it('a manifest naming one blob twice with different sizes: SizeMismatch', async () => {
    const m = JSON.parse(fs.readFileSync(path.join(img.dir, manifestBlob()), 'utf8'));
    m.layers.push({ ...m.layers[1], size: m.layers[1].size + 10 });
    const mb = Buffer.from(JSON.stringify(m));
    const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha(mb)}`, size: mb.length }] };
    const members = [...replace(good, 'index.json', { body: JSON.stringify(index) }), { name: `blobs/sha256/${sha(mb)}`, body: mb }];
    await expectRefused(await tarOf(members), 'SizeMismatch');
  });

  it('oversized JSON members: ResourceExhausted', async () => {
    const big = Buffer.alloc(9 * 1024 * 1024, 0x20);
    await expectRefused(await tarOf([...replace(good, 'index.json', { body: Buffer.concat([Buffer.from('{"manifests":[]}'), big]) })]), 'ResourceExhausted');
    await expectRefused(await tarOf([{ name: 'manifest.json', body: big }]), 'ResourceExhausted');
  });

  it('not a tar, a truncated tar, no known format, bad layout version, manifest.json null: InvalidArgument', async () => {
    await expectRefused(Buffer.from('this is not an archive, not even compressed'.repeat(30)), 'InvalidArgument');
    const whole = await tarOf(good);
    await expectRefused(whole.subarray(0, Math.floor(whole.length / 2)), 'InvalidArgument');
    await expectRefused(await tarOf([{ name: 'hello.txt', body: 'hi' }]), 'InvalidArgument', /unrecognized image format/);
    await expectRefused(await tarOf(replace(good, 'oci-layout', { body: '{"imageLayoutVersion":"2.0.0"}' })), 'InvalidArgument', /unsupported OCI version/);
    await expectRefused(await tarOf(replace(good, 'index.json', null)), 'InvalidArgument', /missing index.json/);
    await expectRefused(await tarOf([{ name: 'manifest.json', body: 'null' }]), 'InvalidArgument', /manifest cannot be null/);
    await expectRefused(await tarOf([{ name: 'manifest.json', body: '[{"Config":"c.json","Layers":[]}' }]), 'InvalidArgument');
  });

  it('docker-archive entries: config not matching its <hex>.json name, layer count or uncompressed layer digest wrong', async () => {
    const l = await buildTar([{ name: 'a.txt', type: 'file', body: 'a', mode: 0o644 }]);
    await expectRefused(await legacyArchive([l], { configName: `${sha('not the config')}.json` }), 'DigestMismatch');
    await expectRefused(await legacyArchive([l], { badDiff: true }), 'DigestMismatch');
    const arch = await legacyArchive([l]);
    // Layers list shorter than the config's diff_ids.
    const ex = tar.extract();
    const members: Member[] = [];
    ex.on('entry', (h, s, next) => { const c: Buffer[] = []; s.on('data', (d: unknown) => { c.push(d as Buffer); }); s.on('end', () => { members.push({ name: h.name, type: h.type as Member['type'], body: Buffer.concat(c), ...(h.linkname ? { linkname: h.linkname } : {}) }); next(); }); });
    await new Promise<void>((r) => { ex.on('finish', () => r()); ex.end(arch); });
    const mj = JSON.parse(members.find((m) => m.name === 'manifest.json')!.body!.toString());
    mj[0].Layers = [];
    await expectRefused(await tarOf(replace(members, 'manifest.json', { body: JSON.stringify(mj) }).map((m) => (m.type === 'directory' ? { ...m, body: undefined } : m))), 'InvalidArgument', /layers length mismatch/);
  });
});

describe('an aborted load', () => {
  it('stops with Aborted and leaves the store as it was', async () => {
    const whole = await tarOf(good);
    const ctrl = new AbortController();
    let reads = 0;
    // The second read aborts: the first chunk is in, the rest never comes.
    const input = new Readable({
      read() {
        reads++;
        if (reads === 1) this.push(whole.subarray(0, 4096));
        else { ctrl.abort(); this.push(whole.subarray(4096, 8192)); }
      },
    });
    await expect(store.load(input, { signal: ctrl.signal })).rejects.toMatchObject({ code: 'Aborted' });
    expect(await recordSnapshot()).toBe(imagesBefore);
    await store.gc();
    expect(blobFiles()).toEqual(blobsBefore);
  });
});

describe('archives older tools write', () => {
  it('docker < 25: per-layer dirs with json/VERSION, uncompressed layer.tar, a repeated layer linked, gzip over all', async () => {
    const a = await buildTar([{ name: 'etc/', type: 'directory', mode: 0o755 }, { name: 'etc/a', type: 'file', body: 'a\n', mode: 0o644 }]);
    const b = await buildTar([{ name: 'etc/b', type: 'file', body: 'b\n', mode: 0o600 }]);
    const archive = zlib.gzipSync(await legacyArchive([a, b, a], { linkSecond: true }));
    const s = await openStowage({ root: path.join(work, 'legacy') });
    const lines: string[] = [];
    const r = await s.load(Readable.from([archive]), { onProgress: (m) => { if (m.stream) lines.push(m.stream); } });
    expect(lines).toEqual(['Loaded image: legacy/app:1\n']);
    const ins = await s.inspect('legacy/app:1');
    expect(ins.Id).toBe(r.images[0]!.id);
    expect(ins.RootFS.Layers).toEqual([`sha256:${sha(a)}`, `sha256:${sha(b)}`, `sha256:${sha(a)}`]);
    const dir = path.join(work, 'legacy-tree');
    await s.checkout('legacy/app:1', dir);
    const t = await describeTree(dir);
    expect(Object.keys(t)).toEqual(['etc', 'etc/a', 'etc/b']);
    expect(t['etc/b']!.mode).toBe(0o600);
    // An unnamed entry gets docker's ID line.
    const r2 = await s.load(Readable.from([await legacyArchive([b], { tags: [] })]), { onProgress: (m) => { if (m.stream) lines.push(m.stream); } });
    expect(lines.at(-1)).toBe(`Loaded image ID: ${r2.images[0]!.id}\n`);
    expect((await s.check()).ok).toBe(true);
    await s.close();
  });
});
