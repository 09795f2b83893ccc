// The reader of a layer's tar stream in apply: one pass over the uncompressed bytes that hashes every
// one of them (the diffID), finds the entries and hands each entry's data to the applier as slices of
// the chunks it was given, with no copy, no stream per entry and no promise unless the applier asks to
// wait. One reader decides both what is applied and where the archive ends, so no crafted archive can
// make two readers disagree.
//
// Its reading follows tar-stream 3.2.2 (what this project applied layers with before, and what its
// tests pin): ustar and GNU headers with checksums, octal or base-256 numbers, ustar name prefixes,
// GNU long names and link names, PAX records (a later record wins; `path`, `linkpath` and `size`
// override the header; global records apply only through a local PAX header), and no data for a
// directory whatever its size field says. Where tar-stream would read on, it ends: two zero blocks end
// the archive (the rest is hashed, never parsed: containerd's diffID covers trailing bytes too).
import { InvalidArgumentError } from '../errors/index.js';
import { Digester } from '../oci/index.js';

export type TarEntryType = 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo' | 'contiguous-file';

export interface TarEntry {
  name: string;
  /** null: a type flag this reader does not know (GNU sparse, volume labels...); its data is still passed. */
  type: TarEntryType | null;
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow (0 for a directory). */
  size: number;
  mtime: Date;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** The entry's PAX records (global ones merged in), values as the raw bytes: xattr values may be binary. */
  pax: Map<string, Buffer> | undefined;
}

/** Where the reader puts what it reads. A returned promise makes the reader wait for it. */
export interface TarSink {
  entry(h: TarEntry): void | Promise<void>;
  /** A slice of the current entry's data, valid only during the call. */
  data(chunk: Buffer): void;
  /** The current entry's data is complete. */
  endEntry(): void;
}

const BLOCK = 512;
/** tar-stream's limit for PAX and GNU long-name data. */
const MAX_LONG_HEADER = 4 * 1024 * 1024;

const TYPES: Record<number, TarEntryType | 'pax' | 'pax-global' | 'long-name' | 'long-link'> = {
  0: 'file', 1: 'link', 2: 'symlink', 3: 'character-device', 4: 'block-device', 5: 'directory', 6: 'fifo', 7: 'contiguous-file',
  72: 'pax', 55: 'pax-global', 27: 'long-link', 28: 'long-name', 30: 'long-name',
};

function invalid(what: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid tar header: ${what}`, { reason: 'invalid-archive' });
}

export class TarReader {
  readonly digester = new Digester('sha256');
  /** Bytes of a header cut by a chunk boundary. */
  private head = Buffer.alloc(BLOCK);
  private headLen = 0;
  /** Data bytes of the current entry still to come, then padding to skip. */
  private dataLeft = 0;
  private padLeft = 0;
  private inEntry = false;
  /** A long header (PAX or GNU) being collected. */
  private long: { kind: 'pax' | 'pax-global' | 'long-name' | 'long-link'; chunks: Buffer[]; left: number } | undefined;
  private zeros = 0;
  private ended = false;
  private global: Map<string, Buffer> | undefined;
  private pax: Map<string, Buffer> | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;

  constructor(private readonly sink: TarSink) {}

  /**
   * Reads one chunk; returns a promise only when the sink asked to wait (call again once it settles).
   * The chunk's buffer may be reused once the call (or that promise) is done.
   */
  write(chunk: Buffer): Promise<void> | undefined {
    this.digester.update(chunk);
    return this.ended ? undefined : this.read(chunk, 0);
  }

  /** The input ended: fails when it ended inside an entry or a header. */
  end(): void {
    if (this.ended) return;
    if (this.headLen > 0 || this.dataLeft > 0 || this.padLeft > 0 || this.long) {
      throw new InvalidArgumentError('invalid layer archive: unexpected end of data', { reason: 'invalid-archive' });
    }
  }

  private read(buf: Buffer, pos: number): Promise<void> | undefined {
    while (pos < buf.length && !this.ended) {
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, buf.length - pos);
        const slice = buf.subarray(pos, pos + n);
        pos += n;
        this.dataLeft -= n;
        if (this.long) {
          // Kept past this call: the caller may reuse the chunk's buffer.
          this.long.chunks.push(Buffer.from(slice));
          if (this.dataLeft === 0) this.endLong();
        } else {
          this.sink.data(slice);
          if (this.dataLeft === 0) this.finishEntry();
        }
        continue;
      }
      if (this.padLeft > 0) {
        const n = Math.min(this.padLeft, buf.length - pos);
        pos += n;
        this.padLeft -= n;
        continue;
      }
      // A header: whole in this chunk, or completed from the bytes kept from the last one.
      let block: Buffer;
      if (this.headLen === 0 && buf.length - pos >= BLOCK) {
        block = buf.subarray(pos, pos + BLOCK);
        pos += BLOCK;
      } else {
        const n = Math.min(BLOCK - this.headLen, buf.length - pos);
        buf.copy(this.head, this.headLen, pos, pos + n);
        this.headLen += n;
        pos += n;
        if (this.headLen < BLOCK) break;
        this.headLen = 0;
        block = this.head;
      }
      const waiting = this.header(block);
      if (waiting) return waiting.then(() => this.read(buf, pos));
    }
    return undefined;
  }

  /** One 512-byte header block. */
  private header(b: Buffer): Promise<void> | undefined {
    let sum = 8 * 0x20;
    for (let i = 0; i < 148; i++) sum += b[i]!;
    for (let i = 156; i < BLOCK; i++) sum += b[i]!;
    if (sum === 8 * 0x20) {
      // Nothing but (perhaps) a checksum: skipped; two zero blocks in a row end the archive.
      let zero = true;
      for (let i = 148; i < 156; i++) if (b[i] !== 0) { zero = false; break; }
      if (zero && ++this.zeros === 2) this.ended = true;
      else if (!zero) this.zeros = 0;
      return undefined;
    }
    this.zeros = 0;
    if (sum !== number(b, 148, 8, 'checksum')) throw invalid('checksum mismatch (a corrupt archive, or one still compressed)');
    let name = text(b, 0, 100);
    if (isMagic(b, USTAR)) {
      if (b[345] !== 0) name = `${text(b, 345, 155)}/${name}`;
    } else if (!(isMagic(b, GNU) && b[263] === 0x20 && b[264] === 0)) {
      throw invalid('unknown format');
    }
    const flag = b[156] === 0 ? 0 : b[156]! - 0x30;
    const kind = TYPES[flag];
    let size = number(b, 124, 12, 'size');
    if (kind === 'pax' || kind === 'pax-global' || kind === 'long-name' || kind === 'long-link') {
      if (size > MAX_LONG_HEADER) throw invalid('tar header exceeds max size');
      this.long = { kind, chunks: [], left: size };
      this.startData(size);
      if (size === 0) this.endLong();
      return undefined;
    }
    let linkname = b[157] === 0 ? '' : text(b, 157, 100);
    if (this.longName !== undefined) { name = this.longName; this.longName = undefined; }
    if (this.longLink !== undefined) { linkname = this.longLink; this.longLink = undefined; }
    const pax = this.pax;
    this.pax = undefined;
    if (pax) {
      const p = pax.get('path');
      if (p?.length) name = p.toString('utf8');
      const l = pax.get('linkpath');
      if (l?.length) linkname = l.toString('utf8');
      const s = pax.get('size');
      if (s?.length) size = parseInt(s.toString('latin1'), 10);
    }
    if (!(Number.isSafeInteger(size) && size >= 0)) throw invalid(`bad size for ${JSON.stringify(name)}`);
    // tar-stream reads no data for a directory: the next block is the next header.
    if (kind === 'directory') size = 0;
    const entry: TarEntry = {
      name, type: kind ?? null, size, linkname, pax,
      mode: number(b, 100, 8, 'mode'), uid: number(b, 108, 8, 'uid'), gid: number(b, 116, 8, 'gid'),
      mtime: new Date(1000 * number(b, 136, 12, 'mtime')),
      devmajor: number(b, 329, 8, 'devmajor'), devminor: number(b, 337, 8, 'devminor'),
    };
    this.inEntry = true;
    this.startData(size);
    const waiting = this.sink.entry(entry);
    if (size === 0) {
      if (waiting) return waiting.then(() => this.finishEntry());
      this.finishEntry();
    }
    return waiting ?? undefined;
  }

  private startData(size: number): void {
    this.dataLeft = size;
    this.padLeft = (BLOCK - (size % BLOCK)) % BLOCK;
  }

  private finishEntry(): void {
    if (!this.inEntry) return;
    this.inEntry = false;
    this.sink.endEntry();
  }

  private endLong(): void {
    const { kind, chunks } = this.long!;
    this.long = undefined;
    const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    if (kind === 'long-name') this.longName = text(data, 0, data.length);
    else if (kind === 'long-link') this.longLink = text(data, 0, data.length);
    else if (kind === 'pax-global') this.global = paxRecords(data);
    else this.pax = this.global ? new Map([...this.global, ...paxRecords(data)]) : paxRecords(data);
  }
}

const USTAR = Buffer.from('ustar\0', 'latin1');
const GNU = Buffer.from('ustar ', 'latin1');

function isMagic(b: Buffer, magic: Buffer): boolean {
  for (let i = 0; i < 6; i++) if (b[257 + i] !== magic[i]) return false;
  return true;
}

/** A NUL-terminated UTF-8 field. */
function text(b: Buffer, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return b.toString('utf8', off, end);
}

/**
 * A numeric field: base-256 (first byte 0x80, or 0xff for a negative value), or octal after leading
 * spaces and NULs, up to the next space or the first other non-digit (a terminating NUL).
 */
function number(b: Buffer, off: number, len: number, what: string): number {
  const first = b[off]!;
  if (first & 0x80) {
    if (first !== 0x80 && first !== 0xff) throw invalid(`bad ${what} field`);
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + (first === 0x80 ? b[i]! : 0xff - b[i]!);
    return first === 0x80 ? v : -v;
  }
  let i = off;
  const end0 = off + len;
  while (i < end0 && b[i] === 0x20) i++;
  let end = i;
  while (end < end0 && b[end] !== 0x20) end++;
  while (i < end && b[i] === 0) i++;
  if (i === end) return 0;
  let v = 0;
  let digits = 0;
  for (; i < end; i++, digits++) {
    const d = b[i]! - 0x30;
    if (d < 0 || d > 7) break;
    v = v * 8 + d;
  }
  if (digits === 0) throw invalid(`bad ${what} field`);
  return v;
}

/** PAX records by their length prefix, a later record winning; values kept as bytes. */
function paxRecords(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  while (buf.length) {
    let i = 0;
    while (i < buf.length && buf[i] !== 0x20) i++;
    const len = parseInt(buf.toString('latin1', 0, i), 10);
    if (!len) return out;
    const rec = buf.subarray(i + 1, len - 1);
    const k = rec.indexOf(0x3d /* = */);
    if (k === -1) return out;
    out.set(rec.toString('utf8', 0, k), Buffer.from(rec.subarray(k + 1)));
    buf = buf.subarray(len);
  }
  return out;
}
