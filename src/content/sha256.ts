import type { IHasher } from 'hash-wasm';

/**
 * A SHA-256 whose state can be saved and loaded again (Node's crypto cannot export its state), for
 * resumable ingests: hash-wasm's WebAssembly SHA-256. hash-wasm prefixes a saved state with 4 bytes
 * identifying its WebAssembly build, and refuses a state from another build: a state saved by another
 * hash-wasm version is never misread, it fails to load (and the ingest re-hashes its bytes).
 */
export class SavableSha256 {
  private constructor(private readonly hasher: IHasher, private len: number) {}

  /** A fresh hash, or one continuing from `state`; throws when the state cannot be loaded. */
  static async create(state?: SavedSha256): Promise<SavableSha256> {
    // Loaded here, not with this module: importing hash-wasm takes ~30 ms, and most commands never resume an ingest.
    const { createSHA256 } = await import('hash-wasm');
    const hasher = await createSHA256();
    if (state === undefined) return new SavableSha256(hasher.init(), 0);
    hasher.load(Buffer.from(state.state, 'base64'));
    return new SavableSha256(hasher, state.length);
  }

  /** Bytes hashed so far. */
  get length(): number { return this.len; }

  update(data: Uint8Array): this {
    this.hasher.update(data);
    this.len += data.length;
    return this;
  }

  save(): SavedSha256 {
    return { state: Buffer.from(this.hasher.save()).toString('base64'), length: this.len };
  }

  /** Puts back a state this hash saved (undo of a failed write). */
  restore(saved: SavedSha256): void {
    this.hasher.load(Buffer.from(saved.state, 'base64'));
    this.len = saved.length;
  }

  /** Starts over from no bytes. */
  reset(): void {
    this.hasher.init();
    this.len = 0;
  }

  /** Hex digest of the bytes so far; the hash stays usable (digest ends a hash-wasm state, so it is saved first). */
  hex(): string {
    const state = this.hasher.save();
    const hex = this.hasher.digest('hex');
    this.hasher.load(state);
    return hex;
  }
}

/** A saved state: hash-wasm's state bytes (base64) and how many bytes it covers. */
export interface SavedSha256 {
  state: string;
  length: number;
}
