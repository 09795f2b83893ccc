// A layer applied from a file that is still being written (a download), in this thread and on a thread
// of the apply pool: it follows the writer, fails when the writer gives up or the caller aborts, and a
// layer that waits for its parent never keeps the parent from a thread.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isStowageError } from '../../src/errors/index.js';
import { applyLayer } from '../../src/snapshots/index.js';
import { ApplyPool, setApplyPool } from '../../src/snapshots/apply-pool.js';
import { LayerFile } from '../../src/snapshots/layer-file.js';
import { REPO, ensureBuilt } from '../cli/binary.js';
import { buildTar, compressBuf, describeTree, dir, file, hardlink, streamOf, tmpdir } from './helpers.js';

const roots: string[] = [];
const fds: number[] = [];
const scratch = (): string => { const d = tmpdir(); roots.push(d); return d; };
afterAll(() => {
  for (const fd of fds.splice(0)) fs.closeSync(fd);
  for (const d of roots) fs.rmSync(d, { recursive: true, force: true });
});

/** A file the test writes piece by piece, as a download would, with its LayerFile. */
function growing(): { file: LayerFile; write(b: Buffer): void; written: number } {
  const p = path.join(scratch(), 'blob');
  const wfd = fs.openSync(p, 'w');
  const rfd = fs.openSync(p, 'r');
  fds.push(wfd, rfd);
  const file = new LayerFile(rfd);
  const g = {
    file,
    written: 0,
    write(b: Buffer): void { fs.writeSync(wfd, b, 0, b.length, g.written); g.written += b.length; file.grow(g.written); },
  };
  return g;
}

const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms));

const entries = Array.from({ length: 40 }, (_, i) => file(`d${i % 4}/f${i}`, randomBytes(2_000 + i * 97)));

describe.each([
  { name: 'in this thread', threads: 0 },
  { name: 'on an apply thread', threads: 1 },
])('a layer file that is still being written, applied $name', ({ threads }) => {
  let pool: ApplyPool | undefined;
  beforeAll(async () => {
    if (threads === 0) return;
    await ensureBuilt();
    pool = new ApplyPool(pathToFileURL(path.join(REPO, 'dist', 'snapshots', 'apply-worker.js')), threads);
    setApplyPool(pool);
  });
  afterAll(async () => { setApplyPool(undefined); await pool?.close(); });

  it('follows the writer and ends only once the file is complete, equal to an apply from a stream', async () => {
    const tar = await buildTar([dir('d0'), ...entries]);
    const gz = compressBuf(tar, 'gzip');
    const refDir = path.join(scratch(), 'ref');
    const ref = await applyLayer(streamOf(gz), refDir, { mode: 'overlay' });
    const g = growing();
    const dest = path.join(scratch(), 'fs');
    let done = false;
    const applying = applyLayer(g.file, dest, { mode: 'overlay' }).finally(() => { done = true; });
    try {
      for (let off = 0; off < gz.length; off += 2000) { g.write(gz.subarray(off, off + 2000)); await tick(2); }
      // A new thread takes a moment to start: wait until it has read what is there.
      for (let i = 0; i < 1000 && g.file.consumed < gz.length; i++) await tick(5);
      await tick(20);
      expect(g.file.consumed).toBe(gz.length);
      expect(done).toBe(false); // every byte is there, but the writer has not said it is complete
      g.file.complete(g.written);
    } finally {
      g.file.fail(); // never leaves the thread waiting (a no-op once complete)
    }
    const res = await applying;
    expect(res.diffID).toBe(ref.diffID);
    expect(res.compression).toBe('gzip');
    expect(await describeTree(dest, { mtimes: true })).toEqual(await describeTree(refDir, { mtimes: true }));
  });

  it('fails, leaving nothing behind, when the writer gives up half-way', async () => {
    const gz = compressBuf(await buildTar(entries), 'gzip');
    const g = growing();
    const base = scratch();
    const applying = applyLayer(g.file, path.join(base, 'fs'), { mode: 'overlay' }).then(() => undefined, (e: unknown) => e as Error);
    g.write(gz.subarray(0, gz.length >> 1));
    await tick(30);
    g.file.fail();
    const err = await applying;
    expect(err).toBeInstanceOf(Error);
    expect(String(err)).toMatch(/given up by its writer/);
    expect(fs.readdirSync(base)).toEqual([]);
  });

  it('an abort reaches an apply that waits for bytes', async () => {
    const gz = compressBuf(await buildTar(entries), 'zstd');
    const g = growing();
    const base = scratch();
    const ac = new AbortController();
    const applying = applyLayer(g.file, path.join(base, 'fs'), { mode: 'overlay', signal: ac.signal }).then(() => undefined, (e: unknown) => e);
    g.write(gz.subarray(0, 1000));
    await tick(30);
    ac.abort();
    expect(isStowageError(await applying, 'Aborted')).toBe(true);
    expect(fs.readdirSync(base)).toEqual([]);
  });

  it('a truncated file is an invalid archive, for every compression', async () => {
    const tar = await buildTar(entries);
    for (const kind of ['gzip', 'zstd', 'none'] as const) {
      const bytes = compressBuf(tar, kind);
      const g = growing();
      g.write(bytes.subarray(0, bytes.length - 700));
      g.file.complete(g.written);
      const err = await applyLayer(g.file, path.join(scratch(), 'fs'), { mode: 'overlay', compression: kind }).catch((e: unknown) => e);
      expect(isStowageError(err, 'InvalidArgument')).toBe(true);
    }
  });
});

describe('a complete layer file applied in the calling thread', () => {
  it('lets other work on the thread run between chunks (as a stream would)', async () => {
    const big = Array.from({ length: 8 }, (_, i) => file(`big/f${i}`, randomBytes(1 << 20)));
    const g = growing();
    g.write(compressBuf(await buildTar(big), 'gzip'));
    g.file.complete(g.written);
    let ticks = 0;
    const timer = setInterval(() => { ticks++; }, 0);
    let during = 0;
    try {
      await applyLayer(g.file, path.join(scratch(), 'fs'), { mode: 'overlay' }).then(() => { during = ticks; });
    } finally {
      clearInterval(timer);
    }
    expect(during).toBeGreaterThan(0);
  });
});

describe('a layer file where Node offers no synchronous inflate', () => {
  it('is read as a stream instead, with the same result', async () => {
    const tar = await buildTar(entries);
    const gz = compressBuf(tar, 'gzip');
    const ref = await applyLayer(streamOf(gz), path.join(scratch(), 'ref'), { mode: 'overlay' });
    // A gunzip without the native handle the synchronous decoder drives (as a future Node might make).
    const real = zlib.createGunzip;
    const spy = vi.spyOn(zlib, 'createGunzip').mockImplementationOnce((o) => Object.assign(real(o), { _handle: undefined }));
    try {
      const g = growing();
      g.write(gz);
      g.file.complete(g.written);
      const res = await applyLayer(g.file, path.join(scratch(), 'fs'), { mode: 'overlay' });
      expect(spy).toHaveBeenCalled();
      expect(res.diffID).toBe(ref.diffID);
      expect(res.entries).toBe(ref.entries);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('the apply pool', () => {
  let pool: ApplyPool;
  beforeAll(async () => {
    await ensureBuilt();
    pool = new ApplyPool(pathToFileURL(path.join(REPO, 'dist', 'snapshots', 'apply-worker.js')), 1);
    setApplyPool(pool);
  });
  afterAll(async () => { setApplyPool(undefined); await pool.close(); });

  it('with one thread, a layer waiting for its parent lends the thread to the parent (no deadlock)', async () => {
    const base = scratch();
    const lowerGz = compressBuf(await buildTar([dir('usr'), file('usr/bin', 'binary', 0o755)]), 'gzip');
    const upperGz = compressBuf(await buildTar([file('etc/conf', 'c'), hardlink('usr/bin', 'usr/bin2')]), 'gzip');
    const complete = (b: Buffer): LayerFile => {
      const g = growing();
      g.write(b);
      g.file.complete(g.written);
      return g.file;
    };
    const l1 = path.join(base, 'l1');
    const l2 = path.join(base, 'l2');
    let lowerCommitted!: () => void;
    const lowerReady = new Promise<void>((r) => { lowerCommitted = r; });
    // The upper layer is queued first and takes the only thread; it then needs the lower layer.
    const upper = applyLayer(complete(upperGz), {
      staging: path.join(base, 'staging-2'),
      ready: async () => { await lowerReady; return { dir: l2, lowerDirs: [l1] }; },
    }, { mode: 'overlay' });
    const lower = applyLayer(complete(lowerGz), { staging: path.join(base, 'staging-1'), ready: async () => ({ dir: l1, lowerDirs: [] }) }, { mode: 'overlay' });
    await lower;
    lowerCommitted();
    await upper;
    expect(fs.readFileSync(path.join(l2, 'usr/bin2'), 'utf8')).toBe('binary');
    expect(fs.readFileSync(path.join(l2, 'etc/conf'), 'utf8')).toBe('c');
  });

  it('a typed error crosses from the thread with its code and data', async () => {
    const g = growing();
    g.write(Buffer.from('definitely not a layer archive, just text long enough'));
    g.file.complete(g.written);
    const err = await applyLayer(g.file, path.join(scratch(), 'fs'), { mode: 'overlay', compression: 'gzip' }).catch((e: unknown) => e);
    expect(isStowageError(err, 'InvalidArgument')).toBe(true);
    expect((err as { data: { reason: string } }).data.reason).toBe('compression-mismatch');
  });
});
