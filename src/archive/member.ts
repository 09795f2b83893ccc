import path from 'node:path';
import { InvalidArgumentError } from '../errors/index.js';

/**
 * The clean relative path of an archive member (`./a/b/` → `a/b`). Absolute paths, `..` segments and
 * NUL bytes are refused: an archive names its own members, nothing outside it.
 */
export function memberPath(name: string): string {
  if (name.includes('\0')) throw unsafe(name, 'a NUL byte');
  if (name.startsWith('/') || /^[A-Za-z]:[\\/]/.test(name)) throw unsafe(name, 'an absolute path');
  const parts = name.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) throw unsafe(name, 'a ".." segment');
  return parts.join('/');
}

/** Where a link member points, as a member path: symlinks relative to their directory, hard links to the root. */
export function linkTarget(member: string, linkname: string, kind: 'symlink' | 'link'): string {
  if (linkname.startsWith('/')) throw unsafe(linkname, 'an absolute link target', member);
  const base = kind === 'symlink' ? path.posix.dirname(member) : '.';
  const joined = path.posix.normalize(path.posix.join(base, linkname));
  if (joined === '..' || joined.startsWith('../')) throw unsafe(linkname, 'a link target outside the archive', member);
  return memberPath(joined);
}

function unsafe(name: string, what: string, member?: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid archive: member ${JSON.stringify(member ?? name)} has ${what}${member ? ` (${JSON.stringify(name)})` : ''}`, { member: member ?? name, reason: 'unsafe-path' });
}
