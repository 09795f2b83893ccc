/**
 * Compressed archives as docker's builder reads them (ADD's local archives, the build context sent to
 * POST /build): plain tar, gzip, bzip2, xz or zstd, told apart by their first bytes.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { decompressStream } from '../snapshots/index.js';

/** The decompressed bytes of a file: gzip and zstd in process, bzip2 and xz through their tools. */
export async function decompressedFile(file: string): Promise<Readable> {
  const fd = fs.openSync(file, 'r');
  const head = Buffer.alloc(6);
  fs.readSync(fd, head, 0, 6, 0);
  fs.closeSync(fd);
  const tool = head.subarray(0, 3).toString('latin1') === 'BZh' ? 'bzip2'
    : head.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) ? 'xz' : undefined;
  if (!tool) return decompressStream(fs.createReadStream(file));
  const child = spawn(tool, ['-dc', file], { stdio: ['ignore', 'pipe', 'ignore'] });
  return child.stdout;
}

/** A file is an archive when, decompressed, it starts with a valid tar header. */
export async function isArchive(file: string): Promise<boolean> {
  const src = await decompressedFile(file);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of src as AsyncIterable<Buffer>) {
    chunks.push(c);
    n += c.length;
    if (n >= 512) break;
  }
  src.destroy();
  const h = Buffer.concat(chunks).subarray(0, 512);
  if (h.length < 512) return false;
  const magic = h.subarray(257, 262).toString('latin1');
  if (magic !== 'ustar') {
    // Old-style tar: the checksum must add up.
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    const stored = parseInt(h.subarray(148, 156).toString('latin1').replace(/\0.*$/, '').trim(), 8);
    return stored === sum && h[0] !== 0;
  }
  return true;
}

