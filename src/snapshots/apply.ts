import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import { InvalidArgumentError, StowageError, fromSystemError, throwIfAborted } from '../errors/index.js';
import type { Digest } from '../oci/index.js';
import { applyPool } from './apply-pool.js';
import { compressionMismatch, decompressStream, detectCompression, syncDecoder, type Compression } from './compression.js';
import { LayerFile, LayerFileFailedError } from './layer-file.js';
import { lookupMerged, WH_OPAQUE, WH_PREFIX } from './merged.js';
import { fileRecords, isPrivileged, loadOverrides, saveOverrides, sidecarPath, type OwnerOverride } from './ownership.js';
import { DirCache, baseOf, breakout, cleanName, joinRel, parentOf, resolveInRoot } from './rootpath.js';
import { TarReader, type TarEntry, type TarSink } from './tar-reader.js';

export interface ApplyOptions {
  /**
   * 'overlay': `targetDir` is one layer of an overlay-layout chain; deletions are stored as OCI
   * `.wh.<name>` / `.wh..wh..opq` marker files (see merged.ts). 'merged': apply onto a plain tree,
   * deletions are carried out.
   */
  mode: 'overlay' | 'merged';
  /** Overlay mode: the parent chain's layer dirs, nearest first (hardlinks into lower layers, parent metadata). */
  lowerDirs?: string[];
  signal?: AbortSignal;
  /** Called for each entry that could not be represented (device nodes unprivileged, refused xattrs...). */
  onUnsupported?: (p: string, reason: string) => void;
  /** Behave as an unprivileged user even when root (no chown, no mknod; ownership recorded as overrides). */
  rootless?: boolean;
  /** Do not use xattrs for overrides (sidecar only). */
  noXattrs?: boolean;
  /** The compression the layer's media type declares; the bytes must agree. Default: sniff them. */
  compression?: Compression | 'detect';
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar stream (trailing bytes included). */
  diffID: Digest;
  /** Uncompressed bytes. */
  size: number;
  compression: Compression;
  entries: number;
  skipped: { path: string; reason: string }[];
  /**
   * Overlay mode: whether it wrote deletion markers (`.wh.` files; a later entry may have removed
   * some again). A fresh layer directory holds markers only if this is true.
   */
  markers: boolean;
}

function wrapFs<T>(what: string, f: () => T): T {
  try { return f(); } catch (e) { throw fromSystemError(e, what); }
}

function isEmptyDir(p: string): boolean {
  try { return fs.readdirSync(p).length === 0; } catch { return false; }
}

/**
 * A layer directory that is not known yet: its snapshot is made once the parent layers are committed.
 * The apply starts in `staging` at once and waits for `ready` only when it must (a hard link to a file
 * of a lower layer, and the end), so a layer can be unpacked while its parents still are.
 */
export interface PendingTarget {
  /** A path (not created) on the target's file system, for the directory the layer is built in. */
  staging: string;
  /** The empty layer directory and its lower chain, nearest first; called at most once. */
  ready(): Promise<{ dir: string; lowerDirs: string[] }>;
}

/**
 * Applies one layer (plain tar, gzip or zstd, sniffed) to `target`, streaming.
 * A missing or empty target directory (and always a `PendingTarget`) is built in a private staging
 * directory and renamed into place at the end, so a failed or refused archive leaves nothing behind.
 * Applying onto a non-empty tree ('merged' over an existing checkout) works in place: nothing outside
 * the tree is ever touched, but a failure can leave the tree partly changed.
 */
export async function applyLayer(input: Readable | LayerFile, target: string | PendingTarget, opts: ApplyOptions): Promise<ApplyResult> {
  throwIfAborted(opts.signal);
  if (!(input instanceof LayerFile)) return applyHere(input, target, opts, false);
  const onAbort = (): void => input.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const pool = applyPool();
    return await (pool ? pool.apply(input, target, opts) : applyHere(input, target, opts, false));
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * applyLayer in this thread. A worker thread of the apply pool calls it with `block`: it then waits
 * for a growing LayerFile by blocking, as nothing else runs on that thread meanwhile.
 */
export async function applyHere(input: Readable | LayerFile, target: string | PendingTarget, opts: ApplyOptions, block: boolean): Promise<ApplyResult> {
  throwIfAborted(opts.signal);
  // Where the layer goes and what lies below it, asked for only when needed (a pending target waits).
  let asked: Promise<{ dir: string; lowerDirs: string[] }> | undefined;
  const place = (): Promise<{ dir: string; lowerDirs: string[] }> => (asked ??= typeof target === 'string'
    ? Promise.resolve({ dir: path.resolve(target), lowerDirs: opts.lowerDirs ?? [] })
    : target.ready());
  let root: string;
  let staged: boolean;
  if (typeof target === 'string') {
    const dir = path.resolve(target);
    staged = !fs.existsSync(dir) || isEmptyDir(dir);
    root = staged ? path.join(path.dirname(dir), `.stowage-apply-${randomBytes(6).toString('hex')}`) : dir;
  } else {
    staged = true;
    root = path.resolve(target.staging);
  }
  if (staged) wrapFs('create staging directory', () => { fs.mkdirSync(path.dirname(root), { recursive: true }); fs.mkdirSync(root, { mode: 0o755 }); fs.chmodSync(root, 0o755); });
  const ap = new Applier(root, opts, staged, async () => (await place()).lowerDirs);
  if (!staged) ap.overrides = new Map([...(await loadOverrides(root))]);
  try {
    const res = await (input instanceof LayerFile ? ap.runFile(input, block) : ap.run(input));
    await ap.finish();
    if (staged) {
      const { dir } = await place();
      if (fs.existsSync(dir)) fs.rmdirSync(dir);
      fs.renameSync(root, dir);
      if (fs.existsSync(sidecarPath(root))) fs.renameSync(sidecarPath(root), sidecarPath(dir));
    }
    return res;
  } catch (e) {
    if (staged) {
      fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(sidecarPath(root), { force: true });
    }
    throw applyError(e, typeof target === 'string' ? target : target.staging);
  }
}

/**
 * Reads of a layer file, 1 MiB at a time: as the decoder's output buffer (ZLIB_CHUNK). Both buffers are
 * reused for the whole layer, so an apply from a file makes no garbage per chunk.
 */
const FILE_CHUNK = 1 << 20;

/** A LayerFile as a stream, for a compression this Node has no synchronous decoder for. */
function fileStream(file: LayerFile, block: boolean): Readable {
  let pos = 0;
  return Readable.from((async function* () {
    for (;;) {
      const buf = Buffer.allocUnsafe(FILE_CHUNK);
      const r = file.read(buf, pos, block);
      const n = typeof r === 'number' ? r : await r;
      if (n === 0) return;
      pos += n;
      yield buf.subarray(0, n);
    }
  })(), { objectMode: false });
}

/** Errors the archive's own shape causes (a path through a file, a name too long...) are InvalidArgument. */
function applyError(e: unknown, targetDir: string): StowageError {
  return fromSystemError(e, `apply layer to ${targetDir}`, { inputFault: { reason: 'invalid-archive', what: 'invalid layer archive' } });
}

type Kind = 'dir' | 'file' | 'symlink' | 'other';

class Applier implements TarSink {
  readonly privileged: boolean;
  readonly euid = process.geteuid?.() ?? 0;
  /**
   * The process umask (mkdir/open modes are filtered by it), read per layer: reading it when the module
   * loads would be a side effect of importing the library, and setting it fails in worker threads.
   */
  readonly umask = process.umask();
  readonly egid = process.getegid?.() ?? 0;
  readonly cache = new DirCache();
  /** Paths unpacked by this layer (whiteouts and opaque dirs never remove them). */
  readonly unpacked = new Set<string>();
  /** Ancestors of unpacked paths: opaque markers and whiteouts keep them (and clear only lower content below). */
  readonly unpackedParents = new Set<string>();
  /**
   * In a fresh (staged) root nothing exists that this apply did not create, so existence is
   * tracked here instead of an lstat per entry.
   */
  readonly present: Set<string> | undefined;
  /** Directories whose setgid bit makes new children inherit their group (chown can't be skipped). */
  readonly setgidDirs = new Set<string>();
  readonly opaqueDirs: string[] = [];
  /** Directory times, set at the end; dropped with their directory (never applied through a symlink that replaced it). */
  readonly dirTimes = new Map<string, { atime: Date; mtime: Date }>();
  /**
   * Parent directories the archive did not list, made 0755: at the end each takes the metadata of the
   * same directory in a lower layer, when there is one (the lower chain may not be known before then).
   */
  readonly implicitDirs = new Set<string>();
  overrides = new Map<string, OwnerOverride & { symlink?: boolean }>();
  readonly xattrs = new Map<string, Record<string, Buffer>>();
  readonly skipped: { path: string; reason: string }[] = [];
  entries = 0;
  compression: Compression = 'none';
  markers = false;

  /** `lower` gives the lower chain, nearest first; it may wait for the parent layers to be committed. */
  constructor(readonly root: string, readonly opts: ApplyOptions, fresh: boolean, private readonly lower: () => Promise<string[]>) {
    this.privileged = isPrivileged(opts.rootless);
    if (fresh) this.present = new Set<string>();
  }

  private abs(rel: string): string { return rel === '' ? this.root : this.root + '/' + rel; }

  private skip(p: string, reason: string): void {
    this.skipped.push({ path: p, reason });
    this.opts.onUnsupported?.(p, reason);
  }

  private lstat(rel: string): fs.Stats | undefined {
    if (this.present && !this.present.has(rel)) return undefined;
    return fs.lstatSync(this.abs(rel), { throwIfNoEntry: false });
  }

  private created(rel: string): void { this.present?.add(rel); }

  private markUnpacked(rel: string): void {
    this.unpacked.add(rel);
    for (let p = parentOf(rel); p !== '' && !this.unpackedParents.has(p); p = parentOf(p)) this.unpackedParents.add(p);
  }

  /**
   * Makes `rel` with `make`, which fails with EEXIST when something is there (mkdir, symlink, open
   * with O_EXCL): that is then removed and `make` runs again, or, with `keepDir`, a directory stays
   * (returns false). Most entries are new, so the lstat is paid only for the ones that are not; in a
   * fresh root nothing is there that this apply did not make (see `present`).
   */
  private create(rel: string, make: () => void, keepDir = false): boolean {
    if (!this.present || this.present.has(rel)) {
      try {
        make();
        this.created(rel);
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const st = fs.lstatSync(this.abs(rel));
      if (keepDir && st.isDirectory()) return false;
      this.remove(rel, st.isDirectory());
    }
    make();
    this.created(rel);
    return true;
  }

  /** Removes whatever is at `rel` and forgets what we knew about it. */
  private remove(rel: string, wasDir: boolean): void {
    if (wasDir) fs.rmSync(this.abs(rel), { recursive: true, force: true });
    else fs.unlinkSync(this.abs(rel));
    this.overrides.delete(rel);
    this.xattrs.delete(rel);
    this.present?.delete(rel);
    this.setgidDirs.delete(rel);
    this.dirTimes.delete(rel);
    this.implicitDirs.delete(rel);
    if (!wasDir) return;
    this.cache.drop(rel);
    const prefix = rel + '/';
    for (const set of [this.overrides, this.xattrs, this.dirTimes]) for (const k of set.keys()) if (k.startsWith(prefix)) set.delete(k);
    for (const set of [this.present, this.setgidDirs, this.implicitDirs]) if (set) for (const k of set) if (k.startsWith(prefix)) set.delete(k);
  }

  async run(stream: Readable): Promise<ApplyResult> {
    const dec = decompressStream(stream, this.opts.compression);
    if (this.opts.signal) addAbortSignal(this.opts.signal, dec);
    const reader = new TarReader(this);
    try {
      for await (const chunk of dec) {
        const waiting = reader.write(chunk as Buffer);
        if (waiting) await waiting;
      }
      reader.end();
    } catch (e) {
      dec.destroy();
      throw this.failure(e);
    }
    this.compression = await dec.detected;
    return this.result(reader);
  }

  /**
   * Reads the layer from a file: read, decompress, hash, parse and write in this thread, with no
   * hand-off to another one per chunk (see LayerFile; a worker of the apply pool runs this).
   */
  async runFile(file: LayerFile, block: boolean): Promise<ApplyResult> {
    const buf = Buffer.allocUnsafe(FILE_CHUNK);
    const read = async (pos: number, into: Buffer): Promise<number> => {
      const n = file.read(into, pos, block);
      return typeof n === 'number' ? n : await n;
    };
    // The first bytes name the compression: read again from 0 by the decoder.
    let got = 0;
    for (let n = -1; got < 8 && n !== 0; got += n) n = await read(got, buf.subarray(got, 8));
    const kind = detectCompression(buf.subarray(0, got));
    const declared = this.opts.compression ?? 'detect';
    if (declared !== 'detect' && declared !== kind) throw compressionMismatch(declared, kind);
    this.compression = kind;
    const dec = syncDecoder(kind);
    if (!dec) return this.run(fileStream(file, block));
    const reader = new TarReader(this);
    try {
      for (let pos = 0; ;) {
        const n = await read(pos, buf);
        pos += n;
        for (const out of dec.push(buf.subarray(0, n), n === 0)) {
          const waiting = reader.write(out);
          if (waiting) await waiting;
        }
        if (n === 0) break;
        // On a thread shared with other work (not an apply thread), let it run between chunks, as a
        // stream would: a complete file never waits, and would otherwise hold the thread to its end.
        if (!block) await new Promise<void>((resolve) => { setImmediate(resolve); });
      }
      reader.end();
    } catch (e) {
      throw this.failure(e);
    } finally {
      dec.close();
    }
    return this.result(reader);
  }

  /** What a failed read of the layer throws: a broken archive is InvalidArgument. */
  private failure(e: unknown): unknown {
    this.closeFile();
    if (this.opts.signal?.aborted) throwIfAborted(this.opts.signal);
    if (e instanceof StowageError || e instanceof LayerFileFailedError) return e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === undefined || code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR' || /zstd|unexpected end/i.test((e as Error).message)) {
      return new InvalidArgumentError(`invalid layer archive: ${(e as Error).message}`, { reason: 'invalid-archive' }, { cause: e });
    }
    return applyError(e, this.root);
  }

  private result(reader: TarReader): ApplyResult {
    return { diffID: reader.digester.digest(), size: reader.digester.size, compression: this.compression, entries: this.entries, skipped: this.skipped, markers: this.markers };
  }

  /**
   * Deferred work: opaque directories (merged mode), unlisted parents' metadata from the lower chain,
   * directory times deepest first, overrides and xattrs.
   */
  async finish(): Promise<void> {
    for (const d of this.opaqueDirs) this.clearOpaque(d);
    const lowerDirs = this.opts.mode === 'overlay' && this.implicitDirs.size > 0 ? await this.lower() : [];
    if (lowerDirs.length > 0) {
      for (const rel of this.implicitDirs) {
        const lower = lookupMerged(lowerDirs, rel);
        if (!lower?.st.isDirectory()) continue;
        this.setOwner(rel, this.abs(rel), lower.st.uid, lower.st.gid, lower.st.mode & 0o7777, 'dir');
        this.dirTimes.set(rel, { atime: lower.st.atime, mtime: lower.st.mtime });
      }
    }
    const deepestFirst = [...this.dirTimes].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [rel, t] of deepestFirst) {
      // lutimes: even if something else sits there now, nothing behind a symlink is touched.
      try {
        if (fs.lstatSync(this.abs(rel), { throwIfNoEntry: false })?.isDirectory()) fs.lutimesSync(this.abs(rel), t.atime, t.mtime);
      } catch { /* as before: a time we cannot set is not fatal */ }
    }
    if (!this.privileged || this.xattrs.size > 0 || this.overrides.size > 0) {
      // Written while the paths still point into the root we verified (before any rename).
      const res = await saveOverrides(this.root, this.overrides, this.xattrs, this.opts.noXattrs ? { noXattrs: true } : {});
      if (!res.xattrs && this.xattrs.size > 0) for (const p of this.xattrs.keys()) this.skip(p, 'xattrs unsupported');
    }
  }

  /** Merged mode opaque: remove everything under `dir` that this layer did not unpack. */
  private clearOpaque(dir: string): void {
    let ents: fs.Dirent[];
    try { ents = fs.readdirSync(this.abs(dir), { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      const rel = joinRel(dir, e.name);
      if (!this.unpacked.has(rel) && !this.unpackedParents.has(rel)) this.remove(rel, e.isDirectory());
      else if (e.isDirectory()) this.clearOpaque(rel);
    }
  }

  /** Creates missing parent directories, 0755 (see implicitDirs). */
  private mkparent(rel: string): void {
    if (rel === '' || this.cache.has(rel)) return;
    let cur = '';
    for (const p of rel.split('/')) {
      cur = joinRel(cur, p);
      if (this.cache.has(cur)) continue;
      const st = this.lstat(cur);
      if (st) {
        if (!st.isDirectory()) throw new InvalidArgumentError(`parent ${JSON.stringify(cur)} is not a directory`, { reason: 'not-a-directory', path: cur });
        this.cache.add(cur);
        continue;
      }
      const a = this.abs(cur);
      fs.mkdirSync(a, { mode: 0o755 });
      this.created(cur);
      this.cache.add(cur);
      this.implicitDirs.add(cur);
      this.setOwner(cur, a, this.euid, this.egid, 0o755, 'dir', 0o755);
    }
  }

  /** The mode we create an entry with: the archive's, plus owner access when we cannot chown. */
  private actualMode(perm: number, kind: Kind): number {
    if (this.privileged) return perm;
    return kind === 'dir' ? perm | 0o700 : kind === 'file' ? perm | 0o600 : perm;
  }

  /**
   * Owner and mode after creation. `createdWith` is the mode passed to mkdir/open (filtered by the
   * umask), so chmod is skipped when it already is right and no chown happened.
   */
  private setOwner(rel: string, abs: string, uid: number, gid: number, perm: number, kind: Kind, createdWith?: number): void {
    if (kind === 'dir' && perm & 0o2000) this.setgidDirs.add(rel);
    if (this.privileged) {
      try {
        const inheritsGroup = this.setgidDirs.has(parentOf(rel));
        const chowned = uid !== this.euid || gid !== this.egid || inheritsGroup || createdWith === undefined;
        if (chowned) fs.lchownSync(abs, uid, gid);
        if (kind !== 'symlink' && (chowned || createdWith !== perm || (perm & this.umask) !== 0)) fs.chmodSync(abs, perm);
        this.overrides.delete(rel);
        return;
      } catch { /* fall through to an override */ }
    }
    // Keep what we need to read and write the tree ourselves; record the rest.
    const actual = kind === 'dir' ? perm | 0o700 : kind === 'file' ? perm | 0o600 : perm;
    if (kind !== 'symlink' && (createdWith !== actual || (actual & this.umask) !== 0)) fs.chmodSync(abs, actual & 0o7777);
    if (uid !== this.euid || gid !== this.egid || actual !== perm) {
      this.overrides.set(rel, { uid, gid, mode: perm, symlink: kind === 'symlink' });
    } else this.overrides.delete(rel);
  }

  /** The regular file whose data is being read, and what to set on it once complete. */
  private file: { fd: number; rel: string; abs: string; uid: number; gid: number; perm: number; createdWith: number; atime: Date; mtime: Date } | undefined;

  data(chunk: Buffer): void {
    if (this.file) fs.writeSync(this.file.fd, chunk);
  }

  endEntry(): void {
    const f = this.file;
    if (!f) return;
    fs.futimesSync(f.fd, f.atime, f.mtime);
    this.closeFile();
    this.setOwner(f.rel, f.abs, f.uid, f.gid, f.perm, 'file', f.createdWith);
  }

  private closeFile(): void {
    const f = this.file;
    this.file = undefined;
    if (f) fs.closeSync(f.fd);
  }

  /** One entry of the archive (TarSink): made at once, except a regular file's data, which follows. */
  entry(h: TarEntry): void | Promise<void> {
    if ((++this.entries & 1023) === 0) throwIfAborted(this.opts.signal);
    const name = cleanName(h.name);
    const type: string = h.type ?? 'unknown';
    if (name === '') return;
    const base = baseOf(name);
    const dirName = parentOf(name);

    if (base.startsWith(WH_PREFIX)) {
      this.whiteout(dirName, base);
      return;
    }
    const parent = resolveInRoot(this.root, dirName, this.cache);
    const rel = joinRel(parent, base);
    this.mkparent(parent);
    const abs = this.abs(rel);

    // Directories, files and symlinks find what was there by trying to create (see create()); the
    // rest looks first.
    const existing = type === 'directory' || type === 'file' || type === 'contiguous-file' || type === 'symlink' ? undefined : this.lstat(rel);
    if (existing) this.remove(rel, existing.isDirectory());
    this.markUnpacked(rel);
    const perm = h.mode & 0o7777;
    const { uid, gid, mtime } = h;
    const atime = mtime;

    switch (type) {
      case 'directory': {
        let createdWith: number | undefined = this.actualMode(perm, 'dir') & 0o777;
        // A directory already there stays (this entry sets its metadata).
        if (!this.create(rel, () => fs.mkdirSync(abs, { mode: createdWith }), true)) createdWith = undefined;
        this.cache.add(rel);
        this.implicitDirs.delete(rel);
        this.setOwner(rel, abs, uid, gid, perm, 'dir', createdWith);
        this.dirTimes.set(rel, { atime, mtime });
        break;
      }
      case 'file':
      case 'contiguous-file': {
        const createdWith = this.actualMode(perm, 'file') & 0o777;
        let fd = -1;
        this.create(rel, () => { fd = fs.openSync(abs, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, createdWith); });
        this.file = { fd, rel, abs, uid, gid, perm, createdWith, atime, mtime };
        break;
      }
      case 'symlink': {
        this.create(rel, () => fs.symlinkSync(h.linkname, abs));
        this.setOwner(rel, abs, uid, gid, perm, 'symlink', perm);
        fs.lutimesSync(abs, atime, mtime);
        break;
      }
      case 'link':
        // A link shares its target's inode and metadata.
        return this.hardlink(rel, abs, h.linkname);
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        if (type !== 'fifo' && !this.privileged) { this.unpacked.delete(rel); this.skip(rel, `${type} needs privileges`); return; }
        const major = h.devmajor;
        const minor = h.devminor;
        if (major > 0xfffff || minor > 0xfffff || major < 0 || minor < 0) throw new InvalidArgumentError(`device number out of range for ${rel}`, { reason: 'invalid-archive', path: rel });
        try {
          if (type === 'fifo') execFileSync('mkfifo', ['-m', (perm & 0o777).toString(8), abs], { stdio: 'ignore' });
          else execFileSync('mknod', ['-m', (perm & 0o777).toString(8), abs, type === 'block-device' ? 'b' : 'c', String(major), String(minor)], { stdio: 'ignore' });
        } catch (e) { this.unpacked.delete(rel); this.skip(rel, `${type}: ${(e as Error).message.split('\n')[0]}`); return; }
        this.created(rel);
        this.setOwner(rel, abs, uid, gid, perm, 'other');
        fs.utimesSync(abs, atime, mtime);
        break;
      }
      default:
        this.unpacked.delete(rel);
        this.skip(rel, `unsupported tar entry type ${type}`);
        return;
    }
    this.entryXattrs(rel, type, h.pax);
  }

  private entryXattrs(rel: string, type: string, pax: Map<string, Buffer> | undefined): void {
    if (!pax) return;
    for (const [k, v] of pax) {
      if (!k.startsWith('SCHILY.xattr.')) continue;
      const name = k.slice('SCHILY.xattr.'.length);
      if (name.startsWith('trusted.')) { this.skip(rel, `xattr ${name} refused`); continue; }
      if (!this.privileged && !name.startsWith('user.')) { this.skip(rel, `xattr ${name} needs privileges`); continue; }
      if (name.startsWith('user.') && type !== 'file' && type !== 'directory') { this.skip(rel, `xattr ${name} not allowed on ${type}`); continue; }
      if (name === 'user.stowage.override') continue;
      const cur = this.xattrs.get(rel) ?? {};
      cur[name] = v;
      this.xattrs.set(rel, cur);
    }
  }

  private async hardlink(rel: string, abs: string, linkname: string): Promise<void> {
    const tname = cleanName(linkname);
    if (tname === '') throw breakout(`hardlink ${rel} to the root`, { path: rel, linkname });
    const tparent = resolveInRoot(this.root, parentOf(tname), this.cache);
    const trel = joinRel(tparent, baseOf(tname));
    const tabs = this.abs(trel);
    let tst = this.lstat(trel);
    const lowerDirs = !tst && this.opts.mode === 'overlay' ? await this.lower() : [];
    if (lowerDirs.length > 0) {
      // Copy-up: the target lives in a lower layer; bring it into this layer, then link to it.
      const lower = lookupMerged(lowerDirs, trel);
      if (lower && (lower.st.isFile() || lower.st.isSymbolicLink())) {
        this.mkparent(tparent);
        if (lower.st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(lower.src), tabs);
        else fs.copyFileSync(lower.src, tabs, fs.constants.COPYFILE_EXCL);
        this.created(trel);
        const { override: lo, xattrs } = fileRecords(lowerDirs[lower.layer]!, lower.rel, lower.src);
        this.setOwner(trel, tabs, lo?.uid ?? lower.st.uid, lo?.gid ?? lower.st.gid, lo?.mode ?? lower.st.mode & 0o7777, lower.st.isSymbolicLink() ? 'symlink' : 'file');
        if (xattrs && lower.st.isFile()) this.xattrs.set(trel, xattrs);
        fs.lutimesSync(tabs, lower.st.atime, lower.st.mtime);
        tst = fs.lstatSync(tabs);
      }
    }
    if (!tst) throw new InvalidArgumentError(`hardlink ${rel}: target ${JSON.stringify(linkname)} not found`, { reason: 'invalid-archive', path: rel, linkname });
    if (tst.isDirectory()) throw new InvalidArgumentError(`hardlink ${rel}: target ${JSON.stringify(linkname)} is a directory`, { reason: 'invalid-archive', path: rel, linkname });
    fs.linkSync(tabs, abs);
    this.created(rel);
    const o = this.overrides.get(trel);
    if (o) this.overrides.set(rel, { ...o });
  }

  private whiteout(dirName: string, base: string): void {
    const parent = resolveInRoot(this.root, dirName, this.cache);
    if (base === WH_OPAQUE) {
      if (this.opts.mode === 'overlay') {
        this.mkparent(parent);
        const rel = joinRel(parent, WH_OPAQUE);
        if (!this.lstat(rel)) { fs.writeFileSync(this.abs(rel), ''); this.created(rel); }
        this.unpacked.add(rel);
        this.markers = true;
      } else {
        this.opaqueDirs.push(parent);
      }
      return;
    }
    const victim = base.slice(WH_PREFIX.length);
    if (victim === '' || victim === '.' || victim === '..') {
      throw breakout(`invalid whiteout ${JSON.stringify(joinRel(dirName, base))}`, { path: joinRel(dirName, base) });
    }
    const vrel = joinRel(parent, victim);
    if (this.opts.mode === 'overlay') {
      this.mkparent(parent);
      const marker = joinRel(parent, base);
      const st = this.lstat(marker);
      if (st) this.remove(marker, st.isDirectory());
      fs.writeFileSync(this.abs(marker), '');
      this.created(marker);
      this.markers = true;
      return;
    }
    // Merged: a whiteout removes what lower layers put there, never what this layer unpacked.
    if (this.unpacked.has(vrel)) return;
    // A directory holding entries of this layer stays, like a same-layer dir next to its whiteout in overlay layout.
    if (this.unpackedParents.has(vrel)) { this.opaqueDirs.push(vrel); return; }
    const pst = this.lstat(parent);
    if (parent !== '' && !pst?.isDirectory()) return;
    const vst = this.lstat(vrel);
    if (vst) this.remove(vrel, vst.isDirectory());
  }
}
