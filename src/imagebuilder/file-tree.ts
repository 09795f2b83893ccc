import { InvalidArgumentError } from '../errors/index.js';

/**
 * The file trees of built layers, written as object literals keyed by absolute path:
 *
 * ```ts
 * {
 *   '/etc/hello': 'hi\n',                                        // a file, mode 0644, root:root
 *   '/bin/tool': { mode: 0o755, content: bytes },                // a file with its mode
 *   '/srv': { type: 'dir', mode: 0o750, uid: 1000, gid: 1000 },  // a directory with its owner
 *   '/bin/sh': { type: 'symlink', target: 'busybox' },
 *   '/bin/ls': { type: 'hardlink', target: '/bin/busybox' },     // same inode as /bin/busybox
 *   '/etc/old.conf': { type: 'delete' },                         // a whiteout: deletes a lower layer's file
 *   '/var/cache': { type: 'dir', opaque: true },                 // hides everything lower layers put there
 * }
 * ```
 */
export type FileTree = Record<string, FileSpec>;

/** Owner, permission bits and modification time; defaults root:root, 0644 (files) / 0755 (directories), the epoch. */
export interface EntryMeta {
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
}

export interface FileEntrySpec extends EntryMeta { type?: 'file'; content: string | Uint8Array }
export interface DirectorySpec extends EntryMeta { type: 'dir'; /** Hide what lower layers have in this directory. */ opaque?: boolean }
export interface SymlinkSpec extends Omit<EntryMeta, 'mode'> { type: 'symlink'; target: string }
export interface HardlinkSpec { type: 'hardlink'; /** Absolute path of the file this is another name of. */ target: string }
export interface DeleteSpec { type: 'delete' }

export type FileSpec = string | Uint8Array | FileEntrySpec | DirectorySpec | SymlinkSpec | HardlinkSpec | DeleteSpec;

/** One tar entry of a layer, paths relative to the root (`etc/hello`), in the order they are written. */
export type LayerEntry =
  | { kind: 'file'; path: string; mode: number; uid: number; gid: number; mtime: Date; body: FileBody }
  | { kind: 'dir'; path: string; mode: number; uid: number; gid: number; mtime: Date }
  | { kind: 'symlink'; path: string; target: string; uid: number; gid: number; mtime: Date }
  | { kind: 'hardlink'; path: string; target: string; mtime: Date };

/** A file's bytes: in memory, or a file on disk read when the layer is written. */
export type FileBody = { bytes: Uint8Array } | { file: string; size: number };

/** Prefix of whiteout files (OCI image spec, layer changesets). */
export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

/** `/a/b/` → `a/b`; refuses empty names, `.`/`..` components and paths outside the root. */
export function relativePath(p: string): string {
  const parts = p.split('/').filter((s) => s !== '');
  if (parts.length === 0) throw new InvalidArgumentError(`file tree: "${p}" names the root, not a file`, { path: p });
  for (const s of parts) {
    if (s === '.' || s === '..') throw new InvalidArgumentError(`file tree: "${p}" has a "${s}" component`, { path: p });
    if (s.startsWith(WHITEOUT_PREFIX)) throw new InvalidArgumentError(`file tree: "${p}" is a whiteout name; write { type: 'delete' } instead`, { path: p });
    if (s.includes('\0')) throw new InvalidArgumentError('file tree: a path holds a NUL byte', { path: p });
  }
  return parts.join('/');
}

/**
 * The sort key of a path: its UTF-8 bytes with each `/` as a 0 byte, so that byte order puts a
 * directory right before its contents and siblings in byte order.
 */
function pathKey(p: string): Buffer {
  const b = Buffer.from(p);
  for (let i = 0; i < b.length; i++) if (b[i] === 0x2f) b[i] = 0;
  return b;
}

/** Parents come before their children; siblings in byte order: the same tar for the same tree. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(pathKey(a), pathKey(b));
}

/** Sorts by comparePaths, computing each key once. */
export function sortByPath<T>(items: T[], pathOf: (item: T) => string): T[] {
  return items.map((item) => ({ item, key: pathKey(pathOf(item)) })).sort((x, y) => Buffer.compare(x.key, y.key)).map((x) => x.item);
}

const EPOCH = new Date(0);

function modeOf(mode: number | undefined, fallback: number, p: string): number {
  const m = mode ?? fallback;
  if (!Number.isInteger(m) || m < 0 || m > 0o7777) throw new InvalidArgumentError(`file tree: "${p}": mode ${m} is not within 0..0o7777`, { path: p });
  return m;
}

function idOf(id: number | undefined, p: string): number {
  const v = id ?? 0;
  if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw new InvalidArgumentError(`file tree: "${p}": owner id ${v} is out of range`, { path: p });
  return v;
}

function bytesOf(content: string | Uint8Array): Uint8Array {
  return typeof content === 'string' ? Buffer.from(content) : content;
}

/**
 * The tar entries of one layer written from a file tree, sorted. With `parents`, directories the tree
 * implies but does not list come first (0755, root) — for a bottom layer; upper layers leave them out so
 * that the lower layers' directories keep their owners and modes.
 */
export function treeEntries(tree: FileTree, opts: { parents?: boolean; mtime?: Date } = {}): LayerEntry[] {
  const defaultTime = opts.mtime ?? EPOCH;
  const byPath = new Map<string, LayerEntry>();
  const add = (e: LayerEntry): void => {
    if (byPath.has(e.path)) throw new InvalidArgumentError(`file tree: "${e.path}" is given twice`, { path: e.path });
    byPath.set(e.path, e);
  };
  for (const [key, spec] of Object.entries(tree)) {
    const p = relativePath(key);
    if (typeof spec === 'string' || spec instanceof Uint8Array) {
      add({ kind: 'file', path: p, mode: 0o644, uid: 0, gid: 0, mtime: defaultTime, body: { bytes: bytesOf(spec) } });
      continue;
    }
    switch (spec.type) {
      case undefined: case 'file':
        if (spec.content === undefined) throw new InvalidArgumentError(`file tree: "${key}": a file needs content`, { path: key });
        add({ kind: 'file', path: p, mode: modeOf(spec.mode, 0o644, key), uid: idOf(spec.uid, key), gid: idOf(spec.gid, key), mtime: spec.mtime ?? defaultTime, body: { bytes: bytesOf(spec.content) } });
        break;
      case 'dir':
        add({ kind: 'dir', path: p, mode: modeOf(spec.mode, 0o755, key), uid: idOf(spec.uid, key), gid: idOf(spec.gid, key), mtime: spec.mtime ?? defaultTime });
        if (spec.opaque) add(whiteoutFile(`${p}/${OPAQUE_WHITEOUT}`, defaultTime));
        break;
      case 'symlink':
        if (!spec.target) throw new InvalidArgumentError(`file tree: "${key}": a symlink needs a target`, { path: key });
        add({ kind: 'symlink', path: p, target: spec.target, uid: idOf(spec.uid, key), gid: idOf(spec.gid, key), mtime: spec.mtime ?? defaultTime });
        break;
      case 'hardlink':
        add({ kind: 'hardlink', path: p, target: relativePath(spec.target), mtime: defaultTime });
        break;
      case 'delete': {
        const slash = p.lastIndexOf('/');
        add(whiteoutFile(`${slash < 0 ? '' : p.slice(0, slash + 1)}${WHITEOUT_PREFIX}${p.slice(slash + 1)}`, defaultTime));
        break;
      }
      default:
        throw new InvalidArgumentError(`file tree: "${key}": unknown type ${JSON.stringify((spec as { type: unknown }).type)}`, { path: key });
    }
  }
  for (const e of byPath.values()) {
    if (e.kind === 'hardlink') {
      const t = byPath.get(e.target);
      if (t !== undefined && t.kind !== 'file') throw new InvalidArgumentError(`file tree: hard link "${e.path}" points at "${e.target}", which is not a regular file`, { path: e.path });
    }
  }
  if (opts.parents) {
    for (const p of [...byPath.keys()]) {
      const parts = p.split('/');
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        const have = byPath.get(dir);
        if (have === undefined) byPath.set(dir, { kind: 'dir', path: dir, mode: 0o755, uid: 0, gid: 0, mtime: defaultTime });
        else if (have.kind !== 'dir') throw new InvalidArgumentError(`file tree: "${dir}" is not a directory but "${p}" is inside it`, { path: p });
      }
    }
  }
  return orderEntries([...byPath.values()]);
}

/** Sorted by path, hard links last: a link's target must already be in the archive when the link is read. */
export function orderEntries(entries: LayerEntry[]): LayerEntry[] {
  const sorted = sortByPath(entries, (e) => e.path);
  return [...sorted.filter((e) => e.kind !== 'hardlink'), ...sorted.filter((e) => e.kind === 'hardlink')];
}

function whiteoutFile(p: string, mtime: Date): LayerEntry {
  return { kind: 'file', path: p, mode: 0o644, uid: 0, gid: 0, mtime, body: { bytes: new Uint8Array(0) } };
}
