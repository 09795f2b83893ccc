import { Readable } from 'node:stream';
import {
  DigestMismatchError,
  ResourceExhaustedError,
  SizeMismatchError,
  isStowageError,
  throwIfAborted,
} from '../errors/index.js';
import { digestOf, parseDigest, type Descriptor, type Digest } from '../oci/index.js';
import type { Ingester, Provider, ReaderAt, Writer, WriterOptions } from './types.js';

/** A source that can start over at any offset (a file, an HTTP range request): containerd's Seeker case. */
export interface SeekableSource {
  openAt(offset: number): Readable | AsyncIterable<Uint8Array>;
}

/**
 * Where copied bytes come from. On a resume (status offset > 0) each kind is positioned the way
 * containerd's Copy does: bytes → slice; SeekableSource → openAt (seek); ReaderAt → a section;
 * a plain stream → the first `offset` bytes are read and discarded.
 */
export type CopySource = Uint8Array | Readable | AsyncIterable<Uint8Array> | SeekableSource | Pick<ReaderAt, 'readAt' | 'size'>;

export interface CopyOptions {
  labels?: Record<string, string>;
  signal?: AbortSignal;
}

type Expect = Partial<Pick<Descriptor, 'digest' | 'size'>>;

const CHUNK = 1 << 20;

function isReaderAt(s: CopySource): s is Pick<ReaderAt, 'readAt' | 'size'> {
  return typeof (s as ReaderAt).readAt === 'function';
}
function isSeekable(s: CopySource): s is SeekableSource {
  return typeof (s as SeekableSource).openAt === 'function';
}

async function* chunksFrom(source: CopySource, offset: number): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    for (let o = offset; o < source.length; o += CHUNK) yield source.subarray(o, Math.min(o + CHUNK, source.length));
    return;
  }
  if (isReaderAt(source)) {
    for (let o = offset; o < source.size; ) {
      const b = await source.readAt(o, Math.min(CHUNK, source.size - o));
      if (b.length === 0) return;
      o += b.length;
      yield b;
    }
    return;
  }
  const iterable: AsyncIterable<Uint8Array> = isSeekable(source) ? source.openAt(offset) : source;
  let skip = isSeekable(source) ? 0 : offset;
  for await (const raw of iterable) {
    let chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    if (skip > 0) {
      if (chunk.length <= skip) { skip -= chunk.length; continue; }
      chunk = chunk.subarray(skip);
      skip = 0;
    }
    yield chunk;
  }
  if (skip > 0) throw new SizeMismatchError(`copy: source ended ${skip} bytes before the resume offset ${offset}`, { offset, missing: skip });
}

/**
 * containerd's content.Copy: continues the writer from its status offset, writes the rest of `source`,
 * then commits with the descriptor's size and digest. AlreadyExists at commit counts as success.
 * A short source (fewer than size - offset bytes) is SizeMismatch (containerd: UnexpectedEOF); more
 * bytes than `size` are refused before they are written. On any failure the writer is closed and the
 * ingest kept, so a later call resumes where this one stopped.
 */
export async function copyInto(writer: Writer, source: CopySource, desc: Expect, opts: CopyOptions = {}): Promise<void> {
  const size = desc.size ?? 0;
  let offset = writer.status().offset;
  try {
    if (size > 0 && offset > size) {
      throw new SizeMismatchError(`copy: ingest ${JSON.stringify(writer.ref)} already holds ${offset} bytes, more than ${size}`, { ref: writer.ref, offset, size });
    }
    for await (const chunk of chunksFrom(source, offset)) {
      throwIfAborted(opts.signal);
      if (size > 0 && offset + chunk.length > size) {
        throw new SizeMismatchError(`copy: source is longer than ${size} bytes`, { ref: writer.ref, size });
      }
      await writer.write(chunk);
      offset += chunk.length;
    }
    if (size > 0 && offset < size) {
      throw new SizeMismatchError(`copy: unexpected end of source after ${offset} of ${size} bytes`, { ref: writer.ref, offset, size });
    }
  } catch (e) {
    await writer.close().catch(() => {});
    throw e;
  }
  try {
    await writer.commit(size, desc.digest, opts.labels ? { labels: opts.labels } : {});
  } catch (e) {
    if (!isStowageError(e, 'AlreadyExists')) throw e;
  }
}

/**
 * Opens a writer, retrying while the ref is locked elsewhere (Unavailable) with a random sleep below a
 * bound that starts at 16 ms and doubles up to 2048 ms, until `signal` fires (then the lock error is thrown).
 */
export async function openWriterWaiting(store: Ingester, opts: Omit<WriterOptions, 'wait'>): Promise<Writer> {
  let bound = 16;
  for (;;) {
    try {
      return await store.writer({ ...opts, wait: false });
    } catch (e) {
      if (!isStowageError(e, 'Unavailable') || opts.signal?.aborted) throw e;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.random() * bound);
        function done() { clearTimeout(t); opts.signal?.removeEventListener('abort', done); resolve(); }
        opts.signal?.addEventListener('abort', done, { once: true });
      });
      bound = Math.min(bound * 2, 2048);
    }
  }
}

/**
 * Writes a whole blob under `ref`: AlreadyExists when opening (the digest is known and present) is
 * success and the source is never read; AlreadyExists at commit is success too.
 */
export async function writeBlob(store: Ingester, ref: string, source: CopySource, desc: Expect, opts: CopyOptions = {}): Promise<void> {
  let writer: Writer;
  try {
    writer = await openWriterWaiting(store, { ref, desc, ...(opts.signal ? { signal: opts.signal } : {}) });
  } catch (e) {
    if (isStowageError(e, 'AlreadyExists')) return;
    throw e;
  }
  await copyInto(writer, source, desc, opts);
}

/** Default cap for readBlob: blobs read whole into memory must be small (manifests, configs, indexes). */
export const DEFAULT_MAX_BLOB_READ = 16 << 20;

/**
 * Reads a small blob whole. Uses the descriptor's inline `data` when its length and digest check out;
 * otherwise reads the store. The result is verified against the descriptor's size and digest.
 */
export async function readBlob(store: Provider, desc: Pick<Descriptor, 'digest'> & Partial<Pick<Descriptor, 'size' | 'data'>>, maxSize = DEFAULT_MAX_BLOB_READ): Promise<Buffer> {
  const { algorithm } = parseDigest(desc.digest);
  if (desc.data !== undefined && desc.size !== undefined) {
    const inline = Buffer.from(desc.data, 'base64');
    if (inline.length === desc.size && digestOf(inline, algorithm) === desc.digest) return inline;
  }
  if (desc.size !== undefined && desc.size > maxSize) {
    throw new ResourceExhaustedError(`blob ${desc.digest} is ${desc.size} bytes, over the ${maxSize}-byte limit for whole reads`, { digest: desc.digest, size: desc.size, maxSize });
  }
  const ra = await store.readerAt(desc);
  try {
    if (ra.size > maxSize) {
      throw new ResourceExhaustedError(`blob ${desc.digest} is ${ra.size} bytes, over the ${maxSize}-byte limit for whole reads`, { digest: desc.digest, size: ra.size, maxSize });
    }
    if (desc.size !== undefined && ra.size !== desc.size) {
      throw new SizeMismatchError(`blob ${desc.digest} is ${ra.size} bytes, descriptor says ${desc.size}`, { digest: desc.digest, size: ra.size, expected: desc.size });
    }
    const buf = await ra.readAt(0, ra.size);
    const actual: Digest = digestOf(buf, algorithm);
    if (actual !== desc.digest) throw new DigestMismatchError(`blob ${desc.digest} reads back as ${actual}`, { digest: actual, expected: desc.digest });
    return buf;
  } finally {
    await ra.close();
  }
}


