// A layer's bytes in a file that this process may still be writing (a download into its ingest): the
// writer publishes how far the file is written, and a reader (an apply, on a worker thread or on this
// one) reads up to there and waits for more. The state lives in a SharedArrayBuffer, so a worker
// thread reads and waits without a message from the thread that downloads: no hand-off per chunk.
import fs from 'node:fs';
import { AbortedError } from '../errors/index.js';

const GROWING = 0;
const COMPLETE = 1;
const FAILED = 2;
const ABORTED = 3;

/** Int32 slots: the state, and a sequence number bumped on every change (the word a reader waits on). */
const STATE = 0;
const SEQ = 1;
/** BigInt64 slots (after the two Int32 ones): bytes written, bytes the reader has consumed. */
const WRITTEN = 1;
const CONSUMED = 2;

/** The reader stopped because the writer said the bytes are no longer the layer's (see fail()). */
export class LayerFileFailedError extends Error {
  constructor() {
    super('the layer file was given up by its writer (a download restarted or failed)');
    this.name = 'LayerFileFailedError';
  }
}

export class LayerFile {
  readonly shared: SharedArrayBuffer;
  private readonly ints: Int32Array;
  private readonly sizes: BigInt64Array;

  /**
   * `fd` is open for reading; its owner closes it after the apply. `shared` attaches to the state
   * of a LayerFile made in another thread.
   */
  constructor(readonly fd: number, shared?: SharedArrayBuffer) {
    this.shared = shared ?? new SharedArrayBuffer(24);
    this.ints = new Int32Array(this.shared, 0, 2);
    this.sizes = new BigInt64Array(this.shared, 0, 3);
  }

  /** A file already complete (a committed blob) of `size` bytes. */
  static complete(fd: number, size: number): LayerFile {
    const f = new LayerFile(fd);
    f.complete(size);
    return f;
  }

  // ---- the writer's side

  /** `size` bytes of the file are written (and readable through `fd`). */
  grow(size: number): void { this.publish(size, GROWING); }

  /** The file is complete at `size` bytes, and verified: the reader may finish. */
  complete(size: number): void { this.publish(size, COMPLETE); }

  /** The bytes are not (or no longer) the layer's: the reader fails with LayerFileFailedError. */
  fail(): void { this.publish(undefined, FAILED); }

  /** The reader fails with AbortedError. */
  abort(): void { this.publish(undefined, ABORTED); }

  /** Bytes of the file the reader has consumed so far. */
  get consumed(): number { return Number(Atomics.load(this.sizes, CONSUMED)); }

  private readonly watchers = new Set<(consumed: number) => void>();

  /**
   * Calls `listener` with the bytes consumed so far each time the writer publishes (in the writer's
   * thread), so the reader's progress is reported in step with the writer's; returns the unsubscribe.
   */
  watch(listener: (consumed: number) => void): () => void {
    this.watchers.add(listener);
    return () => { this.watchers.delete(listener); };
  }

  private publish(size: number | undefined, state: number): void {
    if (Atomics.load(this.ints, STATE) !== GROWING) return;
    if (size !== undefined) Atomics.store(this.sizes, WRITTEN, BigInt(size));
    Atomics.store(this.ints, STATE, state);
    Atomics.add(this.ints, SEQ, 1);
    Atomics.notify(this.ints, SEQ);
    if (this.watchers.size > 0) for (const w of this.watchers) w(this.consumed);
  }

  // ---- the reader's side

  /**
   * Reads what is written at `pos` (up to `buf.length` bytes) into `buf`; 0 at the end of a complete
   * file. Waits for the writer when nothing is written there yet: blocking the thread (`block`, for a
   * worker thread) or through a promise.
   */
  read(buf: Buffer, pos: number, block: boolean): number | Promise<number> {
    for (;;) {
      const seq = Atomics.load(this.ints, SEQ);
      const state = Atomics.load(this.ints, STATE);
      if (state === FAILED) throw new LayerFileFailedError();
      if (state === ABORTED) throw new AbortedError('operation aborted');
      const written = Number(Atomics.load(this.sizes, WRITTEN));
      if (pos < written) {
        const n = fs.readSync(this.fd, buf, 0, Math.min(buf.length, written - pos), pos);
        if (n === 0) throw new Error(`layer file ended at ${pos} of ${written} bytes written`);
        Atomics.store(this.sizes, CONSUMED, BigInt(pos + n));
        return n;
      }
      if (state === COMPLETE) return 0;
      if (!block) {
        const w = Atomics.waitAsync(this.ints, SEQ, seq);
        return w.async ? w.value.then(() => this.read(buf, pos, block)) : this.read(buf, pos, block);
      }
      Atomics.wait(this.ints, SEQ, seq);
    }
  }
}
