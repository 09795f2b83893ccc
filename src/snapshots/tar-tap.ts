// The second reader of a layer's tar stream, beside tar-stream's extractor: it hashes every byte (the
// diffID), decides where the archive ends, and keeps the raw bytes of xattr records. It re-parses the
// 512-byte headers itself, so it must read them exactly as tar-stream does; test/snapshots/tar-tap.test.ts
// checks each rule and the apply fuzz test compares the two readers on random archives.
import { Transform } from 'node:stream';
import { Digester } from '../oci/index.js';

/** tar-stream's limit for PAX and GNU long-name data. */
const MAX_PAX_SIZE = 4 * 1024 * 1024;
/**
 * Hashes the uncompressed tar and forwards it to the extractor only up to the end-of-archive marker
 * (two zero blocks): bytes after it are still read and hashed (containerd reads to EOF so the diffID
 * covers them) but never parsed, so trailing padding or garbage does not fail the apply.
 * It walks the 512-byte block structure exactly as tar-stream reads it (numbers, old-style directory
 * names with a ustar prefix, PAX records by length with the last one winning, global records only
 * through a local PAX header, PAX applying to the next real entry): any disagreement would let a
 * crafted archive hide entries from the extractor behind what looks like the end marker.
 */
export class TarTap extends Transform {
  readonly digester = new Digester('sha256');
  private pending = Buffer.alloc(0);
  /** Bytes of entry data still to pass before the next header. */
  private skip = 0;
  private zeros = 0;
  private ended = false;
  /** Records of the last global PAX header (tar-stream merges them into each local one). */
  private global = new Map<string, Buffer>();
  /** Records of a local PAX header waiting for its entry (global ones merged in). */
  private pax: Map<string, Buffer> | undefined;
  /**
   * Raw `SCHILY.xattr.*` values per entry, in the order the extractor emits entries: tar-stream decodes
   * PAX values as UTF-8, which mangles binary values such as security.capability.
   */
  private readonly entryXattrs: (Map<string, Buffer> | undefined)[] = [];

  /** The raw xattr records of the next entry the extractor emits. */
  takeEntryXattrs(): Map<string, Buffer> | undefined { return this.entryXattrs.shift(); }
  private capture: { kind: 'x' | 'g'; chunks: Buffer[]; left: number } | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.digester.update(chunk);
    if (this.ended) { cb(); return; }
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let pos = 0;
    try {
      while (!this.ended) {
        if (this.skip > 0) {
          const n = Math.min(this.skip, buf.length - pos);
          const cap = this.capture;
          if (cap) { const k = Math.min(n, cap.left); cap.chunks.push(buf.subarray(pos, pos + k)); cap.left -= k; }
          pos += n; this.skip -= n;
          if (this.skip > 0) break;
          if (cap) this.endCapture(cap);
          continue;
        }
        if (buf.length - pos < 512) break;
        const block = buf.subarray(pos, pos + 512);
        pos += 512;
        if (isZeroBlock(block)) {
          if (++this.zeros === 2) this.ended = true;
          continue;
        }
        this.zeros = 0;
        if (isNullHeader(block)) continue; // tar-stream skips it (no entry, no data)
        const flag = block[156]!;
        let size = parseTarNumber(block.subarray(124, 136));
        if (flag === 0x78 /* x */ || flag === 0x67 /* g */) {
          // tar-stream refuses bigger ones; never buffer more than it would.
          if (size > MAX_PAX_SIZE) throw new Error('tar header exceeds max size');
          this.capture = { kind: flag === 0x78 ? 'x' : 'g', chunks: [], left: size };
        } else if (flag === 0x4c /* L */ || flag === 0x4b /* K */ || flag === 0x4e /* N */) {
          // GNU long names: data only, PAX records wait for the real entry.
        } else {
          let xattrs: Map<string, Buffer> | undefined;
          if (this.pax) {
            const paxSize = this.pax.get('size')?.toString();
            if (paxSize) size = parseInt(paxSize, 10);
            for (const [k, v] of this.pax) if (k.startsWith('SCHILY.xattr.')) (xattrs ??= new Map()).set(k.slice('SCHILY.xattr.'.length), v);
            this.pax = undefined;
          }
          this.entryXattrs.push(xattrs);
          // Mirror tar-stream: a directory carries no data, whatever its size field says. An old-style
          // `0` entry named `x/` is a file with its data to tar-stream (3.2.2 fixes up the type flag
          // only after naming the type), as to Go's archive/tar and GNU tar: never skip that data.
          if (flag === 0x35 /* 5 */) size = 0;
        }
        this.skip = Math.ceil(size / 512) * 512;
        if (this.skip === 0 && this.capture) this.endCapture(this.capture);
      }
    } catch (e) { cb(e as Error); return; }
    this.push(pos === buf.length ? buf : buf.subarray(0, pos));
    buf = buf.subarray(pos);
    this.pending = this.ended ? Buffer.alloc(0) : Buffer.from(buf);
    cb();
  }

  private endCapture(cap: { kind: 'x' | 'g'; chunks: Buffer[] }): void {
    this.capture = undefined;
    const records = decodePax(Buffer.concat(cap.chunks));
    if (cap.kind === 'g') this.global = records;
    else this.pax = new Map([...this.global, ...records]);
  }

  override _flush(cb: () => void): void {
    if (!this.ended && this.pending.length) this.push(this.pending);
    cb();
  }
}

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < 512; i++) if (b[i] !== 0) return false;
  return true;
}

/** tar-stream's null header: every byte but the checksum field is zero. */
function isNullHeader(b: Buffer): boolean {
  for (let i = 0; i < 512; i++) if (b[i] !== 0 && (i < 148 || i >= 156)) return false;
  return true;
}

/** tar-stream's decodeOct: base-256, or octal after leading spaces and NULs, up to the next space. */
function parseTarNumber(f: Buffer): number {
  if (f[0]! & 0x80) {
    let v = 0;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    return v;
  }
  let i = 0;
  while (i < f.length && f[i] === 0x20) i++;
  let end = f.indexOf(0x20, i);
  if (end < 0) end = f.length;
  while (i < end && f[i] === 0) i++;
  return i === end ? 0 : parseInt(f.subarray(i, end).toString('latin1'), 8);
}

/** tar-stream's decodePax (records by their length prefix; a later record wins), keeping values as bytes. */
function decodePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  while (buf.length) {
    let i = 0;
    while (i < buf.length && buf[i] !== 0x20) i++;
    const len = parseInt(buf.subarray(0, i).toString(), 10);
    if (!len) return out;
    const rec = buf.subarray(i + 1, len - 1);
    const k = rec.indexOf(0x3d /* = */);
    if (k === -1) return out;
    out.set(rec.subarray(0, k).toString(), Buffer.from(rec.subarray(k + 1)));
    buf = buf.subarray(len);
  }
  return out;
}
