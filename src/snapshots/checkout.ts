import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, fromSystemError, throwIfAborted } from '../errors/index.js';
import { CopyPool, SMALL_FILE } from './copy-pool.js';
import { walkMerged } from './merged.js';
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

/** `linked`: regular files made as hard links to the store ('hardlink'); `copied`: files copied ('copy'). */
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
  // Not setgid even in a setgid parent: entries made in it are then ours until chowned (see setgidDirs).
  fs.chmodSync(stage, 0o755);
  const privileged = isPrivileged(opts.rootless);
  const layerOverrides: Map<string, OwnerOverride>[] = await Promise.all(layers.map((l) => loadOverrides(l)));
  const outOverrides = new Map<string, OwnerOverride & { symlink?: boolean }>();
  // xattrs of layers that carry some (marked at apply time), copied to the visible entries.
  const layerXattrs = await Promise.all(layers.map((l) => (treeHasXattrs(l) ? loadCarriedXattrs(l) : undefined)));
  const outXattrs = new Map<string, Record<string, Buffer>>();
  /** Directory times, set last (deepest first), in seconds: Stats' ms fields keep sub-ms precision and make no Dates. */
  const dirTimes: { p: string; atime: number; mtime: number; depth: number }[] = [];
  /** Files with more links, by inode: where their first copy went (and on which lane of the pool). */
  const inodes = new Map<string, { dst: string; lane: number }>();
  // Copies go to worker threads (one per core) while this thread walks and makes the directories.
  const pool = opts.link === 'hardlink' ? undefined : new CopyPool(Math.min(4, os.availableParallelism()));
  /** Directories made setgid: what is created in them takes their group, not ours. */
  const setgidDirs = new Set<string>();
  const res: CheckoutResult = { entries: 0, linked: 0, copied: 0, skipped: [] };
  const umask = processUmask();
  const euid = process.geteuid?.() ?? 0;
  const egid = process.getegid?.() ?? 0;
  const hardlink = opts.link === 'hardlink';
  try {
    walkMerged(layers, (e) => {
      if ((res.entries & 1023) === 0) throwIfAborted(opts.signal);
      res.entries++;
      const dst = `${stage}/${e.rel}`; // rel is clean: names from readdir joined by '/'
      const o = layerOverrides[e.layer]?.get(e.rel);
      if (hardlink && e.kind === 'file') {
        // The store's inode itself: its owner, mode and times are the layer's, and names that share an
        // inode in the layer share it here too. Nothing to look up (no lstat); only the override record.
        fs.linkSync(e.src, dst);
        res.linked++;
        if (o) outOverrides.set(e.rel, { ...o });
        return;
      }
      const st = e.st;
      const uid = o?.uid ?? st.uid;
      const gid = o?.gid ?? st.gid;
      const perm = o?.mode ?? st.mode & 0o7777;
      let kind: 'dir' | 'file' | 'symlink' | 'other' = 'other';
      /** A file's inode key, when other names share it. */
      let inode: string | undefined;
      if (st.isDirectory()) {
        fs.mkdirSync(dst, { mode: 0o700 });
        kind = 'dir';
        dirTimes.push({ p: dst, atime: st.atimeMs / 1000, mtime: st.mtimeMs / 1000, depth: e.rel.split('/').length });
      } else if (st.isFile()) {
        kind = 'file';
        inode = st.nlink > 1 ? `${st.dev}:${st.ino}` : undefined;
        const prev = inode !== undefined ? inodes.get(inode) : undefined;
        if (prev !== undefined) {
          // A link to this tree's first copy of the inode: after that copy, on its lane.
          pool!.add({ src: prev.dst, dst, link: true }, prev.lane);
          if (o && !privileged) outOverrides.set(e.rel, { ...o });
          return;
        }
      } else if (st.isSymbolicLink()) {
        kind = 'symlink';
        fs.symlinkSync(fs.readlinkSync(e.src), dst);
      } else if (st.isFIFO()) {
        execFileSync('mkfifo', ['-m', '600', dst], { stdio: 'ignore' });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        if (!privileged) { res.skipped.push({ path: e.rel, reason: 'device node needs privileges' }); return; }
        const major = (st.rdev >> 8) & 0xfff; const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
        execFileSync('mknod', [dst, st.isCharacterDevice() ? 'c' : 'b', String(major), String(minor)], { stdio: 'ignore' });
      } else {
        res.skipped.push({ path: e.rel, reason: 'socket' });
        return;
      }
      const x = kind === 'dir' || kind === 'file' ? layerXattrs[e.layer]?.get(e.rel) : undefined;
      if (x) outXattrs.set(e.rel, x);
      // A new entry is ours (group: a setgid parent's). A big file is copied with its source's mode; a
      // small one is created with the mode it must have, less the umask (see SMALL_FILE).
      const small = kind === 'file' && st.size <= SMALL_FILE;
      const wanted = privileged ? perm : kind === 'dir' ? perm | 0o700 : kind === 'file' ? perm | 0o600 : perm;
      const createdMode = small ? wanted & ~umask : kind === 'file' ? st.mode & 0o7777 : undefined;
      if (kind === 'dir' && perm & 0o2000) setgidDirs.add(e.rel);
      let chown: [number, number] | undefined;
      if (privileged && (uid !== euid || gid !== egid || setgidDirs.has(path.dirname(e.rel)))) chown = [uid, gid];
      // chown clears setuid and setgid: set them again.
      const chmod = kind !== 'symlink' && (createdMode !== wanted || (chown && wanted & 0o6000)) ? wanted : undefined;
      if (!privileged && (uid !== euid || gid !== egid || wanted !== perm)) outOverrides.set(e.rel, { uid, gid, mode: perm, symlink: kind === 'symlink' });
      if (kind === 'file') {
        const lane = pool!.add({
          src: e.src, dst, ...(small ? { mode: wanted } : {}), ...(chown ? { chown } : {}), ...(chmod !== undefined ? { chmod } : {}),
          atime: st.atimeMs / 1000, mtime: st.mtimeMs / 1000,
        });
        if (inode !== undefined) inodes.set(inode, { dst, lane });
        res.copied++;
        return;
      }
      if (chown) fs.lchownSync(dst, chown[0], chown[1]);
      if (chmod !== undefined) fs.chmodSync(dst, chmod);
      if (kind !== 'dir') fs.lutimesSync(dst, st.atimeMs / 1000, st.mtimeMs / 1000);
    });
    await pool?.finish();
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
    // No thread may still be writing into the stage when it goes.
    await pool?.finish().catch(() => undefined);
    fs.rmSync(stage, { recursive: true, force: true });
    fs.rmSync(sidecarPath(stage), { force: true });
    throw fromSystemError(e, `checkout into ${destDir}`);
  }
}

/**
 * The process's umask, read where no thread can see it change: /proc/self/status on Linux.
 * process.umask() without an argument sets it to 0 for a moment to read it.
 */
function processUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return parseInt(m[1]!, 8);
  } catch { /* not Linux */ }
  return process.umask();
}
