// Disk full: a pull, an unpack and a load that hit ENOSPC on a small file system (a sized tmpfs) end with a
// typed ResourceExhausted error, leave the store checking clean, and resume once space is freed.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { openStowage } from '../../src/index.js';
import { isStowageError, type StowageError } from '../../src/errors/index.js';
import { makeTestImage, pushRaw, writeOciLayout } from '../harness/images.js';
import { heldBytes, refetchedBytes } from '../harness/redownload.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { startFaultProxy, type FaultProxy } from '../harness/proxy.js';
import { skipUnless } from '../harness/skip.js';

const isRoot = process.geteuid?.() === 0;
const MiB = 1 << 20;

let registry: Registry;
let proxy: FaultProxy;
let work: string;
const mounts: string[] = [];

/** A tmpfs of `mib` MiB (root only); resized with `resize`. */
function smallFs(name: string, mib: number): { dir: string; resize(mib: number): void } {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0700`, 'tmpfs', dir]);
  mounts.push(dir);
  return { dir, resize: (m) => { execFileSync('mount', ['-o', `remount,size=${m}m`, dir]); } };
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-full-'));
  if (!isRoot) return;
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.url);
});
afterAll(async () => {
  for (const m of mounts.reverse()) { try { execFileSync('umount', [m]); } catch { /* not mounted */ } }
  await proxy?.stop();
  await registry?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

async function pullFails(root: string, ref: string): Promise<StowageError> {
  const s = await openStowage({ root });
  try {
    let err: unknown;
    try { await s.pull(ref); } catch (e) { err = e; }
    expect(isStowageError(err), `a typed error, got ${String(err)}`).toBe(true);
    return err as StowageError;
  } finally { await s.close(); }
}

async function checkOk(root: string): Promise<void> {
  const s = await openStowage({ root });
  try {
    const r = await s.check();
    expect(r.problems.filter((p) => p.class === 'damage')).toEqual([]);
    expect(r.ok).toBe(true);
  } finally { await s.close(); }
}

describe('disk full (sized tmpfs)', () => {
  const it = skipUnless(isRoot, 'needs root to mount a sized tmpfs');
  it('a pull whose downloads fill the disk is ResourceExhausted, checks clean, and resumes when space is freed', async () => {
    // 3 incompressible layers of 3 MiB: the blobs alone need 9 MiB, the snapshots as much again.
    const img = await makeTestImage({ layers: [0, 1, 2].map((i) => ({ files: { [`blob${i}.bin`]: randomBytes(3 * MiB) }, compression: 'none' as const })) });
    await pushRaw(registry.url, 'full/pull', '1', img);
    const ref = `${proxy.host}/full/pull:1`;
    const small = smallFs('pull', 8);
    const root = path.join(small.dir, 'store');

    const err = await pullFails(root, ref);
    expect(err.code).toBe('ResourceExhausted');
    await checkOk(root);
    // Some of the image made it to disk before it filled: that part must not be fetched again.
    const held = heldBytes(root, img);
    expect([...held.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(0);

    small.resize(64);
    const again = proxy.requests.length;
    const s = await openStowage({ root });
    try {
      await s.pull(ref);
      expect((await s.images()).map((i) => i.Id)).toEqual([img.manifest.digest]);
    } finally { await s.close(); }
    await checkOk(root);
    // Resumed: nothing the store held was fetched again (what a failed write could not store is lost).
    expect(refetchedBytes(proxy.requests.slice(again), held)).toBe(0);
    expect(proxy.requests.slice(again).some((r) => r.range !== undefined)).toBe(true);
  });

  it('a store on a disk that is already full does not open: ResourceExhausted, not an I/O error; it opens once space is freed', async () => {
    const small = smallFs('opening', 4);
    const root = path.join(small.dir, 'store');
    let s = await openStowage({ root });
    await s.close(); // the last connection removes the database's -wal and -shm files
    // Fill what is left: opening must make the -shm file again and finds no room for it.
    const filler = path.join(small.dir, 'filler');
    const fd = fs.openSync(filler, 'w');
    try {
      for (;;) fs.writeSync(fd, Buffer.alloc(64 << 10));
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally { fs.closeSync(fd); }
    let err: unknown;
    try { s = await openStowage({ root }); await s.close(); } catch (e) { err = e; }
    expect(isStowageError(err), `a typed error, got ${String(err)}`).toBe(true);
    expect((err as StowageError).code).toBe('ResourceExhausted');
    expect((err as StowageError).message).toContain('no space left on device');

    fs.rmSync(filler);
    s = await openStowage({ root });
    try { expect(await s.images()).toEqual([]); } finally { await s.close(); }
    await checkOk(root);
  });

  it('an unpack that fills the disk (small blobs, big files) is ResourceExhausted, checks clean, and completes when space is freed', async () => {
    // Zeros compress ~1000:1: the blob fits easily, its 24 MiB file does not.
    const img = await makeTestImage({ layers: [{ files: { 'small.txt': 'x' } }, { files: { 'zeros.bin': Buffer.alloc(24 * MiB) } }] });
    await pushRaw(registry.url, 'full/unpack', '1', img);
    const ref = `${registry.host}/full/unpack:1`;
    const small = smallFs('unpack', 12);
    const root = path.join(small.dir, 'store');

    const err = await pullFails(root, ref);
    expect(err.code).toBe('ResourceExhausted');
    await checkOk(root);
    // No staging directory or half-applied layer is left taking the space.
    const snapDirs = fs.readdirSync(path.join(root, 'snapshots')).filter((d) => d !== 'overlay');
    expect(snapDirs.filter((d) => d.startsWith('.stowage-apply'))).toEqual([]);

    small.resize(64);
    const s = await openStowage({ root });
    try {
      await s.pull(ref);
      const out = path.join(small.dir, 'checkout');
      await s.checkout(ref, out);
      expect(fs.statSync(path.join(out, 'zeros.bin')).size).toBe(24 * MiB);
    } finally { await s.close(); }
    await checkOk(root);
  });

  it('a load that fills the disk is ResourceExhausted, names nothing, checks clean, leaves no ingest, and succeeds when space is freed', async () => {
    // The archive (an OCI layout in a tar, outside the small file system) holds 9 MiB of incompressible layers.
    const img = await makeTestImage({ layers: [0, 1, 2].map((i) => ({ files: { [`blob${i}.bin`]: randomBytes(3 * MiB) }, compression: 'none' as const })) });
    const layout = writeOciLayout(path.join(work, 'load-layout'), img, 'full/load:1');
    const archive = path.join(work, 'load.tar');
    execFileSync('tar', ['-C', layout, '-cf', archive, '.']);
    const small = smallFs('load', 8);
    const root = path.join(small.dir, 'store');

    let s = await openStowage({ root });
    try {
      let err: unknown;
      try { await s.load(fs.createReadStream(archive)); } catch (e) { err = e; }
      expect(isStowageError(err), `a typed error, got ${String(err)}`).toBe(true);
      expect((err as StowageError).code).toBe('ResourceExhausted');
      expect(await s.images()).toEqual([]);
      await s.gc();
    } finally { await s.close(); }
    await checkOk(root);
    // What the failed load wrote is reclaimed, not left filling the disk.
    expect(fs.readdirSync(path.join(root, 'ingest'))).toEqual([]);

    small.resize(64);
    s = await openStowage({ root });
    try {
      const r = await s.load(fs.createReadStream(archive));
      expect(r.images.map((i) => i.id)).toEqual([img.manifest.digest]);
      const out = path.join(small.dir, 'checkout');
      await s.checkout(r.images[0]!.id, out);
      expect(fs.statSync(path.join(out, 'blob2.bin')).size).toBe(3 * MiB);
    } finally { await s.close(); }
    await checkOk(root);
  });
});
