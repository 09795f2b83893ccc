/**
 * A build context sent as a tar (POST /build's body, as the docker CLI sends it: plain or compressed)
 * unpacked into a private directory, the way dockerd unpacks it before building. Names stay inside the
 * directory (absolute and `..` paths are refused); modes and times are kept, owners are not (the client
 * sends everything as root, and the builder reads the context as root's).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError } from '../errors/index.js';
import { tarStream } from '../snapshots/index.js';
import { decompressedFile } from './compressed.js';

/**
 * The docker CLI ends a context whose Dockerfile it added from outside without padding the last file
 * to its 512-byte block and without the two zero blocks; Go's tar reader takes that, so this fills them in.
 */
function completeTar(): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) { n += chunk.length; cb(null, chunk); },
    flush(cb) { cb(null, Buffer.alloc((512 - (n % 512)) % 512 + 1024)); },
  });
}

function inside(dir: string, name: string): string {
  const rel = path.posix.normalize(name).replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (rel === '' || rel === '.') return '';
  if (rel.startsWith('/') || rel === '..' || rel.startsWith('../')) {
    throw new InvalidArgumentError(`build context: ${JSON.stringify(name)} points outside the context`, { path: name, reason: 'context-breakout' });
  }
  return rel;
}

/** Unpacks the context archive `input` into `dir` (created empty beforehand by the caller). */
export async function extractContextArchive(input: NodeJS.ReadableStream, dir: string, signal?: AbortSignal): Promise<void> {
  // Spooled to a file first: the compression is told from its first bytes, and bzip2/xz go through their tools.
  const spool = `${dir}.tar`;
  try {
    await pipeline(input, fs.createWriteStream(spool), ...(signal ? [{ signal }] as const : []));
    const ex = tarStream().extract();
    const dirTimes: Array<[string, Date]> = [];
    ex.on('entry', (h, stream, next) => {
      const done = (e?: unknown): void => { if (e) ex.destroy(e as Error); else next(); };
      const skip = (): void => { stream.on('end', () => done()); stream.resume(); };
      try {
        const rel = inside(dir, h.name);
        if (rel === '') { skip(); return; }
        const abs = path.join(dir, rel);
        fs.mkdirSync(path.dirname(abs), { recursive: true });
        const mode = (h.mode ?? 0o644) & 0o7777;
        if (h.type === 'directory') {
          fs.mkdirSync(abs, { recursive: true });
          fs.chmodSync(abs, mode);
          if (h.mtime) dirTimes.push([abs, h.mtime]);
          skip();
        } else if (h.type === 'symlink') {
          fs.rmSync(abs, { force: true, recursive: true });
          fs.symlinkSync(h.linkname ?? '', abs);
          skip();
        } else if (h.type === 'link') {
          fs.rmSync(abs, { force: true, recursive: true });
          fs.linkSync(path.join(dir, inside(dir, h.linkname ?? '')), abs);
          skip();
        } else if (h.type === 'file' || h.type === 'contiguous-file') {
          fs.rmSync(abs, { force: true, recursive: true });
          pipeline(stream, fs.createWriteStream(abs, { mode })).then(() => {
            try {
              fs.chmodSync(abs, mode);
              if (h.mtime) fs.utimesSync(abs, h.mtime, h.mtime);
              done();
            } catch (e) { done(e); }
          }, done);
        } else {
          skip(); // devices and fifos have no place in a build context
        }
      } catch (e) {
        done(e);
      }
    });
    await pipeline(await decompressedFile(spool), completeTar(), ex, ...(signal ? [{ signal }] as const : []));
    for (const [abs, t] of dirTimes.reverse()) fs.utimesSync(abs, t, t);
  } finally {
    fs.rmSync(spool, { force: true });
  }
}
