import type { Readable } from 'node:stream';
import type { Descriptor, Digest } from '../oci/index.js';

/** A committed blob's record. */
export interface Info {
  digest: Digest;
  size: number;
  createdAt: Date;
  updatedAt: Date;
  labels: Record<string, string>;
}

/** An ingest in progress, keyed by a caller-chosen ref. */
export interface Status {
  ref: string;
  offset: number;
  /** Expected total size, 0 when unknown. */
  total: number;
  expected?: Digest;
  startedAt: Date;
  updatedAt: Date;
}

/** Random access to one committed blob. */
export interface ReaderAt {
  readonly size: number;
  /**
   * Reads up to `length` bytes at `offset`; a read past the end returns what exists (possibly 0 bytes).
   * `into` (at least `length` bytes) may receive them instead of a new buffer, so that a sender can reuse
   * a few buffers; the returned buffer holds the bytes either way.
   */
  readAt(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /** A stream of [start, end) (end exclusive, default the blob's size). */
  stream(range?: { start?: number; end?: number }): Readable;
  /**
   * Optional: the open file descriptor holding the bytes (offset 0 is the blob's first byte), valid
   * until close: a reader on another thread of this process reads it directly (see LayerFile).
   */
  readonly fd?: number;
  close(): Promise<void>;
}

export interface CommitOptions {
  labels?: Record<string, string>;
}

/** Writes one ingest. Close keeps the ingest for a later resume; commit makes it a blob. */
export interface Writer {
  readonly ref: string;
  write(chunk: Uint8Array): Promise<void>;
  /** Digest of the bytes written so far. */
  digest(): Digest;
  status(): Status;
  /** Only 0 is supported: reset the ingest to empty (recovers a partial or corrupt ingest). */
  truncate(size: 0): Promise<void>;
  /** Releases the ref; the ingest stays for resume. A second close is a no-op. */
  close(): Promise<void>;
  /**
   * Verifies size (0 = unknown) and digest (undefined = unknown), then makes the blob visible atomically.
   * Always closes the writer. AlreadyExists when the blob was already there (harmless; the ingest is removed).
   * SizeMismatch / DigestMismatch on a wrong size / digest: the ingest is kept, the ref unlocked.
   */
  commit(size: number, expected?: Digest, opts?: CommitOptions): Promise<void>;
  /**
   * Optional: a reader of the bytes written so far, for a consumer that follows the ingest as it grows
   * (an unpack behind its download). Its `size` is the writer's offset at each moment; it reads the
   * ingest's own file, so it goes on reading the same bytes after commit. The bytes are not verified
   * until commit succeeds: a consumer must not finish before that.
   */
  readerAt?(): Promise<ReaderAt>;
}

export interface WriterOptions {
  /** Required: the ingest key, 1..256 bytes, no '/', '\\', '..' or control characters (else InvalidArgument). */
  ref: string;
  /** Optional expected size/digest. With a digest that already exists, opening fails with AlreadyExists. */
  desc?: Partial<Pick<Descriptor, 'digest' | 'size'>>;
  /**
   * If the ref is locked by another writer (in any process): retry with random backoff (16 ms doubling
   * to 2 s) instead of failing Unavailable at once; when `signal` fires, the Unavailable error is thrown.
   */
  wait?: boolean;
  signal?: AbortSignal;
}

export interface Provider {
  readerAt(desc: Pick<Descriptor, 'digest'>): Promise<ReaderAt>;
}

export interface Ingester {
  writer(opts: WriterOptions): Promise<Writer>;
}

export interface IngestManager {
  status(ref: string): Promise<Status>;
  /** Filters as containerd's: `ref==x`, `ref~=regex`; strings are ORed, commas inside one are ANDed. */
  listStatuses(...filters: string[]): Promise<Status[]>;
  abort(ref: string): Promise<void>;
}

export interface Manager {
  info(digest: Digest): Promise<Info>;
  /** fieldpaths empty or ['labels'] replaces all labels; ['labels.k'] sets or (empty value) deletes one. */
  update(info: Pick<Info, 'digest' | 'labels'>, ...fieldpaths: string[]): Promise<Info>;
  /** Filters on `digest`, `size`, `labels.<key>` with ==, !=, ~= or presence. */
  walk(fn: (info: Info) => void | Promise<void>, ...filters: string[]): Promise<void>;
  delete(digest: Digest): Promise<void>;
}

/** The whole content store: containerd's four roles. */
export interface ContentStore extends Provider, Ingester, IngestManager, Manager {}

/**
 * The on-disk store. Committed blobs are immutable files, so callers that read thousands of tiny
 * manifests and configs may read them synchronously by path (an order of magnitude cheaper).
 */
export interface LocalContentStore extends ContentStore {
  blobPath(digest: string): string;
}

/**
 * Where blob labels live. The metadata database implements it; the bare store uses an
 * in-directory fallback so that the content store works (and passes its suite) on its own.
 */
export interface LabelStore {
  get(digest: Digest): Record<string, string>;
  set(digest: Digest, labels: Record<string, string>): void;
  /** Sets one key; an empty value deletes it. */
  update(digest: Digest, key: string, value: string): void;
  delete(digest: Digest): void;
}
