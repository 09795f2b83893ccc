import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyLayer, checkout, decompressStream, detectCompression } from '../../src/snapshots/index.js';
import { ApplyPool, setApplyPool } from '../../src/snapshots/apply-pool.js';
import { LayerFile } from '../../src/snapshots/layer-file.js';
import { REPO, ensureBuilt } from '../cli/binary.js';
import { isStowageError } from '../../src/errors/index.js';
import { BLOCK, END, blockData, buildTar, compressBuf, describeTree, dir, file, hardlink, isRoot, rawHeader, sealHeader, sha256, streamOf, symlink, tmpdir, whiteout, type TEntry } from './helpers.js';

/**
 * The ways a layer reaches applyLayer, each held to the same cases: a stream; a file read in this
 * thread (LayerFile); a file read on a thread of the apply pool, run from the built thread script.
 */
interface Variant { name: string; input(bytes: Buffer): Readable | LayerFile; setup?(): Promise<void>; teardown?(): Promise<void> }
const openFds: number[] = [];
afterAll(() => { for (const fd of openFds.splice(0)) fs.closeSync(fd); });
function layerFileOf(bytes: Buffer): LayerFile {
  const p = path.join(scratch(), 'layer');
  fs.writeFileSync(p, bytes);
  const fd = fs.openSync(p, 'r');
  openFds.push(fd);
  return LayerFile.complete(fd, bytes.length);
}
let threads: ApplyPool | undefined;
const VARIANTS: Variant[] = [
  { name: 'a stream', input: streamOf },
  { name: 'a file, in this thread', input: layerFileOf },
  {
    name: 'a file, on an apply thread',
    input: layerFileOf,
    setup: async () => {
      await ensureBuilt();
      threads = new ApplyPool(pathToFileURL(path.join(REPO, 'dist', 'snapshots', 'apply-worker.js')), 2);
      setApplyPool(threads);
    },
    teardown: async () => { setApplyPool(undefined); await threads?.close(); },
  },
];

const roots: string[] = [];
const scratch = (): string => { const d = tmpdir(); roots.push(d); return d; };
afterAll(() => { for (const d of roots) fs.rmSync(d, { recursive: true, force: true }); });

/** A time no apply would set: a host file keeping it proves nothing was written through a symlink. */
const OLD = new Date('2001-02-03T04:05:06Z');

const everyType = [
  dir('etc'),
  file('etc/hosts', '127.0.0.1 localhost\n', 0o644),
  file('etc/shadow', 'secret', 0o640, { gid: 42 }),
  dir('bin', 0o755),
  file('bin/su', '#!/bin/sh\n', 0o4755),
  symlink('/etc/hosts', 'hosts-abs'),
  symlink('../etc/hosts', 'bin/hosts-rel'),
  hardlink('etc/hosts', 'etc/hosts.link'),
  { name: 'fifo', type: 'fifo' as const, mode: 0o600 },
  dir('tmp', 0o1777),
  file('empty', ''),
  dir('ro', 0o555),
  file('ro/file', 'x', 0o400),
];

describe('compression', () => {
  it('detects by magic bytes, not by name', () => {
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 0x08, 0]))).toBe('gzip');
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
    expect(detectCompression(Buffer.from([0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]))).toBe('zstd');
    expect(detectCompression(Buffer.from('ustar\0\0\0'))).toBe('none');
    expect(detectCompression(Buffer.from([0x1f, 0x8b]))).toBe('none');
  });

  it('decompressStream round-trips each format, even with tiny chunks', async () => {
    const data = Buffer.from('hello world '.repeat(5000));
    for (const kind of ['gzip', 'zstd', 'none'] as const) {
      const c = compressBuf(data, kind);
      const chunks = [];
      for (let i = 0; i < c.length; i += 3) chunks.push(c.subarray(i, i + 3));
      const out = decompressStream(Readable.from(chunks));
      const got: Buffer[] = [];
      for await (const b of out) got.push(b as Buffer);
      expect(Buffer.concat(got).equals(data)).toBe(true);
      expect(await out.detected).toBe(kind);
    }
  });
});

describe.each(VARIANTS)('applyLayer, the layer read from $name', (variant) => {
  beforeAll(async () => { await variant.setup?.(); });
  afterAll(async () => { await variant.teardown?.(); });
  const apply = (bytes: Buffer, target: Parameters<typeof applyLayer>[1], opts: Parameters<typeof applyLayer>[2]) => applyLayer(variant.input(bytes), target, opts);

  it('applies every entry type, with the same diffID for plain, gzip and zstd', async () => {
    const t = await buildTar(everyType);
    const ids = new Set<string>();
    for (const kind of ['none', 'gzip', 'zstd'] as const) {
      const dest = path.join(scratch(), 'fs');
      const r = await apply(compressBuf(t, kind), dest, { mode: 'merged' });
      expect(r.compression).toBe(kind);
      expect(r.size).toBe(t.length);
      expect(r.diffID).toBe(`sha256:${sha256(t)}`);
      ids.add(r.diffID);
      expect(fs.readFileSync(path.join(dest, 'etc/hosts'), 'utf8')).toBe('127.0.0.1 localhost\n');
      expect(fs.readlinkSync(path.join(dest, 'hosts-abs'))).toBe('/etc/hosts');
      expect(fs.readlinkSync(path.join(dest, 'bin/hosts-rel'))).toBe('../etc/hosts');
      expect(fs.statSync(path.join(dest, 'etc/hosts.link')).ino).toBe(fs.statSync(path.join(dest, 'etc/hosts')).ino);
      expect(fs.lstatSync(path.join(dest, 'fifo')).isFIFO()).toBe(true);
      expect(fs.statSync(path.join(dest, 'tmp')).mode & 0o7777).toBe(0o1777);
      expect(fs.statSync(path.join(dest, 'ro')).mode & 0o7777).toBe(0o555);
      expect(fs.statSync(path.join(dest, 'etc/shadow')).mode & 0o7777).toBe(0o640);
      if (isRoot) {
        expect(fs.statSync(path.join(dest, 'bin/su')).mode & 0o7777).toBe(0o4755);
        expect(fs.statSync(path.join(dest, 'etc/shadow')).gid).toBe(42);
      }
      expect(fs.statSync(path.join(dest, 'etc/hosts')).mtime.toISOString()).toBe('2024-01-02T03:04:05.000Z');
      expect(fs.statSync(path.join(dest, 'etc')).mtime.toISOString()).toBe('2024-01-02T03:04:05.000Z');
    }
    expect(ids.size).toBe(1);
  });

  it('includes trailing bytes after the tar end in the diffID', async () => {
    const t = Buffer.concat([await buildTar([file('a', 'x')]), Buffer.alloc(4096), Buffer.from('trailing')]);
    const r = await apply(compressBuf(t, 'gzip'), path.join(scratch(), 'fs'), { mode: 'merged' });
    expect(r.diffID).toBe(`sha256:${sha256(t)}`);
    expect(r.size).toBe(t.length);
  });

  it('hides no entry behind an old-style name ending in / whose data is zeros (GNU tar, busybox and Go list both)', async () => {
    // To tar-stream, Go and GNU tar, `d/` with type flag 0 carries its 1024 bytes: they are not the end marker.
    const t = Buffer.concat([rawHeader({ name: 'd/', size: 2 * BLOCK }), Buffer.alloc(2 * BLOCK), rawHeader({ name: 'after', size: 5 }), blockData('after'), END]);
    const dest = path.join(scratch(), 'fs');
    const r = await apply(t, dest, { mode: 'merged' });
    expect(r.entries).toBe(2);
    expect(fs.readFileSync(path.join(dest, 'after'), 'utf8')).toBe('after');
    expect(fs.statSync(path.join(dest, 'd')).size).toBe(2 * BLOCK);
  });

  it('a directory entry claiming a size neither hangs nor swallows the entry after it', async () => {
    const t = Buffer.concat([rawHeader({ name: 'd', type: '5', size: BLOCK }), rawHeader({ name: 'd/f', size: 1 }), blockData('f'), END]);
    const dest = path.join(scratch(), 'fs');
    const r = await apply(t, dest, { mode: 'merged' });
    expect(r.entries).toBe(2);
    expect(fs.readFileSync(path.join(dest, 'd/f'), 'utf8')).toBe('f');
  });

  it('handles long names and link targets (PAX) and non-ASCII names', async () => {
    const long = 'd'.repeat(80) + '/' + 'e'.repeat(120) + '/' + 'f'.repeat(200);
    const t = await buildTar([file(long, 'deep'), symlink('x'.repeat(300), 'longlink'), file('çé/日本', 'utf8'), hardlink(long, 'hl')]);
    const dest = path.join(scratch(), 'fs');
    await apply(t, dest, { mode: 'merged' });
    expect(fs.readFileSync(path.join(dest, long), 'utf8')).toBe('deep');
    expect(fs.readlinkSync(path.join(dest, 'longlink'))).toBe('x'.repeat(300));
    expect(fs.readFileSync(path.join(dest, 'çé/日本'), 'utf8')).toBe('utf8');
    expect(fs.statSync(path.join(dest, 'hl')).ino).toBe(fs.statSync(path.join(dest, long)).ino);
  });

  it('streams large files (bigger than the small-file buffer)', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    const t = await buildTar([file('big', big)]);
    const dest = path.join(scratch(), 'fs');
    await apply(compressBuf(t, 'zstd'), dest, { mode: 'merged' });
    expect(sha256(fs.readFileSync(path.join(dest, 'big')))).toBe(sha256(big));
  });

  it('merged mode: whiteouts delete lower entries, opaque dirs hide lower children but keep this layer\'s', async () => {
    const dest = path.join(scratch(), 'fs');
    await apply(await buildTar([dir('a'), file('a/old'), dir('a/sub'), file('a/sub/deep'), file('gone'), dir('gonedir'), file('gonedir/x'), file('keep')]), dest, { mode: 'merged' });
    // the opaque marker sits AFTER a same-layer entry and before another: both must survive
    await apply(await buildTar([dir('a'), dir('a/sub'), file('a/sub/new', 'n'), whiteout('a/.wh..wh..opq'), file('a/later', 'l'), whiteout('.wh.gone'), whiteout('.wh.gonedir'), file('fresh'), whiteout('.wh.fresh')]), dest, { mode: 'merged' });
    expect(fs.readdirSync(path.join(dest, 'a')).sort()).toEqual(['later', 'sub']);
    expect(fs.readdirSync(path.join(dest, 'a/sub'))).toEqual(['new']);
    expect(fs.existsSync(path.join(dest, 'gone'))).toBe(false);
    expect(fs.existsSync(path.join(dest, 'gonedir'))).toBe(false);
    expect(fs.existsSync(path.join(dest, 'keep'))).toBe(true);
    expect(fs.existsSync(path.join(dest, 'fresh'))).toBe(true); // a whiteout only acts on lower layers
    expect(fs.readdirSync(dest).some((n) => n.startsWith('.wh.'))).toBe(false);
  });

  it('overlay mode keeps OCI whiteout markers and copies up hardlink targets from lower layers', async () => {
    const base = scratch();
    const l1 = path.join(base, 'l1');
    await apply(await buildTar([dir('usr', 0o750, { uid: 3 }), file('usr/bin', 'binary', 0o755), file('x')]), l1, { mode: 'overlay' });
    const l2 = path.join(base, 'l2');
    await apply(await buildTar([hardlink('usr/bin', 'usr/bin2'), whiteout('.wh.x'), whiteout('usr/.wh..wh..opq')]), l2, { mode: 'overlay', lowerDirs: [l1] });
    expect(fs.existsSync(path.join(l2, '.wh.x'))).toBe(true);
    expect(fs.existsSync(path.join(l2, 'usr/.wh..wh..opq'))).toBe(true);
    expect(fs.readFileSync(path.join(l2, 'usr/bin2'), 'utf8')).toBe('binary');
    expect(fs.statSync(path.join(l2, 'usr/bin2')).ino).toBe(fs.statSync(path.join(l2, 'usr/bin')).ino);
    // the parent created in the upper layer took the lower layer's metadata
    expect(fs.statSync(path.join(l2, 'usr')).mode & 0o7777).toBe(0o750);
    if (isRoot) expect(fs.statSync(path.join(l2, 'usr')).uid).toBe(3);
    expect(fs.readFileSync(path.join(l1, 'usr/bin'), 'utf8')).toBe('binary');
  });

  it('skips device nodes when unprivileged, creates them when root', async () => {
    const t = await buildTar([{ name: 'null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 }, file('ok', 'y')]);
    const skipped: string[] = [];
    const d1 = path.join(scratch(), 'fs');
    const r = await apply(t, d1, { mode: 'merged', rootless: true, onUnsupported: (p) => skipped.push(p) });
    expect(r.skipped.map((s) => s.path)).toEqual(['null']);
    expect(skipped).toEqual(['null']);
    expect(fs.existsSync(path.join(d1, 'null'))).toBe(false);
    if (isRoot) {
      const d2 = path.join(scratch(), 'fs');
      const r2 = await apply(t, d2, { mode: 'merged' });
      expect(r2.skipped).toEqual([]);
      const st = fs.lstatSync(path.join(d2, 'null'));
      expect(st.isCharacterDevice()).toBe(true);
      expect(st.rdev).toBe(fs.statSync('/dev/null').rdev);
    }
  });

  it('applies user xattrs, refuses trusted.* and reports it', async () => {
    const t = await buildTar([file('x', 'v', 0o644, { pax: { 'SCHILY.xattr.user.test': 'hello', 'SCHILY.xattr.trusted.evil': 'y' } })]);
    const dest = path.join(scratch(), 'fs');
    const r = await apply(t, dest, { mode: 'merged' });
    expect(r.skipped).toEqual([{ path: 'x', reason: 'xattr trusted.evil refused' }]);
    const { execFileSync } = await import('node:child_process');
    expect(execFileSync('getfattr', ['--only-values', '-n', 'user.test', path.join(dest, 'x')]).toString()).toBe('hello');
  });

  it('rejects corrupt archives with InvalidArgument and leaves no staging behind', async () => {
    const base = scratch();
    const t = compressBuf(await buildTar([file('a', 'x'.repeat(10000))]), 'gzip');
    const corrupt = Buffer.concat([t.subarray(0, 40), Buffer.alloc(40, 0xff), t.subarray(80)]);
    const err = await apply(corrupt, path.join(base, 'fs'), { mode: 'merged' }).catch((e) => e);
    expect(isStowageError(err, 'InvalidArgument')).toBe(true);
    expect(fs.readdirSync(base)).toEqual([]);
    const trunc = await apply(t.subarray(0, t.length - 30), path.join(base, 'fs'), { mode: 'merged' }).catch((e) => e);
    expect(isStowageError(trunc)).toBe(true);
    expect(fs.readdirSync(base)).toEqual([]);
  });

  it('short streams fail cleanly instead of hanging; an empty stream is an empty layer (as Go\'s tar reader)', async () => {
    const empty = await apply(Buffer.alloc(0), path.join(scratch(), 'fs'), { mode: 'merged' });
    expect(empty.entries).toBe(0);
    for (const b of [Buffer.from('abc'), Buffer.from([0x1f, 0x8b, 0x08])]) {
      const base = scratch();
      const err = await apply(b, path.join(base, 'fs'), { mode: 'merged' }).catch((e) => e);
      expect(isStowageError(err, 'InvalidArgument'), String(err)).toBe(true);
      expect(fs.readdirSync(base)).toEqual([]);
    }
  });

  it('an empty tar (just the end marker) applies to an empty tree', async () => {
    const r = await apply(compressBuf(Buffer.alloc(1024), 'gzip'), path.join(scratch(), 'fs'), { mode: 'merged' });
    expect(r.entries).toBe(0);
    expect(r.size).toBe(1024);
  });

  it('honours an AbortSignal', async () => {
    const base = scratch();
    const ac = new AbortController();
    ac.abort();
    const err = await apply(await buildTar([file('a')]), path.join(base, 'fs'), { mode: 'merged', signal: ac.signal }).catch((e) => e);
    expect(isStowageError(err, 'Aborted')).toBe(true);
    expect(fs.readdirSync(base)).toEqual([]);
  });

  it('replaces a file by a directory and a directory by a file', async () => {
    const dest = path.join(scratch(), 'fs');
    await apply(await buildTar([file('a', '1'), dir('b'), file('b/c')]), dest, { mode: 'merged' });
    await apply(await buildTar([dir('a'), file('a/x', '2'), file('b', 'now a file')]), dest, { mode: 'merged' });
    expect(fs.readFileSync(path.join(dest, 'a/x'), 'utf8')).toBe('2');
    expect(fs.readFileSync(path.join(dest, 'b'), 'utf8')).toBe('now a file');
  });

  it('a pending target: the layer is built before its lower chain exists, waits for it only at a hard link into it, and ends equal to an apply with the chain known', async () => {
    const base = scratch();
    const lowerTar = await buildTar([dir('usr', 0o750, { uid: 3, mtime: OLD }), file('usr/bin', 'binary', 0o755), dir('etc', 0o700, { mtime: OLD })]);
    const upper = [file('etc/conf', 'c'), file('usr/lib/a', 'a'), hardlink('usr/bin', 'usr/bin2'), file('after', 'z')];
    const upperTar = await buildTar(upper);
    // Reference: the lower layer first, then the upper one on top with its chain known.
    const refLower = path.join(base, 'ref-l1');
    await apply(lowerTar, refLower, { mode: 'overlay' });
    const refUpper = path.join(base, 'ref-l2');
    await apply(upperTar, refUpper, { mode: 'overlay', lowerDirs: [refLower] });

    // Pending: the upper layer starts while the lower one does not exist yet.
    const l1 = path.join(base, 'l1');
    const l2 = path.join(base, 'l2');
    const staging = path.join(base, 'staging');
    let asked = 0;
    let release!: () => void;
    const lowerDone = new Promise<void>((r) => { release = r; });
    const upperDone = apply(upperTar, {
      staging,
      ready: async () => { asked++; await lowerDone; return { dir: l2, lowerDirs: [l1] }; },
    }, { mode: 'overlay' });
    // It runs up to the hard link into the lower chain, then waits: entries before it are in staging.
    for (let i = 0; i < 200 && !fs.existsSync(path.join(staging, 'usr/lib/a')); i++) await new Promise((r) => setTimeout(r, 5));
    expect(fs.readFileSync(path.join(staging, 'etc/conf'), 'utf8')).toBe('c');
    expect(asked).toBe(1);
    expect(fs.existsSync(path.join(staging, 'after'))).toBe(false);
    expect(fs.existsSync(l2)).toBe(false);
    await apply(lowerTar, l1, { mode: 'overlay' });
    release();
    const res = await upperDone;
    expect(asked).toBe(1);
    expect(fs.existsSync(staging)).toBe(false);
    expect(res.entries).toBe(upper.length);
    // Unlisted parents took the lower layer's metadata (mode, owner, time) at the end, as in the reference.
    // usr/lib has no entry and nothing below it: both applies made it when they ran, each with its own
    // time (the two may fall on either side of a second).
    const got = await describeTree(l2, { mtimes: true, owners: true, dirMtimes: true });
    const want = await describeTree(refUpper, { mtimes: true, owners: true, dirMtimes: true });
    for (const t of [got, want]) {
      expect(Math.abs(t['usr/lib']!.mtime! - Date.now() / 1000)).toBeLessThan(60);
      delete t['usr/lib']!.mtime;
    }
    expect(got).toEqual(want);
    expect(fs.statSync(path.join(l2, 'usr')).mode & 0o7777).toBe(0o750);
    expect(fs.statSync(path.join(l2, 'etc')).mtime.getTime()).toBe(OLD.getTime());
    expect(fs.statSync(path.join(l2, 'usr/bin2')).ino).toBe(fs.statSync(path.join(l2, 'usr/bin')).ino);
  });

  it('a pending target whose chain fails leaves neither staging nor layer behind', async () => {
    const base = scratch();
    const staging = path.join(base, 'staging');
    const err = await apply(await buildTar([file('a/b', 'x')]), {
      staging,
      ready: async () => { throw new Error('parent failed'); },
    }, { mode: 'overlay' }).then(() => new Error('applied'), (e: unknown) => e as Error);
    expect(err.message).toMatch(/parent failed/);
    expect(fs.readdirSync(base)).toEqual([]);
  });

  it('creates missing parents 0755', async () => {
    const dest = path.join(scratch(), 'fs');
    await apply(await buildTar([file('a/b/c', 'x')]), dest, { mode: 'merged' });
    expect(fs.statSync(path.join(dest, 'a/b')).mode & 0o7777).toBe(0o755);
  });
});

describe('directory times are never set through a symlink that replaced the directory', () => {
  it('a dir entry later replaced by a symlink to a host file leaves the host file times alone', async () => {
    const base = scratch();
    const host = path.join(base, 'host');
    fs.mkdirSync(host);
    fs.writeFileSync(path.join(host, 'passwd'), 'p');
    fs.utimesSync(path.join(host, 'passwd'), OLD, OLD);
    await applyLayer(streamOf(await buildTar([dir('a'), symlink(path.join(host, 'passwd'), 'a')])), path.join(base, 'root'), { mode: 'merged' });
    expect(fs.statSync(path.join(host, 'passwd')).mtime.toISOString()).toBe(OLD.toISOString());
  });

  it('a nested dir whose ancestor became a symlink to a host dir leaves the host dir times alone', async () => {
    const base = scratch();
    const host = path.join(base, 'host');
    fs.mkdirSync(path.join(host, 'b'), { recursive: true });
    fs.utimesSync(path.join(host, 'b'), OLD, OLD);
    for (const mode of ['merged', 'overlay'] as const) {
      await applyLayer(streamOf(await buildTar([dir('a'), dir('a/b'), symlink(host, 'a')])), path.join(base, `root-${mode}`), { mode });
      expect(fs.statSync(path.join(host, 'b')).mtime.toISOString()).toBe(OLD.toISOString());
    }
  });
});

describe('merged apply keeps what the same layer unpacked under implicit parents (as overlay layout does)', () => {
  async function both(lower: TEntry[], upper: TEntry[]): Promise<{ merged: string; overlay: string }> {
    const base = scratch();
    const merged = path.join(base, 'merged');
    await applyLayer(streamOf(await buildTar(lower)), merged, { mode: 'merged' });
    await applyLayer(streamOf(await buildTar(upper)), merged, { mode: 'merged' });
    const l1 = path.join(base, 'l1'); const l2 = path.join(base, 'l2');
    await applyLayer(streamOf(await buildTar(lower)), l1, { mode: 'overlay' });
    await applyLayer(streamOf(await buildTar(upper)), l2, { mode: 'overlay', lowerDirs: [l1] });
    const overlay = path.join(base, 'overlay');
    await checkout(null, [l2, l1], overlay);
    return { merged, overlay };
  }

  it('opaque marker after a file whose parent dir has no entry of its own', async () => {
    const { merged, overlay } = await both([dir('a'), file('a/old'), dir('a/b'), file('a/b/oldb')], [file('a/b/new', 'n'), whiteout('a/.wh..wh..opq')]);
    expect(fs.readFileSync(path.join(merged, 'a/b/new'), 'utf8')).toBe('n');
    expect(fs.existsSync(path.join(merged, 'a/old'))).toBe(false);
    expect(fs.existsSync(path.join(merged, 'a/b/oldb'))).toBe(false);
    expect(await describeTree(merged)).toEqual(await describeTree(overlay));
  });

  it('whiteout of a directory after a same-layer file under it', async () => {
    const { merged, overlay } = await both([dir('x'), file('x/old')], [file('x/y', 'y'), whiteout('.wh.x')]);
    expect(fs.readFileSync(path.join(merged, 'x/y'), 'utf8')).toBe('y');
    expect(fs.existsSync(path.join(merged, 'x/old'))).toBe(false);
    expect(await describeTree(merged)).toEqual(await describeTree(overlay));
  });
});

describe('numeric fields and PAX records are read as tar-stream and Go read them', () => {
  it('a size field with leading NULs (read as its value by Go and tar-stream) does not end the archive early', async () => {
    const t = await buildTar([file('zeros', Buffer.alloc(1024)), file('after', 'still here')]);
    t.write('\x00'.repeat(6) + '2000\x00', 124, 'latin1'); // size 02000 = 1024, after leading NULs
    sealHeader(t);
    const dest = path.join(scratch(), 'fs');
    const r = await applyLayer(streamOf(t), dest, { mode: 'merged' });
    expect(fs.statSync(path.join(dest, 'zeros')).size).toBe(1024);
    expect(fs.readFileSync(path.join(dest, 'after'), 'utf8')).toBe('still here');
    expect(r.entries).toBe(2);
  });

  it('a PAX value that contains text looking like a size record is not read as one', async () => {
    const t = await buildTar([file('zeros', Buffer.alloc(2048), 0o644, { pax: { comment: 'a\n11 size=0\n' } }), file('after', 'still here')]);
    const dest = path.join(scratch(), 'fs');
    await applyLayer(streamOf(t), dest, { mode: 'merged' });
    expect(fs.readFileSync(path.join(dest, 'after'), 'utf8')).toBe('still here');
  });
});

describe('unknown entry types', () => {
  it('are reported and skipped, never written as regular files', async () => {
    const t = await buildTar([file('sparse', 'not the real content'), file('ok', 'y')]);
    t[156] = 'S'.charCodeAt(0); // GNU sparse: data is a sparse map, not the file
    sealHeader(t);
    const dest = path.join(scratch(), 'fs');
    const r = await applyLayer(streamOf(t), dest, { mode: 'merged' });
    expect(fs.existsSync(path.join(dest, 'sparse'))).toBe(false);
    expect(r.skipped.map((s) => s.path)).toEqual(['sparse']);
    expect(fs.readFileSync(path.join(dest, 'ok'), 'utf8')).toBe('y');
  });
});



describe('overlay layout: only marker files are whiteouts', () => {
  it('a directory named .wh.etc (from the ordinary entry .wh.etc/somefile) does not hide etc', async () => {
    const lower = [dir('etc'), file('etc/passwd', 'p')];
    const upper = [file('.wh.etc/somefile', 's')];
    const base = scratch();
    const l1 = path.join(base, 'l1'); const l2 = path.join(base, 'l2');
    await applyLayer(streamOf(await buildTar(lower)), l1, { mode: 'overlay' });
    await applyLayer(streamOf(await buildTar(upper)), l2, { mode: 'overlay', lowerDirs: [l1] });
    const co = path.join(base, 'co');
    await checkout(null, [l2, l1], co);
    const merged = path.join(base, 'merged');
    await applyLayer(streamOf(await buildTar(lower)), merged, { mode: 'merged' });
    await applyLayer(streamOf(await buildTar(upper)), merged, { mode: 'merged' });
    expect(fs.readFileSync(path.join(co, 'etc/passwd'), 'utf8')).toBe('p');
    expect(fs.readFileSync(path.join(co, '.wh.etc/somefile'), 'utf8')).toBe('s');
    expect(await describeTree(co)).toEqual(await describeTree(merged));
  });
});
