import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, isStowageError } from '../errors/index.js';
import { Digester, MediaType, type Descriptor, type Digest } from '../oci/index.js';
import { compressStream, decompressStream } from '../snapshots/index.js';
import type { TrackedContent } from './tracked-content.js';
import { UNCOMPRESSED_LABEL } from './unpack.js';

/** Diff ID of the empty layer docker's builder leaves out: a tar of no entries (1024 zero bytes). */
export const EMPTY_TAR_DIFF_ID: Digest = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

export interface StoredLayer { descriptor: Descriptor; diffId: Digest }

type Kind = 'gzip' | 'zstd' | 'xz' | 'bzip2' | 'none';

function sniff(head: Buffer): Kind {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

/** The stream with its first bytes read off for sniffing, and the whole stream again. */
async function peek(input: Readable, want = 8): Promise<{ head: Buffer; stream: Readable }> {
  const it = input[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let len = 0;
  let done = false;
  while (len < want) {
    const n = await it.next();
    if (n.done) { done = true; break; }
    chunks.push(n.value as Buffer);
    len += (n.value as Buffer).length;
  }
  async function* all(): AsyncGenerator<Buffer> {
    for (const c of chunks) yield c;
    if (done) return;
    for (;;) { const n = await it.next(); if (n.done) return; yield n.value as Buffer; }
  }
  return { head: Buffer.concat(chunks), stream: Readable.from(all(), { objectMode: false }) };
}

/**
 * xz and bzip2 are read the way docker's archive package reads them: through the system's `xz -d -c -q`
 * and `bzip2 -d -c -q` (Node has neither); a tool that is missing or fails is an InvalidArgument.
 */
function externalDecompress(kind: 'xz' | 'bzip2', input: Readable): Readable {
  const child = spawn(kind, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const fail = (e: Error) => out.destroy(new InvalidArgumentError(`${kind} decompression failed: ${e.message}${stderr ? `: ${stderr.trim()}` : ''}`, { compression: kind }, { cause: e }));
  child.on('error', fail);
  input.on('error', (e) => { child.kill(); out.destroy(e); });
  input.pipe(child.stdin).on('error', () => undefined);
  child.stdout.pipe(out, { end: false });
  child.on('close', (code) => {
    if (code === 0) out.end();
    else fail(new Error(`exit status ${code}`));
  });
  out.on('close', () => { if (child.exitCode === null) child.kill(); });
  return out;
}

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
      await writer.commit(size, digest, { labels: { [UNCOMPRESSED_LABEL]: diffId } });
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
