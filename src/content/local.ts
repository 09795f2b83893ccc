import { createHash } from 'node:crypto';
import { promises as fsp, constants as fsc } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  AlreadyExistsError,
  DigestMismatchError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  SizeMismatchError,
  fromSystemError,
  isNotFound,
  isStowageError,
} from '../errors/index.js';
import { isDigest, parseDigest, type Digest } from '../oci/index.js';
import { labelField, matchFilters, parseFilters } from '../filters/index.js';
import { pidExists } from '../owners/index.js';
import { openWriterWaiting } from './helpers.js';
import { type Algorithm, type IngestHasher, hashFileRange } from './hashing.js';
import { newIngestHasher, resumeIngestHasher, type ResumeReport } from './checkpoint.js';
import { BlobSideRecords, DirLabelStore } from './labels.js';
import { acquireRefLock, type RefLock } from './lock.js';
import type { ContentStore, LocalContentStore, Info, LabelStore, ReaderAt, Status, Writer, WriterOptions, CommitOptions } from './types.js';

export interface LocalStoreOptions {
  /** Where labels live (the metadata database). Without one, labels are kept under `<root>/labels/`. */
  labels?: LabelStore;
  /** Observability for tests and benches: called when a resumed writer rebuilds its digest. */
  onResume?: (report: ResumeReport) => void;
  /** Ingests at least this large get a background hash checkpointer (default 8 MiB). */
  checkpointMinBytes?: number;
  /** Ingests of known size with less than this many seconds to go at their pace get none (default 2). */
  checkpointMinSeconds?: number;
  /** How often the checkpointer saves the hash state (default 32 MiB). */
  checkpointIntervalBytes?: number;
  /** Nice value of the checkpointer thread (default 19, so it only uses idle CPU). */
  checkpointNice?: number;
}

const MAX_REF_BYTES = 256;
/** Chunks at least this big are hashed while their write is in flight (see LocalWriter.writeNow). */
const OVERLAP_MIN_BYTES = 64 << 10;
/**
 * Blob streams read 256 KiB at a time: as fast as 1 MiB reads from the page cache, and no Buffer is
 * bigger than zlib's 1 MiB chunks. glibc serves a freed block of a new largest size from its heap
 * afterwards instead of mmap, and the heap does not give memory back: a pull that read its layers in
 * 1 MiB pieces peaked at 165-171 MiB, against 132-136 MiB with 256 KiB ones and a 256 KiB tee.
 */
const READ_CHUNK = 256 << 10;

/** Refs are caller-chosen keys; they are hashed into a directory name, but we still refuse path-like or invisible characters. */
export function validateRef(ref: unknown): asserts ref is string {
  if (typeof ref !== 'string' || ref === '') throw new InvalidArgumentError('ref must be a non-empty string', { ref });
  if (Buffer.byteLength(ref, 'utf8') > MAX_REF_BYTES) throw new InvalidArgumentError(`ref longer than ${MAX_REF_BYTES} bytes`, { ref });
  // eslint-disable-next-line no-control-regex
  if (/[/\\\u0000-\u001f\u007f]/.test(ref) || ref.includes('..')) {
    throw new InvalidArgumentError(`ref ${JSON.stringify(ref)} contains path separators, ".." or control characters`, { ref });
  }
}

function ingestKey(ref: string): string {
  return createHash('sha256').update(ref).digest('hex');
}

const rfc3339 = (d: Date) => d.toISOString();

async function readText(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw fromSystemError(e, file);
  }
}

/** Writes a small file via `<file>.tmp` + rename, so readers never see it torn. */
async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  await fsp.writeFile(tmp, text);
  await fsp.rename(tmp, file);
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Opens (creating as needed) a content store rooted at `root`: `blobs/<alg>/<hex>`, `ingest/<sha256(ref)>/`. */
export async function openContentStore(root: string, opts: LocalStoreOptions = {}): Promise<LocalContentStore> {
  const abs = path.resolve(root);
  try {
    for (const d of ['blobs/sha256', 'ingest', 'locks']) await fsp.mkdir(path.join(abs, d), { recursive: true });
  } catch (e) {
    throw fromSystemError(e, `content store root ${abs}`);
  }
  await removeLeftovers(path.join(abs, 'ingest'));
  return new LocalStore(abs, opts);
}

/** Ingest dirs half-created (`.new-<pid>-…`) or half-aborted (`.abort-<pid>-…`) by a process that died. */
async function removeLeftovers(ingest: string): Promise<void> {
  const names = await fsp.readdir(ingest).catch(() => [] as string[]);
  for (const name of names) {
    const m = /^[0-9a-f]{64}\.(?:new|abort)-(\d+)-\d+$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (!pidExists(pid) || name.includes('.abort-')) await fsp.rm(path.join(ingest, name), { recursive: true, force: true }).catch(() => {});
  }
}

export class LocalStore implements LocalContentStore {
  readonly side: BlobSideRecords;
  readonly labels: LabelStore;

  constructor(readonly root: string, readonly opts: LocalStoreOptions = {}) {
    this.side = new BlobSideRecords(root);
    this.labels = opts.labels ?? new DirLabelStore(this.side);
  }

  /** The checkpointer settings every ingest hasher gets (new and resumed alike). */
  private checkpointOptions() {
    const { checkpointMinBytes, checkpointMinSeconds, checkpointIntervalBytes, checkpointNice } = this.opts;
    return { checkpointMinBytes, checkpointMinSeconds, checkpointIntervalBytes, checkpointNice };
  }

  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return path.join(this.root, 'blobs', algorithm, hex);
  }
  ingestDir(ref: string): string { return path.join(this.root, 'ingest', ingestKey(ref)); }
  lockPath(ref: string): string { return path.join(this.root, 'locks', ingestKey(ref)); }

  // ---- Provider

  async readerAt(desc: { digest: Digest }): Promise<ReaderAt> {
    const file = this.blobPath(desc.digest);
    let fh: FileHandle;
    try {
      fh = await fsp.open(file, 'r');
    } catch (e) {
      throw fromSystemError(e, `content ${desc.digest}`, { data: { digest: desc.digest } });
    }
    const { size } = await fh.stat();
    return new FileReaderAt(fh, size);
  }

  // ---- Manager

  async info(digest: Digest): Promise<Info> {
    const file = this.blobPath(digest);
    let st;
    try {
      st = await fsp.stat(file);
    } catch (e) {
      throw fromSystemError(e, `content ${digest}`, { data: { digest } });
    }
    const side = this.side.read(digest);
    const updated = side.updatedAt ? new Date(side.updatedAt) : st.mtime;
    return {
      digest,
      size: st.size,
      createdAt: st.mtime,
      updatedAt: updated > st.mtime ? updated : st.mtime,
      labels: this.labels.get(digest),
    };
  }

  async update(info: Pick<Info, 'digest' | 'labels'>, ...fieldpaths: string[]): Promise<Info> {
    await this.info(info.digest); // NotFound first
    const labels = info.labels ?? {};
    if (fieldpaths.length === 0 || fieldpaths.includes('labels')) {
      for (const p of fieldpaths) if (p !== 'labels' && !p.startsWith('labels.')) throw new InvalidArgumentError(`cannot update ${JSON.stringify(p)} of content`, { fieldpath: p });
      this.labels.set(info.digest, { ...labels });
    } else {
      for (const p of fieldpaths) {
        if (!p.startsWith('labels.') || p.length === 'labels.'.length) throw new InvalidArgumentError(`cannot update ${JSON.stringify(p)} of content`, { fieldpath: p });
      }
      for (const p of fieldpaths) {
        const key = p.slice('labels.'.length);
        this.labels.update(info.digest, key, labels[key] ?? '');
      }
    }
    const side = this.side.read(info.digest);
    this.side.write(info.digest, { ...side, updatedAt: new Date().toISOString() });
    return this.info(info.digest);
  }

  async walk(fn: (info: Info) => void | Promise<void>, ...filters: string[]): Promise<void> {
    const parsed = parseFilters(...filters);
    const blobs = path.join(this.root, 'blobs');
    const algs = await fsp.readdir(blobs).catch(() => [] as string[]);
    for (const alg of algs.sort()) {
      if (alg !== 'sha256' && alg !== 'sha512') continue; // unknown algorithm dirs are skipped
      const names = await fsp.readdir(path.join(blobs, alg)).catch(() => [] as string[]);
      for (const name of names.sort()) {
        if (name.startsWith('.')) continue;
        const digest = `${alg}:${name}` as Digest;
        if (!isDigest(digest)) continue; // not ours (containerd logs and passes these on; we cannot stat them by digest)
        let info: Info;
        try {
          info = await this.info(digest);
        } catch (e) {
          if (isStowageError(e, 'NotFound')) continue; // deleted while walking
          throw e;
        }
        if (!matchFilters(parsed, (fp) => infoField(info, fp))) continue;
        await fn(info);
      }
    }
  }

  async delete(digest: Digest): Promise<void> {
    const file = this.blobPath(digest);
    try {
      await fsp.unlink(file);
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError(`content ${digest}: not found`, { digest });
      throw fromSystemError(e, `delete ${digest}`);
    }
    try { this.labels.delete(digest); } catch { /* labels are advisory here */ }
    this.side.remove(digest);
  }

  // ---- IngestManager

  async status(ref: string): Promise<Status> {
    validateRef(ref);
    return this.readStatus(ref, this.ingestDir(ref));
  }

  private async readStatus(ref: string | undefined, dir: string): Promise<Status> {
    const storedRef = await readText(path.join(dir, 'ref'));
    // An empty ref (a crash before it reached the disk) names nothing: not listed; openIngest restores it.
    if (storedRef === undefined || storedRef === '' || (ref !== undefined && storedRef !== ref)) throw new NotFoundError(`ingest ${JSON.stringify(ref ?? dir)}: not found`, { ref });
    let dst;
    try {
      dst = await fsp.stat(path.join(dir, 'data'));
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError(`ingest ${JSON.stringify(storedRef)}: no data`, { ref: storedRef });
      throw fromSystemError(e, `ingest ${storedRef}`);
    }
    const total = Number.parseInt((await readText(path.join(dir, 'total'))) ?? '', 10);
    const expected = (await readText(path.join(dir, 'expected')))?.trim();
    const startedText = await readText(path.join(dir, 'startedat'));
    const updatedText = await readText(path.join(dir, 'updatedat'));
    const startedAt = startedText ? new Date(startedText.trim()) : dst.birthtime;
    let updatedAt = updatedText ? new Date(updatedText.trim()) : dst.mtime;
    if (dst.mtime > updatedAt) updatedAt = dst.mtime; // updatedat is persisted on close only
    return {
      ref: storedRef,
      offset: dst.size,
      total: Number.isSafeInteger(total) && total > 0 ? total : 0,
      ...(expected && isDigest(expected) ? { expected } : {}),
      startedAt,
      updatedAt,
    };
  }

  async listStatuses(...filters: string[]): Promise<Status[]> {
    const parsed = parseFilters(...filters);
    const ingest = path.join(this.root, 'ingest');
    const out: Status[] = [];
    const names = await fsp.readdir(ingest).catch(() => [] as string[]);
    for (const name of names.sort()) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue; // skip temp dirs being created
      try {
        const st = await this.readStatus(undefined, path.join(ingest, name));
        if (matchFilters(parsed, (fp) => statusField(st, fp))) out.push(st);
      } catch (e) {
        if (isStowageError(e, 'NotFound')) continue; // vanished while listing
        throw e;
      }
    }
    return out;
  }

  async abort(ref: string): Promise<void> {
    validateRef(ref);
    const dir = this.ingestDir(ref);
    const trash = `${dir}.abort-${process.pid}-${Date.now()}`;
    try {
      await fsp.rename(dir, trash); // atomic disappearance, then remove at leisure
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError(`ingest ${JSON.stringify(ref)}: not found`, { ref });
      throw fromSystemError(e, `abort ${ref}`);
    }
    await fsp.rm(trash, { recursive: true, force: true });
  }

  // ---- Ingester

  async writer(opts: WriterOptions): Promise<Writer> {
    // Waiting is containerd's OpenWriter: random backoff 16 ms..2 s; when the signal fires, the lock error.
    if (opts.wait) return openWriterWaiting(this, opts);
    return this.openWriter(opts);
  }

  private async openWriter(opts: WriterOptions): Promise<Writer> {
    const ref = opts.ref;
    validateRef(ref);
    const expected = opts.desc?.digest;
    let algorithm: Algorithm = 'sha256';
    if (expected !== undefined) algorithm = parseDigest(expected).algorithm;
    const size = opts.desc?.size ?? 0;
    if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`invalid size ${String(size)}`, { ref, size });

    const dataPath = path.join(this.ingestDir(ref), 'data');
    const lock = await acquireRefLock(this.lockPath(ref), ref, async () => (await fsp.stat(dataPath).catch(() => undefined))?.mtimeMs);
    try {
      if (expected !== undefined && (await exists(this.blobPath(expected)))) {
        throw new AlreadyExistsError(`content ${expected}: already exists`, { digest: expected, ref });
      }
      return await this.openIngest(ref, lock, algorithm, size, expected);
    } catch (e) {
      await lock.release();
      throw fromSystemError(e, `writer ${ref}`);
    }
  }

  private async openIngest(ref: string, lock: RefLock, algorithm: Algorithm, total: number, expected: Digest | undefined): Promise<LocalWriter> {
    const dir = this.ingestDir(ref);
    const dataPath = path.join(dir, 'data');
    let status: Status | undefined;
    // The dir is named by the ref's hash, so a `ref` file a crash left empty can be restored instead
    // of wedging the ref (the data is re-hashed on resume and verified at commit, as always).
    if ((await readText(path.join(dir, 'ref'))) === '') await writeAtomic(path.join(dir, 'ref'), ref);
    try {
      status = await this.readStatus(undefined, dir);
    } catch (e) {
      if (!isStowageError(e, 'NotFound')) throw e;
      // missing, or an unreadable status: (re)create below
    }
    if (status !== undefined) {
      if (status.ref !== ref) throw new FailedPreconditionError(`ingest for ${JSON.stringify(ref)} holds ref ${JSON.stringify(status.ref)}`, { ref });
      if (total > 0 && status.total > 0 && total !== status.total) {
        throw new FailedPreconditionError(`provided total ${total} differs from the ingest's ${status.total}`, { ref, total, stored: status.total });
      }
      if (total > 0 && status.total === 0) await writeAtomic(path.join(dir, 'total'), String(total));
      if (expected !== undefined && status.expected === undefined) await writeAtomic(path.join(dir, 'expected'), expected);
      if (status.expected !== undefined && expected === undefined) algorithm = parseDigest(status.expected).algorithm;
      const fh = await openForResume(dataPath);
      let hasher: IngestHasher;
      try {
        hasher = await resumeIngestHasher({
          dir, dataPath, algorithm, length: status.offset, total: status.total || total, ref,
          onResume: this.opts.onResume, ...this.checkpointOptions(),
        });
      } catch (e) {
        await fh.close();
        throw e;
      }
      return new LocalWriter(this, ref, dir, fh, hasher, lock, {
        ...status,
        total: status.total || total,
        ...(status.expected ?? expected ? { expected: (status.expected ?? expected)! } : {}),
      });
    }

    // New ingest: build it in a temp dir and rename, so a half-made status is never seen.
    if (await exists(dir)) await fsp.rm(dir, { recursive: true, force: true });
    const tmp = `${dir}.new-${process.pid}-${Date.now()}`;
    const now = new Date();
    await fsp.mkdir(tmp);
    try {
      await fsp.writeFile(path.join(tmp, 'ref'), ref);
      await fsp.writeFile(path.join(tmp, 'startedat'), rfc3339(now));
      await fsp.writeFile(path.join(tmp, 'updatedat'), rfc3339(now));
      if (total > 0) await fsp.writeFile(path.join(tmp, 'total'), String(total));
      if (expected !== undefined) await fsp.writeFile(path.join(tmp, 'expected'), expected);
      await fsp.writeFile(path.join(tmp, 'data'), '');
      await fsp.rename(tmp, dir);
    } catch (e) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw fromSystemError(e, `ingest ${ref}`);
    }
    const fh = await fsp.open(dataPath, 'r+');
    const hasher = newIngestHasher({
      dir, dataPath, algorithm, ref, total, ...this.checkpointOptions(),
    });
    return new LocalWriter(this, ref, dir, fh, hasher, lock, {
      ref, offset: 0, total, ...(expected ? { expected } : {}), startedAt: now, updatedAt: now,
    });
  }
}

function infoField(info: Info, fp: string[]): string | undefined {
  switch (fp[0]) {
    case 'digest': return fp.length === 1 ? info.digest : undefined;
    case 'size': return fp.length === 1 ? String(info.size) : undefined;
    case 'labels': return labelField(info.labels, fp.slice(1));
    default: return undefined;
  }
}

function statusField(st: Status, fp: string[]): string | undefined {
  if (fp.length !== 1) return undefined;
  switch (fp[0]) {
    case 'ref': return st.ref;
    case 'expected': return st.expected;
    case 'offset': return String(st.offset);
    case 'total': return String(st.total);
    default: return undefined;
  }
}

/**
 * Commit makes `data` read-only just before renaming it into blobs/; a crash (or a failed rename) in
 * between leaves a read-only ingest. Root opens it anyway; an unprivileged user gets EACCES, so give the
 * owner its write bit back rather than wedge the ref.
 */
async function openForResume(dataPath: string): Promise<FileHandle> {
  try {
    return await fsp.open(dataPath, 'r+');
  } catch (e) {
    if (fromSystemError(e, dataPath).code !== 'Forbidden') throw e;
    await fsp.chmod(dataPath, 0o644);
    return await fsp.open(dataPath, 'r+');
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}

class LocalWriter implements Writer {
  private closed = false;
  private offset: number;
  private readonly total: number;
  private readonly expected: Digest | undefined;
  private readonly startedAt: Date;
  private updatedAt: Date;
  /** Set when a failed write may have left bytes the digest has not seen; only truncate(0) recovers. */
  private broken = false;

  constructor(
    private readonly store: LocalStore,
    readonly ref: string,
    private readonly dir: string,
    private fh: FileHandle,
    private readonly hasher: IngestHasher,
    private readonly lock: RefLock,
    st: Status,
  ) {
    this.offset = st.offset;
    this.total = st.total;
    this.expected = st.expected;
    this.startedAt = st.startedAt;
    this.updatedAt = st.updatedAt;
  }

  private ensureOpen(op: string): void {
    if (this.closed) throw new FailedPreconditionError(`${op}: writer for ${JSON.stringify(this.ref)} is closed`, { ref: this.ref });
  }

  /** Writes are queued: a caller that does not await each one still gets them in order, never overlapping. */
  private queue: Promise<void> = Promise.resolve();

  write(chunk: Uint8Array): Promise<void> {
    const p = this.queue.then(() => this.writeNow(chunk));
    this.queue = p.catch(() => {});
    return p;
  }

  private async writeNow(chunk: Uint8Array): Promise<void> {
    this.ensureOpen('write');
    if (this.broken) throw new FailedPreconditionError(`write: ingest ${JSON.stringify(this.ref)} is inconsistent after a failed write; truncate(0) to recover`, { ref: this.ref });
    if (chunk.length === 0) return;
    // Big chunks are hashed on this thread while the write runs in libuv's pool (two cores busy, not
    // one after the other); the hash is put back if the write fails.
    const overlap = chunk.length >= OVERLAP_MIN_BYTES;
    let undo: (() => void) | undefined;
    const writing = this.writeAll(chunk);
    if (overlap) {
      undo = this.hasher.mark();
      this.hasher.update(chunk);
    }
    try {
      await writing;
    } catch (e) {
      undo?.();
      // Undo the partial append so that data and digest agree again.
      try {
        await this.fh.truncate(this.offset);
      } catch {
        this.broken = true;
      }
      throw fromSystemError(e, `write ${this.ref}`);
    }
    if (!overlap) this.hasher.update(chunk);
    this.offset += chunk.length;
    this.updatedAt = new Date();
    this.hasher.progress(this.offset);
  }

  private async writeAll(chunk: Uint8Array): Promise<void> {
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, done, chunk.length - done, this.offset + done);
      done += bytesWritten;
    }
  }

  digest(): Digest { return this.hasher.digest(); }

  async readerAt(): Promise<ReaderAt> {
    this.ensureOpen('readerAt');
    let fh: FileHandle;
    try {
      fh = await fsp.open(path.join(this.dir, 'data'), 'r');
    } catch (e) {
      throw fromSystemError(e, `read ingest ${this.ref}`);
    }
    return new FileReaderAt(fh, () => this.offset);
  }

  status(): Status {
    return {
      ref: this.ref,
      offset: this.offset,
      total: this.total,
      ...(this.expected ? { expected: this.expected } : {}),
      startedAt: this.startedAt,
      updatedAt: this.updatedAt,
    };
  }

  /** Queued like writes: writes issued after it (not awaited) land after it, never under it. */
  truncate(size: 0): Promise<void> {
    const p = this.queue.then(() => this.truncateNow(size));
    this.queue = p.catch(() => {});
    return p;
  }

  private async truncateNow(size: 0): Promise<void> {
    this.ensureOpen('truncate');
    if (size !== 0) throw new InvalidArgumentError('truncate: only 0 is supported', { ref: this.ref, size });
    await this.hasher.forget();
    try {
      await this.fh.truncate(0);
    } catch (e) {
      throw fromSystemError(e, `truncate ${this.ref}`);
    }
    this.hasher.reset();
    this.offset = 0;
    this.broken = false;
    this.updatedAt = new Date();
  }

  async close(): Promise<void> {
    await this.queue;
    if (this.closed) return;
    this.closed = true;
    try {
      await this.fh.sync().catch(() => {});
      await this.fh.close();
      if (!this.broken) await this.hasher.save().catch(() => {});
      else await this.hasher.dispose();
      await writeAtomic(path.join(this.dir, 'updatedat'), rfc3339(this.updatedAt)).catch(() => {}); // aborted meanwhile: fine
    } finally {
      await this.lock.release();
    }
  }

  async commit(size: number, expected?: Digest, opts: CommitOptions = {}): Promise<void> {
    await this.queue;
    this.ensureOpen('commit');
    this.closed = true;
    let keepIngest = true; // on a mismatch the ingest stays (containerd): the caller may resume, truncate or abort
    try {
      if (this.broken) throw new FailedPreconditionError(`commit: ingest ${JSON.stringify(this.ref)} is inconsistent after a failed write`, { ref: this.ref });
      const dataPath = path.join(this.dir, 'data');
      let actualSize: number;
      try {
        await this.fh.sync();
        actualSize = (await this.fh.stat()).size;
      } catch (e) {
        throw fromSystemError(e, `commit ${this.ref}`);
      } finally {
        await this.fh.close().catch(() => {});
      }
      if (actualSize !== this.offset) {
        throw new FailedPreconditionError(`commit: ingest ${JSON.stringify(this.ref)} has ${actualSize} bytes on disk but ${this.offset} were written`, { ref: this.ref });
      }
      if (size > 0 && size !== actualSize) {
        throw new SizeMismatchError(`unexpected commit size ${actualSize}, expected ${size}`, { ref: this.ref, size: actualSize, expected: size });
      }
      let dgst = this.hasher.digest();
      const algorithm = expected !== undefined ? parseDigest(expected).algorithm : this.hasher.algorithm;
      // Re-hash the file when the running digest is of another algorithm, or came from a saved
      // checkpoint and cannot be confirmed by an expected digest (a corrupt hashstate must never name a blob).
      if (algorithm !== this.hasher.algorithm || (!this.hasher.verified && dgst !== expected)) {
        const h = createHash(algorithm);
        await hashFileRange(dataPath, 0, actualSize, (c) => h.update(c));
        dgst = `${algorithm}:${h.digest('hex')}`;
      }
      if (expected !== undefined) {
        if (dgst !== expected) {
          throw new DigestMismatchError(`unexpected commit digest ${dgst}, expected ${expected}`, { ref: this.ref, digest: dgst, expected });
        }
      }
      await this.hasher.dispose();
      const target = this.store.blobPath(dgst);
      const algDir = path.dirname(target);
      try {
        await fsp.mkdir(algDir, { recursive: true });
        if (await exists(target)) {
          keepIngest = false;
          throw new AlreadyExistsError(`content ${dgst}: already exists`, { digest: dgst, ref: this.ref });
        }
        const now = new Date();
        await fsp.chmod(dataPath, 0o444); // read-only before it becomes visible
        await fsp.utimes(dataPath, now, now);
        await fsp.rename(dataPath, target);
        keepIngest = false;
        await fsyncDir(algDir);
      } catch (e) {
        throw fromSystemError(e, `commit ${this.ref}`);
      }
      // After the rename nothing can be undone; the rest is best effort (as containerd).
      if (opts.labels !== undefined && Object.keys(opts.labels).length > 0) {
        try { this.store.labels.set(dgst, { ...opts.labels }); } catch { /* logged by callers via info */ }
      }
    } catch (e) {
      throw fromSystemError(e, `commit ${this.ref}`);
    } finally {
      if (!keepIngest) {
        await this.hasher.dispose().catch(() => {});
        await fsp.rm(this.dir, { recursive: true, force: true }).catch(() => {});
      } else {
        await this.hasher.save().catch(() => {});
      }
      await this.lock.release();
    }
  }
}

/** A ReaderAt over one open blob file. */
class FileReaderAt implements ReaderAt {
  private closed = false;
  /** `size`: a committed blob's, or a function giving an ingest's bytes written so far. */
  constructor(private readonly fh: FileHandle, private readonly sizeNow: number | (() => number)) {}

  get size(): number { return typeof this.sizeNow === 'number' ? this.sizeNow : this.sizeNow(); }

  get fd(): number { return this.fh.fd; }

  async readAt(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (this.closed) throw new FailedPreconditionError('readAt: reader is closed');
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new InvalidArgumentError(`readAt: invalid range ${offset}+${length}`);
    }
    const n = Math.max(0, Math.min(length, this.size - offset));
    const buf = into && into.length >= n ? into.subarray(0, n) : Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await this.fh.read(buf, got, n - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === n ? buf : buf.subarray(0, got);
  }

  stream(range: { start?: number; end?: number } = {}): Readable {
    const start = range.start ?? 0;
    const end = Math.min(range.end ?? this.size, this.size);
    if (start < 0 || start > end) {
      if (start >= end && start >= 0) return Readable.from([]);
      throw new InvalidArgumentError(`stream: invalid range ${start}..${end}`);
    }
    if (start === end) return Readable.from([]);
    return this.fh.createReadStream({ start, end: end - 1, autoClose: false, highWaterMark: READ_CHUNK });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

