import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, isStowageError, throwIfAborted } from '../errors/index.js';
import { Digester, MediaType, type Descriptor, type Digest } from '../oci/index.js';
import { compressStream, type Compression } from '../snapshots/index.js';
import type { LayerEntry } from './file-tree.js';
import { layerTar } from './tar-layer.js';

/** A built layer: its descriptor, its diff ID, and a way to produce its bytes again. */
export interface LayerBlob {
  descriptor: Descriptor;
  diffId: Digest;
  /** The compressed bytes, kept when small; larger layers are produced again by `open`. */
  bytes?: Buffer;
  /** The compressed bytes as a stream (from memory, or written again from the same entries). */
  open(signal?: AbortSignal): Readable;
}

export type ManifestFormat = 'oci' | 'docker';

/** Compressed layers up to this size stay in memory; above it they are written again when read. */
export const KEEP_IN_MEMORY = 8 << 20;

export function layerMediaType(format: ManifestFormat, compression: Compression): string {
  if (format === 'docker') {
    if (compression === 'zstd') throw new InvalidArgumentError('docker image manifests have no zstd layer type; use format "oci"');
    return compression === 'gzip' ? MediaType.DockerLayerGzip : MediaType.DockerLayer;
  }
  return compression === 'gzip' ? MediaType.OciLayerGzip : compression === 'zstd' ? MediaType.OciLayerZstd : MediaType.OciLayer;
}

function tap(fn: (chunk: Buffer) => void): Transform {
  return new Transform({ transform(chunk: Buffer, _enc, cb) { fn(chunk); cb(null, chunk); } });
}

function compressed(entries: readonly LayerEntry[], compression: Compression, onTar: (c: Buffer) => void, signal?: AbortSignal): Readable {
  const tarStream = layerTar(entries, signal);
  const z = compressStream(compression);
  const t = tap(onTar);
  tarStream.on('error', (e) => z.destroy(e));
  t.on('error', (e) => z.destroy(e));
  return tarStream.pipe(t).pipe(z);
}

/**
 * Writes the layer once to learn its digests (keeping the bytes when small). Gzip from node's zlib and
 * zstd are deterministic for the same input and level, so writing again gives the same bytes.
 */
export async function makeLayerBlob(entries: readonly LayerEntry[], opts: { compression: Compression; format: ManifestFormat; signal?: AbortSignal }): Promise<LayerBlob> {
  const diff = new Digester();
  const digest = new Digester();
  let kept: Buffer[] | undefined = [];
  try {
    await pipeline(compressed(entries, opts.compression, (c) => diff.update(c), opts.signal), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) {
        digest.update(chunk);
        if (kept && digest.size <= KEEP_IN_MEMORY) kept.push(chunk);
        else kept = undefined;
      }
    }, ...(opts.signal ? [{ signal: opts.signal }] : []));
  } catch (e) {
    // However the stream chain reports an abort, the caller sees the one error family.
    if (!isStowageError(e)) throwIfAborted(opts.signal);
    throw e;
  }
  const bytes = kept ? Buffer.concat(kept) : undefined;
  const descriptor: Descriptor = { mediaType: layerMediaType(opts.format, opts.compression), digest: digest.digest(), size: digest.size };
  return {
    descriptor,
    diffId: diff.digest(),
    ...(bytes ? { bytes } : {}),
    open: (signal) => (bytes ? bufferStream(bytes) : compressed(entries, opts.compression, () => undefined, signal)),
  };
}

export function bufferStream(bytes: Buffer): Readable {
  // A fresh PassThrough per reader: one Buffer, no copies.
  const t = new Transform({ transform(c, _e, cb) { cb(null, c); } });
  t.end(bytes);
  return t;
}
