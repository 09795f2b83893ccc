import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../errors/index.js';

/** Raised for any archive entry that would reach outside the tree it is applied to. */
export function breakout(message: string, data: Record<string, unknown> = {}): InvalidArgumentError {
  return new InvalidArgumentError(message, { reason: 'breakout', ...data });
}

const UNCLEAN = /^\/|\/$|\/\/|(^|\/)\.\.?(\/|$)|\0|^$/;

/**
 * Cleans an archive member name into a relative path with forward slashes ('' is the root).
 * A leading '/' is dropped (tar semantics: member names are relative to the extraction root);
 * a name whose '..' components climb above the root is refused as a breakout, not clamped.
 */
export function cleanName(name: string): string {
  // Most names are clean already: no empty, '.' or '..' component, no NUL.
  if (!UNCLEAN.test(name)) return name;
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) throw breakout(`archive entry ${JSON.stringify(name)} climbs out of the root`, { path: name });
      out.pop();
      continue;
    }
    if (c.includes('\0')) throw new InvalidArgumentError(`archive entry name contains NUL`, { path: name });
    out.push(c);
  }
  return out.join('/');
}

/** Relative directory paths already proven to be real directories (no symlinks) during one apply. */
export class DirCache {
  private dirs = new Set<string>(['']);
  has(rel: string): boolean { return this.dirs.has(rel); }
  add(rel: string): void { this.dirs.add(rel); }
  /** Forget `rel` and everything under it (called when a directory is removed or replaced). */
  drop(rel: string): void {
    const prefix = rel + '/';
    for (const d of this.dirs) if (d === rel || d.startsWith(prefix)) this.dirs.delete(d);
    this.dirs.add('');
  }
}

const MAX_HOPS = 255;

/**
 * Resolves the relative path `rel` inside `root` the way a chroot would: every existing component is
 * lstat-ed, symlinks are followed with absolute targets re-rooted at `root` and `..` clamped at the root,
 * so the result (a relative path free of symlinks, except possibly for components that do not exist yet)
 * can never name anything outside the root. Use it for parent directories; never for the final component.
 */
export function resolveInRoot(root: string, rel: string, cache?: DirCache): string {
  if (cache?.has(rel)) return rel;
  let pending = rel.split('/');
  const resolved: string[] = [];
  let hops = 0;
  let missing = false;
  while (pending.length > 0) {
    const c = pending.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') { resolved.pop(); continue; }
    resolved.push(c);
    if (missing) continue;
    const relNow = resolved.join('/');
    if (cache?.has(relNow)) continue;
    const st = fs.lstatSync(path.join(root, relNow), { throwIfNoEntry: false });
    if (!st) { missing = true; continue; }
    if (st.isSymbolicLink()) {
      if (++hops > MAX_HOPS) throw new InvalidArgumentError(`too many links resolving ${JSON.stringify(rel)}`, { reason: 'breakout', path: rel });
      const target = fs.readlinkSync(path.join(root, relNow));
      resolved.pop();
      if (target.startsWith('/')) resolved.length = 0;
      pending = target.split('/').concat(pending);
      continue;
    }
    if (st.isDirectory()) cache?.add(relNow);
  }
  return resolved.join('/');
}

export function joinRel(dir: string, base: string): string {
  return dir === '' ? base : `${dir}/${base}`;
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}
