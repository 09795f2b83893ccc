/**
 * COPY and ADD: which source paths a step names (globs, directories, files), the hash docker records
 * for them, and writing them into a working container's layer directory the way docker's copier does
 * (directories copy their contents; a destination ending in `/`, or an existing directory, receives the
 * file by name; new parent directories are 0755 and owned by the step's user; existing ones are copied
 * up with their metadata, as an overlay upper directory would hold them).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, throwIfAborted } from '../errors/index.js';
import { loadOverrides, lookupMerged, tarStream, type OwnerOverride } from '../snapshots/index.js';
import { decompressedFile, isArchive } from './compressed.js';
import { entryHash, sourcesHash } from './source-hash.js';
import type { BuildSource, SourceEntry } from './source.js';

export interface CopySourceItem {
  /** The resolved path inside the source tree. */
  rel: string;
  /** The path as the step named it (after globbing), which gives a copied file its name. */
  named: string;
  /** The entry and, for a directory, everything below it (walk order). */
  entries: SourceEntry[];
  hash: string;
}

export interface CopyPlan {
  items: CopySourceItem[];
  /** `file:…`, `dir:…` or `multi:…`, as docker writes it in the history. */
  hash: string;
}

const hasWildcards = (p: string): boolean => /(^|[^\\])[*?[]/.test(p);

/** Go's filepath.Match over whole relative paths (`*` and `?` never cross `/`). */
function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '\\' && i + 1 < glob.length) re += '\\' + glob[++i];
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let cls = glob.slice(i + 1, end);
      if (cls.startsWith('^')) cls = '\\^' + cls.slice(1);
      if (cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += `[${cls}]`;
      i = end;
    } else re += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(re + '$', 's');
}

function item(source: BuildSource, named: string, what: string): CopySourceItem {
  const rel = source.resolve(named);
  const top = source.entry(rel);
  if (!top) throw new InvalidArgumentError(`${what} failed: file not found in build context or excluded by .dockerignore: stat ${named}: file does not exist`, { path: named, reason: 'source-missing' });
  const entries = top.st.isDirectory() ? source.walk(rel) : [top];
  return { rel, named, entries, hash: entryHash(entries, (e) => source.hashOf(e)) };
}

/** The sources of one COPY/ADD step, globs expanded against the tree. `what` is `COPY` or `ADD` (for messages). */
export function planCopy(source: BuildSource, sources: readonly string[], what: string): CopyPlan {
  const items: CopySourceItem[] = [];
  for (const raw of sources) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
      throw new InvalidArgumentError(`${what} ${raw}: sources from URLs need the network; stowage build reads only the context and images`, { path: raw, reason: 'url-source' });
    }
    const named = raw.replace(/^\/+/, '').replace(/^\.\//, '');
    if (!hasWildcards(named)) { items.push(item(source, named === '' ? '.' : named, what)); continue; }
    const re = globToRegExp(path.posix.normalize(named));
    const matched = source.paths().filter((p) => re.test(p));
    for (const m of matched) items.push(item(source, m, what));
  }
  if (items.length === 0) throw new InvalidArgumentError(`${what} failed: no source files were specified`, { reason: 'no-sources' });
  return { items, hash: sourcesHash(items.map((i) => i.hash)) };
}

export interface Owner { uid: number; gid: number }

export interface WriteOptions {
  /** The working container's own layer directory (where the new files go). */
  upper: string;
  /** The layer directories below it, nearest first. */
  lowers: string[];
  /** Owner of everything copied (--chown); without it, sources keep theirs (root for the context, as the client sends it). */
  owner?: Owner;
  /** --chmod: permission bits for everything copied. */
  chmod?: number;
  /** ADD: local tar archives (plain, gzip, bzip2, xz, zstd) are extracted instead of copied. */
  extractArchives: boolean;
  /** Unprivileged: owners and modes are recorded as overrides (the snapshots floor's rootless records) instead of applied. */
  rootless?: RootlessWrite;
  signal?: AbortSignal;
}

export interface RootlessWrite {
  /** Filled while writing; saved with the snapshots floor's saveOverrides before the layer is committed. */
  overrides: Map<string, OwnerOverride & { symlink?: boolean }>;
  /** The lower layers' own records (same order as `lowers`), for directories copied up. */
  lower: Array<Map<string, OwnerOverride>>;
}

/** The records a rootless write needs: empty overrides, and the lower layers' own. */
export async function rootlessWrite(lowers: readonly string[]): Promise<RootlessWrite> {
  return { overrides: new Map(), lower: await Promise.all(lowers.map((l) => loadOverrides(l))) };
}

const ROOT: Owner = { uid: 0, gid: 0 };

type Kind = 'dir' | 'file' | 'symlink';

/**
 * Gives a written entry its owner and permission bits: applied when privileged; rootless, the entry
 * stays the user's with owner access (so the store can still read and write it) and the intended owner
 * and mode go into the override records, which the layer diff reads.
 */
function setOwner(opts: WriteOptions, rel: string, kind: Kind, owner: Owner, perm: number): void {
  const abs = path.join(opts.upper, rel);
  if (!opts.rootless) {
    if (kind !== 'symlink') fs.chmodSync(abs, perm);
    fs.lchownSync(abs, owner.uid, owner.gid);
    return;
  }
  const actual = kind === 'dir' ? perm | 0o700 : kind === 'file' ? perm | 0o600 : perm;
  if (kind !== 'symlink') fs.chmodSync(abs, actual);
  const st = fs.lstatSync(abs);
  if (owner.uid !== st.uid || owner.gid !== st.gid || actual !== perm) {
    opts.rootless.overrides.set(rel, { ...owner, mode: perm, ...(kind === 'symlink' ? { symlink: true } : {}) });
  }
}

/** The merged entry at `rel` in the container (its own layer first). */
function merged(opts: WriteOptions, rel: string): fs.Stats | undefined {
  const own = fs.lstatSync(path.join(opts.upper, rel), { throwIfNoEntry: false });
  if (own) return own;
  return lookupMerged(opts.lowers, rel)?.st;
}

/** Makes `relDir` a directory of the upper layer: copied up from below, or new (0755, `owner`). */
function ensureDir(opts: WriteOptions, relDir: string, owner: Owner): void {
  if (relDir === '' || relDir === '.') return;
  const abs = path.join(opts.upper, relDir);
  const own = fs.lstatSync(abs, { throwIfNoEntry: false });
  if (own?.isDirectory()) return;
  if (own) throw new InvalidArgumentError(`cannot create directory /${relDir}: a file is in the way`, { path: relDir });
  ensureDir(opts, path.posix.dirname(relDir), owner);
  const below = lookupMerged(opts.lowers, relDir);
  if (below && !below.st.isDirectory()) throw new InvalidArgumentError(`cannot create directory /${relDir}: not a directory in the image`, { path: relDir });
  fs.mkdirSync(abs);
  if (below) {
    // Copied up as an overlay upper directory holds it: the lower directory's owner, mode and times.
    const rec = opts.rootless?.lower[below.layer]?.get(relDir);
    setOwner(opts, relDir, 'dir', rec ?? { uid: below.st.uid, gid: below.st.gid }, rec?.mode ?? (below.st.mode & 0o7777));
    fs.utimesSync(abs, below.st.atime, below.st.mtime);
  } else {
    setOwner(opts, relDir, 'dir', owner, 0o755);
  }
}

/** WORKDIR: the directory (and missing parents) in the upper layer; nothing when it is already there. */
export function ensureWorkdir(opts: WriteOptions, dir: string): void {
  const rel = path.posix.normalize(dir).replace(/^\/+/, '').replace(/\/+$/, '');
  if (rel === '' || merged(opts, rel)?.isDirectory()) return;
  ensureDir(opts, rel, ROOT);
}

/** Copies one entry (not its children) to `destRel` in the upper layer. */
function copyEntry(opts: WriteOptions, e: SourceEntry, destRel: string): void {
  const abs = path.join(opts.upper, destRel);
  const mode = opts.chmod ?? e.mode;
  const existing = fs.lstatSync(abs, { throwIfNoEntry: false });
  let kind: Kind;
  if (e.st.isDirectory()) {
    if (!existing?.isDirectory()) {
      if (existing) fs.rmSync(abs, { force: true });
      fs.mkdirSync(abs);
    }
    kind = 'dir';
  } else {
    if (existing) fs.rmSync(abs, { recursive: true, force: true });
    if (e.st.isSymbolicLink()) { fs.symlinkSync(fs.readlinkSync(e.abs), abs); kind = 'symlink'; }
    else if (e.st.isFile()) { fs.copyFileSync(e.abs, abs, fs.constants.COPYFILE_EXCL); kind = 'file'; }
    else return; // devices, fifos, sockets: not copied from a build context
  }
  setOwner(opts, destRel, kind, opts.owner ?? { uid: e.uid, gid: e.gid }, kind === 'symlink' ? 0o777 : mode);
  if (kind !== 'symlink') fs.utimesSync(abs, e.st.atime, e.st.mtime);
}

/** Whether `dest` (absolute in the container) names a directory already. */
function isDir(opts: WriteOptions, destRel: string): boolean {
  return destRel === '' || merged(opts, destRel)?.isDirectory() === true;
}

/**
 * Writes one planned source to `dest` (absolute, trailing `/` kept: it means "into this directory").
 * Returns nothing; the layer's changes are read from the upper directory afterwards.
 */
export async function writeCopyItem(opts: WriteOptions, it: CopySourceItem, dest: string): Promise<void> {
  const destRel = path.posix.normalize(dest).replace(/^\/+/, '').replace(/\/+$/, '');
  const top = it.entries[0]!;
  if (top.st.isDirectory()) {
    // A directory copies its contents into dest.
    const owner = opts.owner ?? ROOT;
    ensureDir(opts, path.posix.dirname(destRel), owner);
    ensureDir(opts, destRel, owner);
    const dirs: Array<[SourceEntry, string]> = [];
    for (const e of it.entries.slice(1)) {
      throwIfAborted(opts.signal);
      const rel = path.posix.join(destRel, e.rel.slice(top.rel === '' ? 0 : top.rel.length + 1));
      copyEntry(opts, e, rel);
      if (e.st.isDirectory()) dirs.push([e, rel]);
    }
    // Directory times last: writing children changed them.
    for (const [e, rel] of dirs.reverse()) fs.utimesSync(path.join(opts.upper, rel), e.st.atime, e.st.mtime);
    return;
  }
  if (opts.extractArchives && top.st.isFile() && await isArchive(top.abs)) {
    ensureDir(opts, destRel, ROOT);
    await extractArchive(opts, top.abs, destRel);
    return;
  }
  const target = dest.endsWith('/') || isDir(opts, destRel) ? path.posix.join(destRel, path.posix.basename(it.named)) : destRel;
  ensureDir(opts, path.posix.dirname(target), opts.owner ?? ROOT);
  copyEntry(opts, top, target);
}

/** Extracts a tar archive under `destRel`, keeping its owners, modes and times (docker's UntarPath). */
async function extractArchive(opts: WriteOptions, file: string, destRel: string): Promise<void> {
  const ex = tarStream().extract();
  const root = path.join(opts.upper, destRel);
  const dirTimes: Array<[string, Date]> = [];
  ex.on('entry', (h, stream, next) => {
    const done = (e?: unknown): void => { if (e) ex.destroy(e as Error); else next(); };
    try {
      const name = path.posix.normalize('/' + h.name).slice(1).replace(/\/+$/, '');
      if (name === '' || name === '.') { stream.resume(); stream.on('end', () => done()); return; }
      const rel = path.posix.join(destRel, name);
      ensureDir(opts, path.posix.dirname(rel), ROOT);
      const abs = path.join(opts.upper, rel);
      const owner = { uid: h.uid ?? 0, gid: h.gid ?? 0 };
      const mode = (h.mode ?? 0o644) & 0o7777;
      const existing = fs.lstatSync(abs, { throwIfNoEntry: false });
      if (existing && !(existing.isDirectory() && h.type === 'directory')) fs.rmSync(abs, { recursive: true, force: true });
      if (h.type === 'directory') {
        if (!existing?.isDirectory()) fs.mkdirSync(abs);
        setOwner(opts, rel, 'dir', owner, mode);
        dirTimes.push([abs, h.mtime ?? new Date(0)]);
        stream.resume();
        stream.on('end', () => done());
      } else if (h.type === 'symlink') {
        fs.symlinkSync(h.linkname ?? '', abs);
        setOwner(opts, rel, 'symlink', owner, 0o777);
        stream.resume();
        stream.on('end', () => done());
      } else if (h.type === 'link') {
        const target = path.join(root, path.posix.normalize('/' + (h.linkname ?? '')).slice(1));
        fs.linkSync(target, abs);
        stream.resume();
        stream.on('end', () => done());
      } else if (h.type === 'file' || h.type === 'contiguous-file') {
        const out = fs.createWriteStream(abs, { mode });
        pipeline(stream, out).then(() => {
          try {
            setOwner(opts, rel, 'file', owner, mode);
            if (h.mtime) fs.utimesSync(abs, h.mtime, h.mtime);
            done();
          } catch (e) { done(e); }
        }, done);
      } else {
        stream.resume();
        stream.on('end', () => done());
      }
    } catch (e) {
      done(e);
    }
  });
  await pipeline(await decompressedFile(file), ex, ...(opts.signal ? [{ signal: opts.signal }] as const : []));
  for (const [abs, t] of dirTimes.reverse()) fs.utimesSync(abs, t, t);
  if (!fs.existsSync(root)) fs.mkdirSync(root, { recursive: true });
}
