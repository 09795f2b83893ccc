import { spawn } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { InvalidArgumentError } from '../errors/index.js';
import { decompressStream, detectCompression } from '../snapshots/index.js';

/**
 * Tarballs given by users (import, load) come in any of docker's compressions: gzip and zstd are
 * decompressed in process (the snapshots floor's streams), xz and bzip2 through the system tools.
 */
export type Kind = 'gzip' | 'zstd' | 'xz' | 'bzip2' | 'none';

export function sniff(head: Buffer): Kind {
  const c = detectCompression(head);
  if (c !== 'none') return c;
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

/** The stream with its first bytes read off for sniffing, and the whole stream again. */
export async function peek(input: Readable, want = 8): Promise<{ head: Buffer; stream: Readable }> {
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
export function externalDecompress(kind: 'xz' | 'bzip2', input: Readable): Readable {
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

/** The uncompressed bytes of `input`, whatever docker-supported compression it is in (sniffed). */
export async function decompressAny(input: Readable): Promise<{ kind: Kind; stream: Readable }> {
  const { head, stream } = await peek(input);
  const kind = sniff(head);
  if (kind === 'xz' || kind === 'bzip2') return { kind, stream: externalDecompress(kind, stream) };
  return { kind, stream: kind === 'none' ? stream : decompressStream(stream) };
}
