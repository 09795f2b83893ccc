// Places regular files (copy or hard link, then owner, mode and times) on worker threads, so a
// checkout's copies run on every core while the main thread walks the layers and makes directories.
// Each lane is one thread working through its files in order: a hard link to an earlier copy goes to
// the lane of that copy. The threads run a few lines of plain JavaScript given as source, so they start
// in milliseconds and need no file of their own beside the bundle.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { fromSystemError } from '../errors/index.js';

/** One regular file to place. */
export interface PlaceFile {
  /** The file to copy, or (link) the earlier copy to link to. */
  src: string;
  dst: string;
  link?: boolean;
  /**
   * A file of at most SMALL_FILE bytes (by its lstat) is read and written through a buffer, created with
   * this mode (less the umask); bigger ones are copied by the kernel (copyFileSync: the source's mode).
   */
  mode?: number;
  /** lchown to [uid, gid]. */
  chown?: [number, number];
  /** chmod to this mode (after the chown, which clears setuid and setgid). */
  chmod?: number;
  /** Times in seconds since the epoch (not for links: they share the copy's inode). */
  atime?: number;
  mtime?: number;
}

const BATCH = 128;

/**
 * Files up to this size are copied through a buffer: open, read, close, open with O_EXCL and the mode,
 * write, futimens, close. libuv's copyfile also runs fstat and fchmod per file, and the times then go
 * by path; most files of an image are this small.
 */
export const SMALL_FILE = 64 << 10;

const LANE_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
const buf = Buffer.allocUnsafe(${SMALL_FILE} + 1);
/** Copies a small file through buf, or returns false (it has grown past the buffer since its lstat). */
function copySmall(f) {
  const from = fs.openSync(f.src, 'r');
  let n = 0;
  try {
    for (let r; n < buf.length && (r = fs.readSync(from, buf, n, buf.length - n, n)) > 0;) n += r;
  } finally { fs.closeSync(from); }
  if (n === buf.length) return false;
  const to = fs.openSync(f.dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, f.mode);
  try {
    for (let w = 0; w < n;) w += fs.writeSync(to, buf, w, n - w);
    if (f.chown) fs.fchownSync(to, f.chown[0], f.chown[1]);
    if (f.chmod !== undefined) fs.fchmodSync(to, f.chmod);
    if (f.mtime !== undefined) fs.futimesSync(to, f.atime, f.mtime);
  } finally { fs.closeSync(to); }
  return true;
}
parentPort.on('message', (batch) => {
  let i = 0;
  try {
    for (; i < batch.length; i++) {
      const f = batch[i];
      if (f.mode !== undefined && copySmall(f)) continue;
      // EXCL: besides never writing over (or through) something already there, it spares the file
      // libuv's ftruncate(0), after which ext4 writes the file out at its close (auto_da_alloc).
      if (f.link) fs.linkSync(f.src, f.dst); else fs.copyFileSync(f.src, f.dst, fs.constants.COPYFILE_EXCL);
      if (f.chown) fs.lchownSync(f.dst, f.chown[0], f.chown[1]);
      if (f.chmod !== undefined || f.mode !== undefined) fs.chmodSync(f.dst, f.chmod ?? f.mode);
      if (f.mtime !== undefined) fs.lutimesSync(f.dst, f.atime, f.mtime);
    }
    parentPort.postMessage({ done: i });
  } catch (e) {
    parentPort.postMessage({ done: i, error: { message: e.message, code: e.code, syscall: e.syscall, path: batch[i].dst } });
  }
});
`;

interface LaneError { message: string; code?: string; syscall?: string; path: string }

class Lane {
  private readonly worker = new Worker(LANE_SOURCE, { eval: true, stdout: false, stderr: false });
  private batch: PlaceFile[] = [];
  private sent = 0;
  private done = 0;
  private error: Error | undefined;
  private idle: (() => void) | undefined;

  constructor() {
    this.worker.on('message', (m: { done: number; error?: LaneError }) => {
      this.done += m.done;
      if (m.error) {
        this.error ??= fromSystemError(Object.assign(new Error(m.error.message), { code: m.error.code, syscall: m.error.syscall, path: m.error.path }), `place ${m.error.path}`);
        this.done = this.sent; // the rest of that batch is not coming
      }
      if (this.done >= this.sent) this.idle?.();
    });
    this.worker.on('error', (e) => { this.error ??= e; this.done = this.sent; this.idle?.(); });
  }

  add(f: PlaceFile): void {
    this.batch.push(f);
    if (this.batch.length >= BATCH) this.flush();
  }

  flush(): void {
    if (this.batch.length === 0) return;
    this.sent += this.batch.length;
    this.worker.postMessage(this.batch);
    this.batch = [];
  }

  /** Resolves once every file sent is placed; rejects with the first failure. */
  async drained(): Promise<void> {
    this.flush();
    while (this.done < this.sent) await new Promise<void>((r) => { this.idle = r; });
    if (this.error) throw this.error;
  }

  stop(): Promise<number> { return this.worker.terminate(); }
}

/** Files per lane before another lane starts: a small tree does not pay for threads it cannot use. */
const FILES_PER_NEW_LANE = 64;

export class CopyPool {
  private readonly lanes: Lane[] = [];
  private count = 0;
  private lastDir = '';
  private dirLane = 0;

  /** `maxLanes` threads at most, started as the files come. */
  constructor(private readonly maxLanes: number) {}

  /**
   * Queues `f` on `lane`, or on the lane of its directory (threads creating files in one directory
   * contend for its lock); returns the lane used.
   */
  add(f: PlaceFile, lane?: number): number {
    const active = Math.min(Math.max(1, this.maxLanes), 1 + Math.floor(this.count / FILES_PER_NEW_LANE));
    const dir = path.dirname(f.dst);
    if (dir !== this.lastDir) { this.lastDir = dir; this.dirLane = (this.dirLane + 1) % active; }
    const l = lane ?? this.dirLane;
    this.count++;
    (this.lanes[l] ??= new Lane()).add(f);
    return l;
  }

  /** Waits for every queued file; the threads are stopped either way. */
  async finish(): Promise<void> {
    const lanes = this.lanes.filter((l) => l !== undefined);
    try {
      const results = await Promise.allSettled(lanes.map((l) => l.drained()));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    } finally {
      await Promise.all(lanes.map((l) => l.stop()));
    }
  }
}
