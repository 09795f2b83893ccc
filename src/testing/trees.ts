import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { mergeLayers, type FileTree } from '../imagebuilder/index.js';

/** One entry of a tree as compared: its kind, permission bits, owner, and a hash of its content. */
export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** sha256 of a file's bytes. */
  sha256?: string;
  /** The first bytes of a file, to show in a diff. */
  head?: Buffer;
  /** A symlink's target. */
  target?: string;
}

/** A tree by `/`-rooted path. */
export type TreeListing = Map<string, TreeEntry>;

export interface TreeDifference {
  path: string;
  kind: 'only-in-a' | 'only-in-b' | 'type' | 'content' | 'mode' | 'owner' | 'target';
  /** A human-readable account of this one difference. */
  message: string;
}

export interface CompareOptions {
  /** Compare owners (uid/gid). Default false: rootless checkouts cannot set them. */
  owners?: boolean;
  /** Compare permission bits. Default true. */
  modes?: boolean;
  /** Compare directories' permission bits too (default false: implied directories differ between tools). */
  directoryModes?: boolean;
  /** Paths (`/`-rooted) to leave out, with everything under them. */
  ignore?: string[];
}

const HEAD = 48;

/** Lists a directory on disk (without following symlinks). */
export function listDirectory(dir: string): TreeListing {
  const out: TreeListing = new Map();
  const walk = (abs: string, rel: string): void => {
    for (const name of fs.readdirSync(abs).sort()) {
      const full = path.join(abs, name);
      const p = `${rel}/${name}`;
      const st = fs.lstatSync(full);
      const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.size };
      if (st.isDirectory()) { out.set(p, { ...base, type: 'dir', size: 0 }); walk(full, p); }
      else if (st.isSymbolicLink()) out.set(p, { ...base, type: 'symlink', target: fs.readlinkSync(full) });
      else if (st.isFile()) {
        const bytes = fs.readFileSync(full);
        out.set(p, { ...base, type: 'file', sha256: createHash('sha256').update(bytes).digest('hex'), head: bytes.subarray(0, HEAD) });
      } else out.set(p, { ...base, type: 'other' });
    }
  };
  walk(path.resolve(dir), '');
  return out;
}

/** Lists the tree that a file tree (or the layers' trees merged, bottom first) describes. */
export function listFileTree(tree: FileTree | readonly FileTree[]): TreeListing {
  const merged = mergeLayers(Array.isArray(tree) ? tree : [tree as FileTree]);
  const out: TreeListing = new Map();
  for (const [p, spec] of Object.entries(merged)) {
    if (typeof spec === 'string' || spec instanceof Uint8Array) {
      const bytes = Buffer.from(spec);
      out.set(p, { type: 'file', mode: 0o644, uid: 0, gid: 0, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), head: bytes.subarray(0, HEAD) });
    } else if (spec.type === 'dir') {
      out.set(p, { type: 'dir', mode: spec.mode ?? 0o755, uid: spec.uid ?? 0, gid: spec.gid ?? 0, size: 0 });
    } else if (spec.type === 'symlink') {
      out.set(p, { type: 'symlink', mode: 0o777, uid: spec.uid ?? 0, gid: spec.gid ?? 0, size: Buffer.byteLength(spec.target), target: spec.target });
    } else if (spec.type === undefined || spec.type === 'file') {
      const bytes = Buffer.from(spec.content);
      out.set(p, { type: 'file', mode: spec.mode ?? 0o644, uid: spec.uid ?? 0, gid: spec.gid ?? 0, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), head: bytes.subarray(0, HEAD) });
    }
  }
  return out;
}

function listingOf(t: string | FileTree | readonly FileTree[] | TreeListing): TreeListing {
  if (typeof t === 'string') return listDirectory(t);
  if (t instanceof Map) return t;
  return listFileTree(t);
}

const octal = (m: number): string => `0${m.toString(8).padStart(3, '0')}`;

function preview(e: TreeEntry): string {
  if (e.type !== 'file') return e.type;
  const text = e.head!.toString('utf8');
  const printable = /^[\t\n\r\x20-\x7e]*$/.test(text);
  const shown = printable ? JSON.stringify(text) + (e.size > HEAD ? '…' : '') : `sha256:${e.sha256!.slice(0, 12)}`;
  return `${e.size} bytes ${shown}`;
}

/**
 * The differences between two trees, each a directory path, a file tree (or a list of layer trees,
 * merged), or a listing. Empty when they match. Sorted by path.
 */
export function compareTrees(a: string | FileTree | readonly FileTree[] | TreeListing, b: string | FileTree | readonly FileTree[] | TreeListing, opts: CompareOptions = {}): TreeDifference[] {
  const la = listingOf(a);
  const lb = listingOf(b);
  const ignored = (p: string): boolean => (opts.ignore ?? []).some((i) => p === i || p.startsWith(`${i.replace(/\/$/, '')}/`));
  const diffs: TreeDifference[] = [];
  const paths = [...new Set([...la.keys(), ...lb.keys()])].filter((p) => !ignored(p)).sort();
  for (const p of paths) {
    const x = la.get(p);
    const y = lb.get(p);
    if (!y) { diffs.push({ path: p, kind: 'only-in-a', message: `- ${p} (${preview(x!)}) is only in a` }); continue; }
    if (!x) { diffs.push({ path: p, kind: 'only-in-b', message: `+ ${p} (${preview(y)}) is only in b` }); continue; }
    if (x.type !== y.type) { diffs.push({ path: p, kind: 'type', message: `~ ${p}: a ${x.type} in a, a ${y.type} in b` }); continue; }
    if (x.type === 'file' && x.sha256 !== y.sha256) diffs.push({ path: p, kind: 'content', message: `~ ${p}: content differs: a has ${preview(x)}, b has ${preview(y)}` });
    if (x.type === 'symlink' && x.target !== y.target) diffs.push({ path: p, kind: 'target', message: `~ ${p}: symlink to ${JSON.stringify(x.target)} in a, to ${JSON.stringify(y.target)} in b` });
    const modes = (opts.modes ?? true) && x.type !== 'symlink' && (x.type !== 'dir' || opts.directoryModes);
    if (modes && x.mode !== y.mode) diffs.push({ path: p, kind: 'mode', message: `~ ${p}: mode ${octal(x.mode)} in a, ${octal(y.mode)} in b` });
    if (opts.owners && (x.uid !== y.uid || x.gid !== y.gid)) diffs.push({ path: p, kind: 'owner', message: `~ ${p}: owner ${x.uid}:${x.gid} in a, ${y.uid}:${y.gid} in b` });
  }
  return diffs;
}

/** The differences as text, one line each (empty string when there are none). */
export function formatTreeDiff(diffs: readonly TreeDifference[]): string {
  return diffs.map((d) => d.message).join('\n');
}

/** Throws an Error whose message lists every difference when the trees differ (works with any test runner). */
export function assertSameTree(a: string | FileTree | readonly FileTree[] | TreeListing, b: string | FileTree | readonly FileTree[] | TreeListing, opts: CompareOptions = {}): void {
  const diffs = compareTrees(a, b, opts);
  if (diffs.length > 0) throw new Error(`trees differ in ${diffs.length} place${diffs.length === 1 ? '' : 's'}:\n${formatTreeDiff(diffs)}`);
}
