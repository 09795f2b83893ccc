import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { compress } from 'zstd-napi';
import { loadOverrides } from '../../src/snapshots/index.js';

export interface TEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo' | 'character-device' | 'block-device';
  body?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  mtime?: Date;
  pax?: Record<string, string>;
  devmajor?: number;
  devminor?: number;
}

export const file = (name: string, body: string | Buffer = '', mode = 0o644, extra: Partial<TEntry> = {}): TEntry => ({ name, type: 'file', body, mode, ...extra });
export const dir = (name: string, mode = 0o755, extra: Partial<TEntry> = {}): TEntry => ({ name, type: 'directory', mode, ...extra });
export const symlink = (linkname: string, name: string): TEntry => ({ name, type: 'symlink', linkname, mode: 0o777 });
export const hardlink = (linkname: string, name: string): TEntry => ({ name, type: 'link', linkname, mode: 0o644 });
export const whiteout = (name: string): TEntry => file(name, '');

const T0 = new Date('2024-01-02T03:04:05Z');

/** Builds a small tar in memory (test fixtures only). */
export async function buildTar(entries: TEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => { chunks.push(c as Buffer); });
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
    const h: Record<string, unknown> = {
      name: e.name, type: e.type ?? 'file', mode: e.mode ?? 0o644, uid: e.uid ?? 0, gid: e.gid ?? 0,
      mtime: e.mtime ?? T0, size: (e.type ?? 'file') === 'file' ? body.length : 0,
    };
    if (e.linkname !== undefined) h.linkname = e.linkname;
    if (e.pax) h.pax = e.pax;
    if (e.devmajor !== undefined) { h.devmajor = e.devmajor; h.devminor = e.devminor ?? 0; }
    await new Promise<void>((resolve, reject) => pack.entry(h as unknown as tar.Header, (h.type === 'file' ? body : undefined) as Buffer, (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export const BLOCK = 512;
/** The end-of-archive marker: two zero blocks. */
export const END = Buffer.alloc(2 * BLOCK);

/**
 * One hand-made 512-byte ustar header, for archives tar-stream's packer would not write; `size` is
 * written as octal unless given as the raw field bytes.
 */
export function rawHeader(h: { name: string; type?: string; size?: number | Buffer; prefix?: string }): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(h.name, 0, 100, 'latin1');
  b.write('0000644\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  if (Buffer.isBuffer(h.size)) h.size.copy(b, 124);
  else b.write((h.size ?? 0).toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  b.write('00000000000\0', 136, 'latin1');
  b.write(h.type ?? '0', 156, 'latin1');
  b.write('ustar\x0000', 257, 'latin1');
  if (h.prefix) b.write(h.prefix, 345, 155, 'latin1');
  return sealHeader(b);
}

/** Writes the checksum of the header block at `at` (after its fields were changed), so readers accept it. */
export function sealHeader(archive: Buffer, at = 0): Buffer {
  const b = archive.subarray(at, at + BLOCK);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return archive;
}

/** Entry data padded to whole blocks. */
export const blockData = (d: Buffer | string): Buffer => {
  const b = Buffer.from(d);
  return Buffer.concat([b, Buffer.alloc((BLOCK - (b.length % BLOCK)) % BLOCK)]);
};

/** PAX records (`<len> key=value\n`), values as raw bytes. */
export function paxRecords(records: [string, Buffer | string][]): Buffer {
  return Buffer.concat(records.map(([k, v]) => {
    const body = Buffer.concat([Buffer.from(` ${k}=`), Buffer.from(v), Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    return Buffer.concat([Buffer.from(String(len)), body]);
  }));
}

export function compressBuf(b: Buffer, kind: 'gzip' | 'zstd' | 'none'): Buffer {
  return kind === 'gzip' ? zlib.gzipSync(b) : kind === 'zstd' ? compress(b) : b;
}

export const streamOf = (b: Buffer): Readable => Readable.from([b]);

export function tmpdir(prefix = 'stowage-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

export interface Node { type: string; mode: number; uid: number; gid: number; size?: number; sha?: string; link?: string; rdev?: number; mtime?: number }

/**
 * A comparable description of a tree: types, permission bits, owners (overrides applied), sizes,
 * content hashes, link targets and (optionally) mtimes in whole seconds; hard-link groups as `=`.
 */
export async function describeTree(root: string, opts: { mtimes?: boolean; owners?: boolean; dirMtimes?: boolean } = {}): Promise<Record<string, Node>> {
  const ov = await loadOverrides(root);
  const out: Record<string, Node> = {};
  const walk = (rel: string): void => {
    for (const n of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const o = ov.get(r);
      const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'other';
      const node: Node = { type, mode: o ? o.mode : st.mode & 0o7777, uid: opts.owners === false ? 0 : o ? o.uid : st.uid, gid: opts.owners === false ? 0 : o ? o.gid : st.gid };
      if (type === 'symlink') { node.link = fs.readlinkSync(p); node.mode = 0; }
      if (type === 'file') { node.size = st.size; node.sha = sha256(fs.readFileSync(p)); }
      if (type === 'char' || type === 'block') node.rdev = st.rdev;
      if (opts.mtimes && (type !== 'dir' || opts.dirMtimes)) node.mtime = Math.floor(st.mtimeMs / 1000);
      out[r] = node;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

/** Hard-link groups of a tree: sorted lists of paths sharing an inode. */
export function linkGroups(root: string): string[][] {
  const byIno = new Map<string, string[]>();
  const walk = (rel: string): void => {
    for (const n of fs.readdirSync(path.join(root, rel))) {
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(path.join(root, r));
      if (st.isFile() && st.nlink > 1) byIno.set(`${st.ino}`, [...(byIno.get(`${st.ino}`) ?? []), r]);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return [...byIno.values()].filter((g) => g.length > 1).map((g) => g.sort()).sort((a, b) => a[0]!.localeCompare(b[0]!));
}

export const isRoot = process.geteuid?.() === 0;

/** The security.capability xattr of `p`, as hex (getfattr: Node has no xattr API). */
export const capabilityHex = (p: string): string => execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', 'security.capability', p]).toString('hex');
