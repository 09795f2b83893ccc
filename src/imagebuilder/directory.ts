import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, fromSystemError, throwIfAborted } from '../errors/index.js';
import { WHITEOUT_PREFIX, comparePaths, orderEntries, type LayerEntry } from './file-tree.js';

export interface DirectoryLayerOptions {
  /**
   * Owner written for every entry: `{ uid, gid }` (default root, `{ uid: 0, gid: 0 }`), or `'keep'` for
   * the owners on disk.
   */
  owner?: { uid: number; gid: number } | 'keep';
  /** Modification time written for every entry (default the epoch), or `'keep'` for the times on disk. */
  mtime?: Date | 'keep';
  signal?: AbortSignal;
}

/**
 * The tar entries of a layer holding the contents of `dir` (not `dir` itself): files, directories,
 * symlinks and hard links (files sharing an inode), sorted. File bytes are read when the layer is written,
 * never held in memory. With the default owner and time, the same tree gives the same layer on any machine.
 * Sockets, FIFOs, devices and `.wh.` names (deletions in a layer) are refused.
 */
export function directoryEntries(dir: string, opts: DirectoryLayerOptions = {}): LayerEntry[] {
  const root = path.resolve(dir);
  const owner = opts.owner ?? { uid: 0, gid: 0 };
  const fixedTime = opts.mtime === 'keep' ? undefined : opts.mtime ?? new Date(0);
  const entries: LayerEntry[] = [];
  // Files with several names, by inode: the first path in tar order is the file, the others link to it.
  const inodes = new Map<string, Extract<LayerEntry, { kind: 'file' }>[]>();
  const walk = (abs: string, rel: string): void => {
    throwIfAborted(opts.signal);
    let names: string[];
    try { names = fs.readdirSync(abs); } catch (e) { throw fromSystemError(e, `directory ${abs}`); }
    for (const name of names) {
      const full = path.join(abs, name);
      const p = rel ? `${rel}/${name}` : name;
      // In a layer such a name deletes a file of the layers below: never let a stray file do that.
      if (name.startsWith(WHITEOUT_PREFIX)) throw new InvalidArgumentError(`${full}: names starting with ${WHITEOUT_PREFIX} are deletions in a layer`, { path: full });
      let st: fs.Stats;
      try { st = fs.lstatSync(full); } catch (e) { throw fromSystemError(e, full); }
      const who = owner === 'keep' ? { uid: st.uid, gid: st.gid } : owner;
      const mtime = fixedTime ?? new Date(Math.floor(st.mtimeMs / 1000) * 1000);
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        entries.push({ kind: 'dir', path: p, mode, ...who, mtime });
        walk(full, p);
      } else if (st.isSymbolicLink()) {
        entries.push({ kind: 'symlink', path: p, target: fs.readlinkSync(full), ...who, mtime });
      } else if (st.isFile()) {
        const file: Extract<LayerEntry, { kind: 'file' }> = { kind: 'file', path: p, mode, ...who, mtime, body: { file: full, size: st.size } };
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          inodes.set(key, [...(inodes.get(key) ?? []), file]);
        } else entries.push(file);
      } else {
        throw new InvalidArgumentError(`${full}: a socket, FIFO or device cannot go into a layer built from a directory`, { path: full });
      }
    }
  };
  walk(root, '');
  for (const names of inodes.values()) {
    const [first, ...others] = names.sort((a, b) => comparePaths(a.path, b.path));
    entries.push(first!);
    for (const o of others) entries.push({ kind: 'hardlink', path: o.path, target: first!.path, mtime: o.mtime });
  }
  return orderEntries(entries);
}
