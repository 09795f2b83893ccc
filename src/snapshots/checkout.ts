import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, fromSystemError, throwIfAborted } from '../errors/index.js';
import { mergedChildren, type MergedEntry } from './merged.js';
import { isPrivileged, loadCarriedXattrs, loadOverrides, saveOverrides, sidecarPath, treeHasXattrs, type OwnerOverride } from './ownership.js';
import type { SnapshotLayout } from './snapshotter.js';

export interface CheckoutOptions {
  /**
   * 'copy' (default): every regular file is copied, so the tree can be edited freely.
   * 'hardlink': regular files are hard links into the store: fast and free of extra space, but they
   * share inodes (mode, owner, content) with the committed layers, so writing to them in place would
   * corrupt the store. Use it only for read-only consumers (or editors that replace files by rename).
   */
  link?: 'hardlink' | 'copy';
  signal?: AbortSignal;
  rootless?: boolean;
}

export interface CheckoutResult { entries: number; linked: number; copied: number; skipped: { path: string; reason: string }[] }

/**
 * Materialises the merged tree of a snapshot (whiteouts and opaque directories applied) into the plain
 * directory `destDir` (missing or empty), preserving types, modes, owners (or their overrides when
 * rootless), mtimes and symlinks. Hard links between files of one layer stay hard links.
 * `source` is a snapshot key, or an explicit list of overlay-layout layer dirs (nearest first).
 */
export async function checkout(sn: SnapshotLayout | null, source: string | string[], destDir: string, opts: CheckoutOptions = {}): Promise<CheckoutResult> {
  const layers = typeof source === 'string' ? sn!.layers(source) : source;
  const dest = path.resolve(destDir);
  if (fs.existsSync(dest) && fs.readdirSync(dest).length > 0) throw new InvalidArgumentError(`checkout destination ${destDir} is not empty`, { path: destDir });
  const stage = path.join(path.dirname(dest), `.stowage-checkout-${randomBytes(6).toString('hex')}`);
  fs.mkdirSync(stage, { mode: 0o755 });
  const privileged = isPrivileged(opts.rootless);
  const layerOverrides: Map<string, OwnerOverride>[] = await Promise.all(layers.map((l) => loadOverrides(l)));
  const outOverrides = new Map<string, OwnerOverride & { symlink?: boolean }>();
  // xattrs of layers that carry some (marked at apply time), copied to the visible entries.
  const layerXattrs = await Promise.all(layers.map((l) => (treeHasXattrs(l) ? loadCarriedXattrs(l) : undefined)));
  const outXattrs = new Map<string, Record<string, Buffer>>();
  const dirTimes: { p: string; atime: Date; mtime: Date; depth: number }[] = [];
  const inodes = new Map<string, string>();
  const res: CheckoutResult = { entries: 0, linked: 0, copied: 0, skipped: [] };
  const euid = process.geteuid?.() ?? 0;
  const egid = process.getegid?.() ?? 0;
  const hardlink = opts.link === 'hardlink';
  // Directories are made as the walk meets them (their children need them); everything else is a task
  // in a pool of concurrent async calls, so the copies and metadata calls of many files overlap on the
  // thread pool instead of waiting for each other on the main thread.
  const pool = new TaskPool(CONCURRENT_FILES);
  const firstCopies = new Map<string, { dst: string; done: Promise<void> }>();
  const finish = async (kind: 'file' | 'symlink' | 'other', dst: string, rel: string, st: fs.Stats, uid: number, gid: number, perm: number) => {
    if (privileged) {
      await fsp.lchown(dst, uid, gid);
      if (kind !== 'symlink') await fsp.chmod(dst, perm);
    } else {
      const actual = kind === 'file' ? perm | 0o600 : perm;
      if (kind !== 'symlink') await fsp.chmod(dst, actual);
      if (uid !== euid || gid !== egid || actual !== perm) outOverrides.set(rel, { uid, gid, mode: perm, symlink: kind === 'symlink' });
    }
    await fsp.lutimes(dst, st.atime, st.mtime);
  };
  const visit = (e: MergedEntry): void => {
    if ((res.entries & 1023) === 0) throwIfAborted(opts.signal);
    res.entries++;
    const dst = path.join(stage, e.rel);
    const st = e.st;
    const o = layerOverrides[e.layer]?.get(e.rel);
    const uid = o?.uid ?? st.uid;
    const gid = o?.gid ?? st.gid;
    const perm = o?.mode ?? st.mode & 0o7777;
    if (st.isDirectory()) {
      fs.mkdirSync(dst, { mode: 0o700 });
      dirTimes.push({ p: dst, atime: st.atime, mtime: st.mtime, depth: e.rel.split('/').length });
      const x = layerXattrs[e.layer]?.get(e.rel);
      if (x) outXattrs.set(e.rel, x);
      if (privileged) {
        fs.lchownSync(dst, uid, gid);
        fs.chmodSync(dst, perm);
      } else {
        const actual = perm | 0o700;
        fs.chmodSync(dst, actual);
        if (uid !== euid || gid !== egid || actual !== perm) outOverrides.set(e.rel, { uid, gid, mode: perm, symlink: false });
      }
      return;
    }
    if (st.isFile()) {
      const k = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? firstCopies.get(k) : undefined;
      if (first !== undefined) {
        // Another name of a file already placed: a link to it once it is there.
        pool.add(async () => { await first.done; await fsp.link(first.dst, dst); });
        if (o && !privileged) outOverrides.set(e.rel, { ...o });
        return;
      }
      const x = layerXattrs[e.layer]?.get(e.rel);
      let done: Promise<void>;
      if (hardlink) {
        res.linked++;
        // Same inode as the store: owner and mode are already the layer's; only carry the override record.
        if (o) outOverrides.set(e.rel, { ...o });
        done = pool.add(() => fsp.link(e.src, dst));
      } else {
        res.copied++;
        if (x) outXattrs.set(e.rel, x);
        done = pool.add(async () => { await fsp.copyFile(e.src, dst); await finish('file', dst, e.rel, st, uid, gid, perm); });
      }
      if (st.nlink > 1) firstCopies.set(k, { dst, done });
      return;
    }
    if (st.isSymbolicLink()) {
      pool.add(async () => { await fsp.symlink(await fsp.readlink(e.src), dst); await finish('symlink', dst, e.rel, st, uid, gid, perm); });
      return;
    }
    if (st.isFIFO()) {
      execFileSync('mkfifo', ['-m', '600', dst], { stdio: 'ignore' });
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      if (!privileged) { res.skipped.push({ path: e.rel, reason: 'device node needs privileges' }); return; }
      const major = (st.rdev >> 8) & 0xfff; const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
      execFileSync('mknod', [dst, st.isCharacterDevice() ? 'c' : 'b', String(major), String(minor)], { stdio: 'ignore' });
    } else {
      res.skipped.push({ path: e.rel, reason: 'socket' });
      return;
    }
    pool.add(() => finish('other', dst, e.rel, st, uid, gid, perm));
  };
  const walk = async (rel: string, top: number, stop: number): Promise<void> => {
    const kids = [...mergedChildren(layers, rel, top, stop).values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of kids) {
      visit(e);
      await pool.room();
      if (e.st.isDirectory()) await walk(e.rel, e.layer, e.stop);
    }
  };
  try {
    try {
      await walk('', 0, layers.length);
    } finally {
      await pool.settle();
    }
    dirTimes.sort((a, b) => b.depth - a.depth);
    for (const d of dirTimes) fs.utimesSync(d.p, d.atime, d.mtime);
    if (outOverrides.size > 0 || outXattrs.size > 0) {
      const r = await saveOverrides(stage, outOverrides, outXattrs);
      if (!r.xattrs) for (const p of outXattrs.keys()) res.skipped.push({ path: p, reason: 'xattrs unsupported' });
    }
    if (fs.existsSync(dest)) fs.rmdirSync(dest);
    fs.renameSync(stage, dest);
    if (fs.existsSync(sidecarPath(stage))) fs.renameSync(sidecarPath(stage), sidecarPath(dest));
    return res;
  } catch (e) {
    fs.rmSync(stage, { recursive: true, force: true });
    fs.rmSync(sidecarPath(stage), { force: true });
    throw fromSystemError(e, `checkout into ${destDir}`);
  }
}

/** Files placed at once by a checkout: enough to keep the libuv thread pool (4 threads) busy. */
const CONCURRENT_FILES = 16;

/** Runs async tasks, at most `limit` at a time; the first failure is thrown by `room` and `settle`. */
class TaskPool {
  private running = 0;
  private queued: Array<() => void> = [];
  private finished: Array<() => void> = [];
  private failure: { error: unknown } | undefined;
  private readonly all = new Set<Promise<void>>();

  constructor(private readonly limit: number) {}

  /** Starts `task` (queued while the pool is full); the promise settles with it. */
  add(task: () => Promise<void>): Promise<void> {
    const started = this.running < this.limit
      ? Promise.resolve()
      : new Promise<void>((r) => { this.queued.push(r); });
    if (this.running < this.limit) this.running++;
    const p = started.then(task).finally(() => {
      const next = this.queued.shift();
      if (next) next(); else this.running--;
      const waiters = this.finished;
      this.finished = [];
      for (const w of waiters) w();
    });
    const tracked = p.catch((e: unknown) => { this.failure ??= { error: e }; });
    this.all.add(tracked);
    void tracked.finally(() => this.all.delete(tracked));
    return p;
  }

  /** Resolves once few tasks wait to start (the walk must not run far ahead); throws the first failure. */
  async room(): Promise<void> {
    while (this.queued.length > this.limit * 4 && !this.failure) await new Promise<void>((r) => { this.finished.push(r); });
    if (this.failure) throw this.failure.error;
  }

  /** Waits for every task; throws the first failure. */
  async settle(): Promise<void> {
    while (this.all.size > 0) await Promise.all([...this.all]);
    if (this.failure) throw this.failure.error;
  }
}
