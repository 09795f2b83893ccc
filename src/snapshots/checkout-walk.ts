// One walker of a checkout: it places the visible children of one merged directory at a time (makes
// the directories, symlinks and special files, copies or hard-links the regular files, sets owners,
// modes and times) and hands back the subdirectories as further work. The same walker runs on the
// calling thread and on checkout threads (checkout-worker.ts): a directory is only ever filled by one
// walker, so the threads never contend for one directory's lock, and its times can be set as soon as
// its own entries are made.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { mergedChildren, type MergedEntry } from './merged.js';
import type { OwnerOverride } from './ownership.js';

/** A merged directory whose children are still to be placed. */
export interface DirTask {
  rel: string;
  /** Its layers, as MergedEntry has them: [top, stop), and those of them that hold it. */
  top: number;
  stop: number;
  only?: number[] | undefined;
  /** The directory is setgid: what is made in it takes its group (and subdirectories its setgid bit). */
  setgid: boolean;
  /** Its [atime, mtime] in seconds, set once its children are made (none for the root). */
  times?: [number, number] | undefined;
}

/** What every walker of one checkout shares (structured-cloneable, for the threads). */
export interface WalkSetup {
  layers: string[];
  /** The directory being filled (renamed to the destination at the end). */
  stage: string;
  hardlink: boolean;
  privileged: boolean;
  umask: number;
  euid: number;
  egid: number;
  /** Per layer: recorded owners and modes of a rootless layer. */
  overrides: (Map<string, OwnerOverride> | undefined)[];
  /** Per layer: the carried xattrs, for layers that have some. */
  xattrs: (Map<string, Record<string, Buffer>> | undefined)[];
}

export type OutOverride = OwnerOverride & { symlink?: boolean };

/**
 * A name of a regular file with more names than one, in a copying checkout. Each walker copies the
 * first name of such a file it meets and links the others to that copy; when several walkers met
 * the same file, relinkShared makes all the names one inode again after the walk.
 */
export interface SharedName {
  /** The source inode (dev:ino). */
  key: string;
  rel: string;
  /** This name is the walker's copy (the others of the walker are links to it). */
  copy: boolean;
  parent: DirTask;
}

/** What a walker did, merged by the checkout. */
export interface WalkReport {
  entries: number;
  linked: number;
  copied: number;
  skipped: { path: string; reason: string }[];
  overrides: [string, OutOverride][];
  xattrs: [string, Record<string, Buffer>][];
  shared: SharedName[];
}

/**
 * Files up to this size are copied through a buffer: open, read, close, open with O_EXCL and the mode,
 * write, futimens, close. libuv's copyfile also runs fstat and fchmod per file, and the times then go
 * by path; most files of an image are this small.
 */
export const SMALL_FILE = 64 << 10;

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;

type EntryRef = Pick<MergedEntry, 'rel' | 'layer' | 'src' | 'stop' | 'dirLayers'>;

/** How a copied file ends up (see copyFile). */
export interface Placement {
  /** A small file (at most SMALL_FILE bytes by its lstat) goes through the buffer, created with this mode (less the umask). */
  mode?: number | undefined;
  /** lchown to [uid, gid]. */
  chown?: [number, number] | undefined;
  /** chmod to this mode (after the chown, which clears setuid and setgid). */
  chmod?: number | undefined;
  /** Times in seconds since the epoch. */
  atime: number;
  mtime: number;
}

export class TreeWalker {
  readonly report: WalkReport = { entries: 0, linked: 0, copied: 0, skipped: [], overrides: [], xattrs: [], shared: [] };
  /** copyFile's buffer. */
  private buf: Buffer | undefined;
  /** Files with more names than one: where this walker copied each (by source inode). */
  private readonly copies = new Map<string, string>();

  constructor(private readonly setup: WalkSetup) {}

  /** The root's task. */
  static root(layers: number): DirTask { return { rel: '', top: 0, stop: layers, setgid: false }; }

  /** Places the children of `t`'s directory; returns its subdirectories, still to be filled. */
  placeDir(t: DirTask): DirTask[] {
    const subdirs: DirTask[] = [];
    for (const e of mergedChildren(this.setup.layers, t.rel, t.top, t.stop, t.only).values()) {
      this.report.entries++;
      const sub = this.place(e, t);
      if (sub) subdirs.push(sub);
    }
    // Nothing is made in this directory after this (other walkers fill its subdirectories only).
    if (t.times) fs.utimesSync(this.dst(t.rel), t.times[0], t.times[1]);
    return subdirs;
  }

  private dst(rel: string): string { return rel === '' ? this.setup.stage : `${this.setup.stage}/${rel}`; }

  private place(e: MergedEntry, parent: DirTask): DirTask | undefined {
    const { setup, report } = this;
    const dst = this.dst(e.rel); // rel is clean: names from readdir joined by '/'
    const o = setup.overrides[e.layer]?.get(e.rel);
    if (setup.hardlink && e.kind === 'file') {
      // The store's inode itself: its owner, mode and times are the layer's, and names that share an
      // inode in the layer share it here too. Nothing to look up (no lstat); only the override record.
      fs.linkSync(e.src, dst);
      report.linked++;
      if (o) report.overrides.push([e.rel, { ...o }]);
      return undefined;
    }
    const st = e.st;
    if (st.isFile() && st.nlink > 1) {
      // Other names of this inode may be in this tree (a hard link in the layer): one copy, and links to it.
      const key = `${st.dev}:${st.ino}`;
      const copy = this.copies.get(key);
      report.shared.push({ key, rel: e.rel, copy: copy === undefined, parent });
      if (copy === undefined) {
        this.copies.set(key, dst);
        return this.placeEntry(e, st, parent.setgid, dst, o);
      }
      fs.linkSync(copy, dst);
      if (o && !setup.privileged) report.overrides.push([e.rel, { ...o }]);
      return undefined;
    }
    return this.placeEntry(e, st, parent.setgid, dst, o);
  }

  /** Makes one entry (not a hard-linked file's second name); returns the task of a new directory. */
  private placeEntry(e: EntryRef, st: fs.Stats, parentSetgid: boolean, dst: string, o: OwnerOverride | undefined): DirTask | undefined {
    const { setup, report } = this;
    const { rel, layer, src } = e;
    const { privileged } = setup;
    const uid = o?.uid ?? st.uid;
    const gid = o?.gid ?? st.gid;
    const perm = o?.mode ?? st.mode & 0o7777;
    let kind: 'dir' | 'file' | 'symlink' | 'other';
    if (st.isDirectory()) kind = 'dir';
    else if (st.isFile()) kind = 'file';
    else if (st.isSymbolicLink()) kind = 'symlink';
    else if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) kind = 'other';
    else { report.skipped.push({ path: rel, reason: 'socket' }); return undefined; }
    if ((st.isCharacterDevice() || st.isBlockDevice()) && !privileged) {
      report.skipped.push({ path: rel, reason: 'device node needs privileges' });
      return undefined;
    }
    const x = kind === 'dir' || kind === 'file' ? setup.xattrs[layer]?.get(rel) : undefined;
    if (x) report.xattrs.push([rel, x]);
    // A new entry is ours (group: a setgid parent's). A big file is copied with its source's mode; a
    // small one, and a directory, are created with the mode they must have, less the umask.
    const small = kind === 'file' && st.size <= SMALL_FILE;
    const wanted = privileged ? perm : kind === 'dir' ? perm | 0o700 : kind === 'file' ? perm | 0o600 : perm;
    // mkdir takes the sticky bit but neither setuid nor setgid, and a setgid parent makes its new
    // subdirectories setgid.
    const createdMode = kind === 'dir' ? (parentSetgid ? -1 : wanted & ~setup.umask & 0o1777)
      : small ? wanted & ~setup.umask : kind === 'file' ? st.mode & 0o7777 : undefined;
    let chown: [number, number] | undefined;
    if (privileged && (uid !== setup.euid || gid !== setup.egid || parentSetgid)) chown = [uid, gid];
    // chown clears setuid and setgid: set them again.
    const chmod = kind !== 'symlink' && (createdMode !== wanted || (chown && wanted & 0o6000)) ? wanted : undefined;
    if (!privileged && (uid !== setup.euid || gid !== setup.egid || wanted !== perm)) report.overrides.push([rel, { uid, gid, mode: perm, symlink: kind === 'symlink' }]);
    const atime = st.atimeMs / 1000;
    const mtime = st.mtimeMs / 1000;
    if (kind === 'file') {
      copyFile(src, dst, { mode: small ? wanted : undefined, chown, chmod, atime, mtime }, (this.buf ??= Buffer.allocUnsafe(SMALL_FILE + 1)));
      report.copied++;
      return undefined;
    }
    if (kind === 'dir') {
      // Made with its final permissions when the umask allows: no chmod. As root those never keep us out.
      fs.mkdirSync(dst, { mode: chmod === undefined ? wanted : 0o700 });
    } else if (kind === 'symlink') {
      fs.symlinkSync(fs.readlinkSync(src), dst);
    } else if (st.isFIFO()) {
      execFileSync('mkfifo', ['-m', '600', dst], { stdio: 'ignore' });
    } else {
      const major = (st.rdev >> 8) & 0xfff; const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
      execFileSync('mknod', [dst, st.isCharacterDevice() ? 'c' : 'b', String(major), String(minor)], { stdio: 'ignore' });
    }
    if (chown) fs.lchownSync(dst, chown[0], chown[1]);
    if (chmod !== undefined) fs.chmodSync(dst, chmod);
    if (kind === 'dir') return { rel, top: layer, stop: e.stop, only: e.dirLayers, setgid: (wanted & 0o2000) !== 0, times: [atime, mtime] };
    fs.lutimesSync(dst, atime, mtime);
    return undefined;
  }
}

/**
 * Makes the names of each file that several walkers copied one inode again, as in the layer: every
 * name joins the copy that comes first in path order (a new link renamed over the other copies and
 * their links), and the directories changed get their times again. Returns the copies replaced.
 */
export function relinkShared(stage: string, reports: readonly WalkReport[]): number {
  const byKey = new Map<string, { walker: number; name: SharedName }[]>();
  reports.forEach((r, walker) => {
    for (const name of r.shared) {
      const group = byKey.get(name.key);
      if (group) group.push({ walker, name }); else byKey.set(name.key, [{ walker, name }]);
    }
  });
  const dirs = new Map<string, DirTask>();
  // A random name: the stage's root holds the image's own names.
  const tmp = `${stage}/.stowage-relink-${randomBytes(8).toString('hex')}`;
  let replaced = 0;
  for (const group of byKey.values()) {
    if (group.every((g) => g.walker === group[0]!.walker)) continue;
    const first = group.filter((g) => g.name.copy).sort((a, b) => (a.name.rel < b.name.rel ? -1 : 1))[0]!;
    for (const { walker, name } of group) {
      if (walker === first.walker) continue;
      fs.linkSync(`${stage}/${first.name.rel}`, tmp);
      fs.renameSync(tmp, `${stage}/${name.rel}`);
      if (name.copy) replaced++;
      dirs.set(name.parent.rel, name.parent);
    }
  }
  for (const d of dirs.values()) if (d.times) fs.utimesSync(d.rel === '' ? stage : `${stage}/${d.rel}`, d.times[0], d.times[1]);
  return replaced;
}

/**
 * Copies the regular file `src` to the new name `dst` (never over or through anything there), then
 * sets its owner, mode and times. `buf` holds SMALL_FILE + 1 bytes.
 */
export function copyFile(src: string, dst: string, p: Placement, buf: Buffer): void {
  if (p.mode !== undefined && copySmall(src, dst, p, buf)) return;
  // EXCL: besides never writing over (or through) something already there, it spares the file
  // libuv's ftruncate(0), after which ext4 writes the file out at its close (auto_da_alloc).
  fs.copyFileSync(src, dst, fs.constants.COPYFILE_EXCL);
  if (p.chown) fs.lchownSync(dst, p.chown[0], p.chown[1]);
  if (p.chmod !== undefined || p.mode !== undefined) fs.chmodSync(dst, p.chmod ?? p.mode!);
  fs.lutimesSync(dst, p.atime, p.mtime);
}

/** Copies a small file through `buf`, or returns false (it has grown past the buffer since its lstat). */
function copySmall(src: string, dst: string, p: Placement, buf: Buffer): boolean {
  const from = fs.openSync(src, 'r');
  let n = 0;
  try {
    for (let r; n < buf.length && (r = fs.readSync(from, buf, n, buf.length - n, n)) > 0;) n += r;
  } finally { fs.closeSync(from); }
  if (n === buf.length) return false;
  const to = fs.openSync(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, p.mode);
  try {
    for (let w = 0; w < n;) w += fs.writeSync(to, buf, w, n - w);
    if (p.chown) fs.fchownSync(to, p.chown[0], p.chown[1]);
    if (p.chmod !== undefined) fs.fchmodSync(to, p.chmod);
    fs.futimesSync(to, p.atime, p.mtime);
  } finally { fs.closeSync(to); }
  return true;
}
