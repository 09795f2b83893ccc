/**
 * The content hashes docker's classic builder writes into COPY/ADD history (`COPY file:<hex> in /x `)
 * and compares for its cache: per path, sha256 over selected tar header fields (tarsum v1: no mtime)
 * followed by the file's bytes; a directory is `dir:` + sha256 of its paths' sorted hashes joined by
 * commas; several sources are `multi:` + sha256 of their hashes in order.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { InvalidArgumentError } from '../errors/index.js';
import type { SourceEntry } from './source.js';

function typeflag(st: fs.Stats): string {
  if (st.isFile()) return '0';
  if (st.isDirectory()) return '5';
  if (st.isSymbolicLink()) return '2';
  if (st.isCharacterDevice()) return '3';
  if (st.isBlockDevice()) return '4';
  if (st.isFIFO()) return '6';
  return '0';
}

/** The hash of one path (hex), as docker's classic builder computes it for the context or an image. */
export function pathHash(e: SourceEntry): string {
  const { st } = e;
  const isDev = st.isCharacterDevice() || st.isBlockDevice();
  const image = e.origin === 'image';
  const fields: Array<[string, string]> = [
    ['name', st.isDirectory() ? e.rel + '/' : e.rel],
    ['mode', String(image ? (st.mode & ~0o7777) | e.mode : e.mode)],
    ['uid', String(e.uid)],
    ['gid', String(e.gid)],
    ['size', String(st.isFile() ? st.size : 0)],
    ['typeflag', typeflag(st)],
    ['linkname', st.isSymbolicLink() ? fs.readlinkSync(e.abs) : ''],
    ['uname', e.uname],
    ['gname', e.gname],
    ['devmajor', String(isDev ? Math.floor(st.rdev / 256) & 0xfff : 0)],
    ['devminor', String(isDev ? st.rdev & 0xff : 0)],
  ];
  const h = createHash('sha256');
  for (const [k, v] of fields) h.update(k + v);
  if (st.isFile() && st.size > 0) {
    const fd = fs.openSync(e.abs, 'r');
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        h.update(buf.subarray(0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return h.digest('hex');
}

export function joinedHash(prefix: 'dir' | 'multi', parts: readonly string[]): string {
  return `${prefix}:${createHash('sha256').update(parts.join(',')).digest('hex')}`;
}

/** `file:<hex>` for a file (or link), `dir:<hex>` over everything below (and including) a directory. */
export function entryHash(entries: readonly SourceEntry[], hashOf: (e: SourceEntry) => string): string {
  const [first] = entries;
  if (!first) throw new InvalidArgumentError('no source entries to hash');
  if (!first.st.isDirectory()) return `file:${hashOf(first)}`;
  // The tree's own root (`COPY . /x`) is not one of the hashed paths: docker's walk skips ".".
  return joinedHash('dir', entries.filter((e) => e.rel !== '').map(hashOf).sort());
}

/** The hash a COPY/ADD step carries: its one source's, or `multi:` over several. */
export function sourcesHash(hashes: readonly string[]): string {
  return hashes.length === 1 ? hashes[0]! : joinedHash('multi', hashes);
}
