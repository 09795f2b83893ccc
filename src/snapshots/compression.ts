import { createRequire } from 'node:module';
import { PassThrough, Transform, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { InvalidArgumentError } from '../errors/index.js';

export type Compression = 'gzip' | 'zstd' | 'none';

let zstdModule: typeof import('zstd-napi') | undefined;
/** zstd-napi, loaded at the first zstd stream: ~13 ms that a command without zstd layers does not pay. */
const zstd = (): typeof import('zstd-napi') => (zstdModule ??= createRequire(import.meta.url)('zstd-napi') as typeof import('zstd-napi'));

/**
 * 1 MiB zlib chunks: gunzip ran 1.5-4x faster with 512 KiB ones than with the 16 KiB default (380-426
 * vs 89-293 MB/s, Node 20, 2-core VM), and 1 MiB ones are ~5% faster again. In a pull each chunk is a
 * job on libuv's pool, handed back and forth with the main thread: since unpacks follow their
 * downloads (see LayerTee), pulls of the bench image took 2309 against 2427 ms and 2482 against 2614
 * (medians of 6 and 5), for ~8 MiB more peak RSS (127-143 against 120-138 MiB; every chunk is
 * garbage until the next collection).
 */
const ZLIB_CHUNK = 1 << 20;

/** Classifies a stream by its leading bytes (containerd's rules: gzip 1f8b08, zstd frame or skippable frame). */
export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head.length >= 8) {
    const magic = (head[0]! | (head[1]! << 8) | (head[2]! << 16) | (head[3]! << 24)) >>> 0;
    if ((magic & 0xfffffff0) >>> 0 === 0x184d2a50) return 'zstd';
  }
  return 'none';
}

/** The layer's bytes are not compressed as its media type says. */
export function compressionMismatch(declared: Compression, detected: Compression): InvalidArgumentError {
  return new InvalidArgumentError(`layer media type says ${declared === 'none' ? 'uncompressed' : declared}, but its bytes are ${detected === 'none' ? 'not compressed' : detected}`,
    { reason: 'compression-mismatch', declared, detected });
}

/**
 * Returns a stream of the decompressed bytes of `input`. `declared` is the compression the layer's
 * media type says ('detect' or absent: sniff it); the first bytes are only a cross-check, and a
 * disagreement fails the stream with InvalidArgument (`data.reason` 'compression-mismatch').
 * `detected` resolves once the format is known.
 */
export function decompressStream(input: Readable, declared: Compression | 'detect' = 'detect'): Readable & { detected: Promise<Compression> } {
  const out = new PassThrough({ highWaterMark: ZLIB_CHUNK }) as PassThrough & { detected: Promise<Compression> };
  let resolveDetected!: (c: Compression) => void;
  out.detected = new Promise((r) => { resolveDetected = r; });
  const head: Buffer[] = [];
  let headLen = 0;
  let decided = false;

  const decide = (ended: boolean): void => {
    decided = true;
    const buf = Buffer.concat(head);
    const kind = detectCompression(buf);
    resolveDetected(kind);
    input.removeListener('data', onData);
    input.removeListener('end', onEnd);
    input.removeListener('error', onError);
    if (declared !== 'detect' && kind !== declared) {
      out.destroy(compressionMismatch(declared, kind));
      input.destroy();
      return;
    }
    const decoder: Transform | null =
      kind === 'gzip' ? zlib.createGunzip({ chunkSize: ZLIB_CHUNK })
        : kind === 'zstd' ? new (zstd().DecompressStream)() : null;
    const fail = (e: Error): void => { out.destroy(e); };
    input.on('error', fail);
    if (decoder) {
      decoder.on('error', fail);
      decoder.pipe(out);
      if (ended) { decoder.end(buf); return; }
      decoder.write(buf);
      input.pipe(decoder);
    } else {
      if (ended) { out.end(buf); return; }
      out.write(buf);
      input.pipe(out);
    }
    input.resume();
  };
  const onData = (chunk: Buffer): void => {
    head.push(chunk);
    headLen += chunk.length;
    if (headLen >= 8) { input.pause(); decide(false); }
  };
  const onEnd = (): void => { if (!decided) decide(true); };
  const onError = (e: Error): void => { out.destroy(e); };
  input.on('data', onData);
  input.on('end', onEnd);
  input.on('error', onError);
  out.on('close', () => { if (!input.destroyed && !input.readableEnded) input.destroy(); });
  return out;
}

/** A compressor for writing layers (gzip level 6 default like docker; zstd level 3). */
export function compressStream(kind: Compression, level?: number): Transform {
  if (kind === 'gzip') return zlib.createGzip({ chunkSize: ZLIB_CHUNK, level: level ?? 6 });
  if (kind === 'zstd') return new (zstd().CompressStream)({ compressionLevel: level ?? 3 });
  return new PassThrough({ highWaterMark: ZLIB_CHUNK });
}

/**
 * A decompressor that runs in the calling thread, for a layer read from a file (see LayerFile): no
 * hand-off to libuv's pool per chunk. `push` yields the output as slices of one buffer, each valid until
 * the next is asked for.
 */
export interface SyncDecoder {
  /** Decompresses `input`; `last`: no more input follows (an incomplete stream fails here). */
  push(input: Buffer, last: boolean): Generator<Buffer, void, void>;
  close(): void;
}

interface ZlibHandle {
  writeSync(flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void;
  onerror: (message: string, errno: number) => void;
}

/**
 * Node's zlib has no public synchronous streaming inflate (zlib.gunzipSync wants the whole input), but
 * each zlib stream drives a native handle whose `writeSync` is one synchronous inflate call: the very
 * call the stream makes on the pool, run here instead (the same code decides multi-member gzip, trailing
 * bytes and errors). Node has kept this handle since v10; without it (undefined), callers read the
 * file as a stream.
 */
class SyncGunzip implements SyncDecoder {
  private readonly out = Buffer.allocUnsafe(ZLIB_CHUNK);
  private error: Error | undefined;
  private constructor(private readonly stream: zlib.Gunzip, private readonly handle: ZlibHandle, private readonly state: Uint32Array) {
    handle.onerror = (message, errno) => {
      const codes = (zlib as unknown as { codes: Record<number, string> }).codes;
      this.error = Object.assign(new Error(message), { errno, code: codes[errno] });
    };
  }

  static make(): SyncGunzip | undefined {
    const stream = zlib.createGunzip({ chunkSize: ZLIB_CHUNK });
    const inner = stream as unknown as { _handle?: Partial<ZlibHandle>; _writeState?: unknown };
    const handle = inner._handle;
    if (typeof handle?.writeSync !== 'function' || !(inner._writeState instanceof Uint32Array)) {
      try { stream.close(); } catch { /* it holds nothing we use */ }
      return undefined;
    }
    return new SyncGunzip(stream, handle as ZlibHandle, inner._writeState);
  }

  *push(input: Buffer, last: boolean): Generator<Buffer, void, void> {
    const flush = last ? zlib.constants.Z_FINISH : zlib.constants.Z_NO_FLUSH;
    let off = 0;
    let len = input.length;
    for (;;) {
      this.handle.writeSync(flush, input, off, len, this.out, 0, this.out.length);
      if (this.error) throw this.error;
      const availOut = this.state[0]!;
      const availIn = this.state[1]!;
      off += len - availIn;
      len = availIn;
      if (availOut < this.out.length) yield this.out.subarray(0, this.out.length - availOut);
      // A full output buffer: more may be pending inside zlib.
      if (availOut !== 0) return;
    }
  }

  close(): void { this.stream.close(); }
}

/** zstd-napi's native context is synchronous already (its stream calls it in `_transform`). */
class SyncZstd implements SyncDecoder {
  private readonly dctx: import('zstd-napi/binding.js').DCtx;
  private readonly out = Buffer.allocUnsafe(ZLIB_CHUNK);
  private inFrame = false;

  constructor() {
    const binding = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');
    this.dctx = new binding.DCtx();
  }

  *push(input: Buffer, last: boolean): Generator<Buffer, void, void> {
    let src = input;
    // Each call drains zstd's output, so no input means nothing to do (a call would only ask for a new frame).
    while (src.length > 0) {
      const [ret, produced, consumed] = this.dctx.decompressStream(this.out, src);
      src = src.subarray(consumed);
      if (produced > 0) yield this.out.subarray(0, produced);
      if (src.length === 0 && (produced < this.out.length || ret === 0)) { this.inFrame = ret !== 0; break; }
    }
    if (last && this.inFrame) throw new Error('zstd stream ended in the middle of a compressed frame');
  }

  close(): void { /* freed with the context */ }
}

class SyncPlain implements SyncDecoder {
  *push(input: Buffer): Generator<Buffer, void, void> { if (input.length > 0) yield input; }
  close(): void { /* nothing held */ }
}

/** A synchronous decoder of `kind`; undefined when this Node offers none for it (see SyncGunzip). */
export function syncDecoder(kind: Compression): SyncDecoder | undefined {
  if (kind === 'gzip') return SyncGunzip.make();
  if (kind === 'zstd') return new SyncZstd();
  return new SyncPlain();
}
