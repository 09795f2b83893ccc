import { randomBytes } from 'node:crypto';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, isStowageError } from '../errors/index.js';
import { Digester, MediaType, type Descriptor, type Digest } from '../oci/index.js';
import { compressStream, decompressStream } from '../snapshots/index.js';
import { externalDecompress, peek, sniff } from './decompress.js';
import type { TrackedContent } from './tracked-content.js';
import { UNCOMPRESSED } from '../content/index.js';

/** Diff ID of the empty layer docker's builder leaves out: a tar of no entries (1024 zero bytes). */
export const EMPTY_TAR_DIFF_ID: Digest = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

export interface StoredLayer { descriptor: Descriptor; diffId: Digest }

function hashing(d: Digester): Transform {
  return new Transform({ transform(c: Buffer, _e, cb) { d.update(c); cb(null, c); } });
}

/**
 * Stores a layer tar given in any compression as a content blob: gzip and zstd are kept byte for byte
 * (their digests survive), plain, xz and bzip2 tars are stored gzip-compressed (containerd's import rule).
 * The diff ID is hashed from the uncompressed bytes on the way. One pass, memory flat.
 */
export async function storeLayerStream(content: TrackedContent, input: Readable, opts: { signal?: AbortSignal; onBytes?: (n: number) => void } = {}): Promise<StoredLayer> {
  const { head, stream } = await peek(input);
  const kind = sniff(head);
  const writer = await content.writer({ ref: `layer-${randomBytes(12).toString('hex')}`, ...(opts.signal ? { signal: opts.signal } : {}) });
  const raw = new Digester('sha256');
  let read = 0;
  const counted = new Transform({ transform(c: Buffer, _e, cb) { read += c.length; opts.onBytes?.(read); cb(null, c); } });
  const sink = new Writable({ highWaterMark: 1 << 20, write(c: Buffer, _e, cb) { writer.write(c).then(() => cb(), cb); } });
  const so = opts.signal ? { signal: opts.signal } : {};
  let mediaType: string;
  try {
    if (kind === 'gzip' || kind === 'zstd') {
      // The compressed bytes go to the store as they are; a decompressed copy is only hashed.
      mediaType = kind === 'gzip' ? MediaType.OciLayerGzip : MediaType.OciLayerZstd;
      const tee = new Transform({ transform(c: Buffer, _e, cb) { writer.write(c).then(() => cb(null, c), cb); } });
      const plain = decompressStream(pipelineSource(stream, counted, tee));
      await pipeline(plain, hashing(raw), new Writable({ write(_c, _e, cb) { cb(); } }), so);
    } else {
      mediaType = MediaType.OciLayerGzip;
      const src = pipelineSource(stream, counted);
      const plain = kind === 'none' ? src : externalDecompress(kind, src);
      await pipeline(plain, hashing(raw), compressStream('gzip'), sink, so);
    }
    const diffId = raw.digest();
    const digest = writer.digest();
    const size = writer.status().offset;
    try {
      await writer.commit(size, digest, { labels: { [UNCOMPRESSED]: diffId } });
    } catch (e) { if (!isStowageError(e, 'AlreadyExists')) throw e; }
    return { descriptor: { mediaType, digest, size }, diffId };
  } catch (e) {
    await writer.close().catch(() => undefined);
    await content.abort(writer.ref).catch(() => undefined);
    if (isStowageError(e)) throw e;
    throw new InvalidArgumentError(`invalid layer: ${(e as Error).message}`, { compression: kind }, { cause: e });
  }
}

/** `a.pipe(b).pipe(c)` with errors carried forward to the last stream. */
function pipelineSource(src: Readable, ...rest: Transform[]): Readable {
  let cur: Readable = src;
  for (const t of rest) {
    const prev = cur;
    prev.on('error', (e) => t.destroy(e));
    cur = prev.pipe(t);
  }
  return cur;
}
