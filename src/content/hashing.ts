import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Digest } from '../oci/index.js';

export type Algorithm = 'sha256' | 'sha512';

/**
 * The running digest of one ingest. Implementations differ in whether their state can be saved
 * (see checkpoint.ts); the writer only sees this.
 */
export interface IngestHasher {
  readonly algorithm: Algorithm;
  /**
   * False when the state came from a saved checkpoint rather than from hashing the bytes themselves:
   * commit then re-verifies with a full hash before trusting a digest it cannot check otherwise.
   */
  readonly verified: boolean;
  update(chunk: Uint8Array): void;
  /** Remembers the current state; the returned function puts it back (undo of a failed write). */
  mark(): () => void;
  digest(): Digest;
  reset(): void;
  /** Tells the hasher how far `data` has been written (lets a background checkpointer follow). */
  progress(offset: number): void;
  /** Saves what is needed for a cheap resume (called on close). */
  save(): Promise<void>;
  /** Drops resources (workers) without saving; the ingest is gone or committed. */
  dispose(): Promise<void>;
  /** Drops any saved state (on truncate). */
  forget(): Promise<void>;
}

/** Node's OpenSSL hash (SHA-NI where available); its state cannot be saved. */
export class NodeHasher implements IngestHasher {
  private hash: Hash;
  readonly verified = true;
  constructor(readonly algorithm: Algorithm) {
    this.hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void { this.hash.update(chunk); }
  mark(): () => void {
    const saved = this.hash.copy();
    return () => { this.hash = saved; };
  }
  digest(): Digest { return `${this.algorithm}:${this.hash.copy().digest('hex')}`; }
  reset(): void { this.hash = createHash(this.algorithm); }
  progress(): void {}
  async save(): Promise<void> {}
  async dispose(): Promise<void> {}
  async forget(): Promise<void> {}
}

/** Feeds bytes [start, end) of a file to `update` (end exclusive). */
export async function hashFileRange(file: string, start: number, end: number, update: (chunk: Uint8Array) => void): Promise<number> {
  if (end <= start) return 0;
  let n = 0;
  const rs = createReadStream(file, { start, end: end - 1, highWaterMark: 1 << 20 });
  for await (const chunk of rs) {
    update(chunk as Buffer);
    n += (chunk as Buffer).length;
  }
  return n;
}
