/**
 * A SHA-256 whose state can be saved and restored (Node's crypto cannot export its state).
 *
 * `sha256Kernel` is deliberately self-contained (no outer references): the background checkpointer
 * runs the very same function in a worker thread from its source text (see checkpoint.ts).
 */
export function sha256Kernel() {
  const K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  const W = new Int32Array(64);
  const INIT = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

  /** Runs the compression function over `nblocks` 64-byte blocks of `p` starting at `pos`. */
  function blocks(h: Int32Array, p: Uint8Array, pos: number, nblocks: number): void {
    let h0 = h[0]!, h1 = h[1]!, h2 = h[2]!, h3 = h[3]!, h4 = h[4]!, h5 = h[5]!, h6 = h[6]!, h7 = h[7]!;
    for (let b = 0; b < nblocks; b++, pos += 64) {
      let a = h0, bb = h1, c = h2, d = h3, e = h4, f = h5, g = h6, hh = h7;
      for (let i = 0; i < 64; i++) {
        let w: number;
        if (i < 16) {
          const j = pos + (i << 2);
          w = (p[j]! << 24) | (p[j + 1]! << 16) | (p[j + 2]! << 8) | p[j + 3]!;
        } else {
          const w15 = W[i - 15]!, w2 = W[i - 2]!;
          const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
          const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
          w = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
        }
        W[i] = w;
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const t1 = (hh + S1 + (g ^ (e & (f ^ g))) + K[i]! + w) | 0; // Ch with one op fewer
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const t2 = (S0 + ((a & bb) | (c & (a | bb)))) | 0; // Maj with one op fewer
        hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = bb; bb = a; a = (t1 + t2) | 0;
      }
      h0 = (h0 + a) | 0; h1 = (h1 + bb) | 0; h2 = (h2 + c) | 0; h3 = (h3 + d) | 0;
      h4 = (h4 + e) | 0; h5 = (h5 + f) | 0; h6 = (h6 + g) | 0; h7 = (h7 + hh) | 0;
    }
    h[0] = h0; h[1] = h1; h[2] = h2; h[3] = h3; h[4] = h4; h[5] = h5; h[6] = h6; h[7] = h7;
  }
  return { blocks, init: () => Int32Array.from(INIT) };
}

const kernel = sha256Kernel();

/** The serializable state: 8 words, the bytes past the last full block, and the total length. */
export interface Sha256State {
  h: number[];
  /** base64 of the 0..63 buffered bytes. */
  tail: string;
  length: number;
}

export class ResumableSha256 {
  private h: Int32Array;
  private buf = new Uint8Array(64);
  private bufLen = 0;
  private len = 0;

  constructor(state?: Sha256State) {
    this.h = kernel.init();
    if (state) {
      if (state.h.length !== 8) throw new Error('bad sha256 state');
      this.h = Int32Array.from(state.h);
      const tail = Buffer.from(state.tail, 'base64');
      if (tail.length >= 64 || state.length % 64 !== tail.length) throw new Error('bad sha256 state');
      this.buf.set(tail);
      this.bufLen = tail.length;
      this.len = state.length;
    }
  }

  get length(): number { return this.len; }

  update(data: Uint8Array): this {
    let pos = 0;
    const n = data.length;
    this.len += n;
    if (this.bufLen > 0) {
      const take = Math.min(64 - this.bufLen, n);
      this.buf.set(data.subarray(0, take), this.bufLen);
      this.bufLen += take;
      pos = take;
      if (this.bufLen < 64) return this;
      kernel.blocks(this.h, this.buf, 0, 1);
      this.bufLen = 0;
    }
    const full = (n - pos) >>> 6;
    if (full > 0) {
      kernel.blocks(this.h, data, pos, full);
      pos += full * 64;
    }
    if (pos < n) {
      this.buf.set(data.subarray(pos), 0);
      this.bufLen = n - pos;
    }
    return this;
  }

  save(): Sha256State {
    return { h: Array.from(this.h), tail: Buffer.from(this.buf.subarray(0, this.bufLen)).toString('base64'), length: this.len };
  }

  /** Hex digest of the bytes so far; the hash stays usable. */
  hex(): string {
    const h = Int32Array.from(this.h);
    const bitLen = this.len * 8;
    const padLen = this.bufLen < 56 ? 64 : 128;
    const pad = new Uint8Array(padLen);
    pad.set(this.buf.subarray(0, this.bufLen));
    pad[this.bufLen] = 0x80;
    const dv = new DataView(pad.buffer);
    dv.setUint32(padLen - 8, Math.floor(bitLen / 0x100000000));
    dv.setUint32(padLen - 4, bitLen >>> 0);
    kernel.blocks(h, pad, 0, padLen / 64);
    const out = Buffer.alloc(32);
    for (let i = 0; i < 8; i++) out.writeInt32BE(h[i]!, i * 4);
    return out.toString('hex');
  }
}
