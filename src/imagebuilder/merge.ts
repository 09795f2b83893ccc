import { comparePaths, relativePath, type FileSpec, type FileTree } from './file-tree.js';

/**
 * The tree an image's layers make once unpacked, computed from their file trees (the OCI rules: a
 * deletion removes the path and everything under it, an opaque directory hides what lower layers had in
 * it, a later entry replaces an earlier one). Hard links become files with their target's content and
 * mode; directories the trees imply are listed (and stay when what made them is deleted, as unpacking
 * leaves them). Keys are `/`-rooted and sorted.
 */
export function mergeLayers(layers: readonly FileTree[]): FileTree {
  const merged = new Map<string, Exclude<FileSpec, { type: 'delete' } | { type: 'hardlink' }>>();
  const removeUnder = (p: string): void => {
    for (const k of [...merged.keys()]) if (k.startsWith(`${p}/`)) merged.delete(k);
  };
  // Unpacking creates missing parent directories, and they stay when their files are deleted later.
  const addParents = (p: string): void => {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!merged.has(dir)) merged.set(dir, { type: 'dir' });
    }
  };
  for (const tree of layers) {
    const entries = Object.entries(tree).map(([k, v]) => [relativePath(k), v] as const).sort(([a], [b]) => comparePaths(a, b));
    for (const [p, spec] of entries) {
      if (typeof spec === 'object' && !(spec instanceof Uint8Array) && spec.type === 'delete') {
        merged.delete(p);
        removeUnder(p);
        continue;
      }
      if (typeof spec === 'object' && !(spec instanceof Uint8Array) && spec.type === 'hardlink') continue;
      addParents(p);
      if (typeof spec === 'object' && !(spec instanceof Uint8Array) && spec.type === 'dir') {
        if (spec.opaque || merged.get(p) === undefined || !isDir(merged.get(p)!)) removeUnder(p);
        const { opaque: _o, ...dir } = spec;
        merged.set(p, dir);
        continue;
      }
      // A file or symlink replaces whatever was there, a directory's contents included.
      removeUnder(p);
      merged.set(p, spec);
    }
    // Hard links after every other entry of the layer, as the layer's tar writes them.
    for (const [p, spec] of entries) {
      if (typeof spec !== 'object' || spec instanceof Uint8Array || spec.type !== 'hardlink') continue;
      const target = merged.get(relativePath(spec.target));
      if (target !== undefined) { addParents(p); removeUnder(p); merged.set(p, target); }
    }
  }
  return Object.fromEntries([...merged.entries()].sort(([a], [b]) => comparePaths(a, b)).map(([p, s]) => [`/${p}`, s]));
}

function isDir(s: FileSpec): boolean {
  return typeof s === 'object' && !(s instanceof Uint8Array) && s.type === 'dir';
}
