import fs from 'node:fs';
import path from 'node:path';
import { joinRel } from './rootpath.js';

/**
 * The merged view of a chain of overlay-layout layer directories (nearest/top layer first).
 * Layer directories store deletions the OCI way: an empty `.wh.<name>` file hides `<name>` in the
 * layers below, and a `.wh..wh..opq` file makes its directory opaque (nothing below shows through).
 * A directory that sits next to its own whiteout in one layer is opaque too.
 */
export const WH_PREFIX = '.wh.';
export const WH_OPAQUE = '.wh..wh..opq';

export interface MergedEntry {
  name: string;
  /** Relative path inside the merged tree. */
  rel: string;
  /** Index of the layer providing this entry (its metadata and content). */
  layer: number;
  /** Absolute path of the providing file. */
  src: string;
  /** Its type, as the directory listing gave it (no lstat). */
  kind: 'dir' | 'file' | 'symlink' | 'other';
  /**
   * lstat of `src`, made when first read: a walk that needs only names and types (a --hardlink
   * checkout's files, a diff's lower side) makes none. Layers are immutable, so later is the same.
   */
  readonly st: fs.Stats;
  /** For directories: layers [layer, stop) contribute children. */
  stop: number;
  /** For directories: the layers of [layer, stop) that hold this directory, as its parent's listings showed. */
  dirLayers?: number[];
}

class Entry implements MergedEntry {
  private stats: fs.Stats | undefined;
  dirLayers?: number[];
  constructor(readonly name: string, readonly rel: string, readonly layer: number, readonly src: string, readonly kind: MergedEntry['kind'], public stop: number) {}
  get st(): fs.Stats { return (this.stats ??= fs.lstatSync(this.src)); }
}

function kindOf(d: fs.Dirent): MergedEntry['kind'] {
  return d.isDirectory() ? 'dir' : d.isFile() ? 'file' : d.isSymbolicLink() ? 'symlink' : 'other';
}

/**
 * Whether a listed entry of a layer directory is a deletion marker. Apply writes markers as empty
 * files; a directory with such a name comes from an ordinary archive path like `.wh.etc/somefile`
 * (image-spec: not a whiteout) and is content.
 */
export function isMarker(d: fs.Dirent): boolean {
  return d.name.startsWith(WH_PREFIX) && !d.isDirectory();
}

/**
 * Visible children of the merged directory `rel`, which is a directory in layers [top, stop). `only`,
 * when known (MergedEntry.dirLayers), lists the layers that hold it, so the others are not asked.
 */
export function mergedChildren(layers: readonly string[], rel: string, top = 0, stop = layers.length, only?: readonly number[]): Map<string, MergedEntry> {
  const out = new Map<string, MergedEntry>();
  const hidden = new Set<string>();
  const candidates = only ?? Array.from({ length: stop - top }, (_, i) => top + i);
  for (const k of candidates) {
    if (k >= stop) break; // `only` is ascending, and may run past a stop lowered after it was listed
    const dir = path.join(layers[k]!, rel);
    if (!only) {
      const st = fs.lstatSync(dir, { throwIfNoEntry: false });
      if (!st) continue;
      if (!st.isDirectory()) break;
    }
    // With the file types (d_type; Node lstats where the file system gives none): no lstat per entry.
    let ents: fs.Dirent[];
    try { ents = fs.readdirSync(dir, { withFileTypes: true }); } catch { continue; }
    let opaque = false;
    const whiteouts: string[] = [];
    const markers = new Set<string>();
    for (const d of ents) {
      if (!isMarker(d)) continue;
      markers.add(d.name);
      if (d.name === WH_OPAQUE) opaque = true;
      else whiteouts.push(d.name.slice(WH_PREFIX.length));
    }
    const whSet = new Set(whiteouts);
    for (const d of ents) {
      const n = d.name;
      if (markers.has(n) || hidden.has(n)) continue;
      const prev = out.get(n);
      if (prev) {
        if (prev.kind === 'dir' && prev.stop > k) {
          if (!d.isDirectory()) prev.stop = k;
          else prev.dirLayers?.push(k);
        }
        continue;
      }
      // `dir` is normalized and `n` a single name: plain concatenation (path.join was ~7% of a checkout).
      const e = new Entry(n, joinRel(rel, n), k, `${dir}/${n}`, kindOf(d), whSet.has(n) || opaque ? k + 1 : stop);
      if (e.kind === 'dir') e.dirLayers = [k];
      out.set(n, e);
    }
    for (const w of whiteouts) {
      const prev = out.get(w);
      if (prev && prev.stop > k + 1) prev.stop = k + 1;
      hidden.add(w);
    }
    if (opaque) {
      for (const e of out.values()) if (e.stop > k + 1) e.stop = k + 1;
      break;
    }
  }
  return out;
}

/** Finds `rel` in the merged view (undefined when absent or hidden). Cost: one merged readdir per ancestor. */
export function lookupMerged(layers: readonly string[], rel: string): MergedEntry | undefined {
  if (rel === '') return undefined;
  let top = 0;
  let stop = layers.length;
  let cur = '';
  const parts = rel.split('/');
  for (let i = 0; i < parts.length; i++) {
    const kids = mergedChildren(layers, cur, top, stop);
    const e = kids.get(parts[i]!);
    if (!e) return undefined;
    if (i === parts.length - 1) return e;
    if (e.kind !== 'dir') return undefined;
    top = e.layer; stop = e.stop; cur = e.rel;
  }
  return undefined;
}

/** Depth-first walk of the merged tree in sorted order; `fn` returning false skips a directory's children. */
export function walkMerged(layers: readonly string[], fn: (e: MergedEntry) => boolean | void, rel = '', top = 0, stop = layers.length, only?: readonly number[]): void {
  const kids = [...mergedChildren(layers, rel, top, stop, only).values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of kids) {
    const descend = fn(e);
    if (descend !== false && e.kind === 'dir') walkMerged(layers, fn, e.rel, e.layer, e.stop, e.dirLayers);
  }
}
