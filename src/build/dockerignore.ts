/**
 * `.dockerignore`: docker's pattern matcher. Patterns are cleaned paths with `*`, `?`, `[…]` and `**`;
 * `!` marks an exception; the last pattern that matches a path (or one of its parent directories) decides.
 */
import path from 'node:path';

export interface IgnorePattern {
  /** The cleaned pattern (no leading `/`, no `!`). */
  pattern: string;
  exclusion: boolean;
  re: RegExp;
  /** Number of path components, for matching parent directories. */
  depth: number;
}

function toRegExp(p: string): RegExp {
  let re = '^';
  for (let i = 0; i < p.length; i++) {
    const ch = p[i]!;
    if (ch === '*') {
      if (p[i + 1] === '*') {
        i++;
        if (p[i + 1] === '/') i++;
        re += i + 1 >= p.length ? '.*' : '(.*/)?';
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\') {
      if (i + 1 < p.length) re += '\\' + p[++i];
      else re += '\\\\';
    } else if (ch === '[') {
      // A character class, as filepath.Match has them (`[!a]` is a negation).
      const end = p.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let cls = p.slice(i + 1, end);
      if (cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += '[' + cls.replaceAll('\\', '\\\\') + ']';
      i = end;
    } else {
      re += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(re + '$', 's');
}

/** Parses `.dockerignore` text: comments and blank lines skipped, paths cleaned, leading `/` dropped. */
export function parseDockerignore(text: string): IgnorePattern[] {
  const out: IgnorePattern[] = [];
  for (const rawLine of text.split('\n')) {
    let line = rawLine.replace(/\r$/, '');
    if (line.startsWith('#')) continue;
    line = line.trim();
    if (line === '') continue;
    let exclusion = false;
    if (line.startsWith('!')) {
      exclusion = true;
      line = line.slice(1).trim();
      if (line === '') continue;
    }
    let p = path.posix.normalize(line);
    if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
    if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    out.push({ pattern: p, exclusion, re: toRegExp(p), depth: p.split('/').length });
  }
  return out;
}

/** Whether `rel` (a context-relative path with `/` separators) is excluded. */
export function isIgnored(patterns: readonly IgnorePattern[], rel: string): boolean {
  let matched = false;
  const parent = path.posix.dirname(rel);
  const parentDirs = parent.split('/');
  for (const p of patterns) {
    // An inclusion only matters while unmatched, an exception only once matched.
    if (p.exclusion !== matched) continue;
    let match = p.re.test(rel);
    if (!match && parent !== '.' && p.depth <= parentDirs.length) match = p.re.test(parentDirs.slice(0, p.depth).join('/'));
    if (match) matched = !p.exclusion;
  }
  return matched;
}

/** Whether an excluded directory must still be entered because an exception may re-include something in it. */
export function mayHoldExceptions(patterns: readonly IgnorePattern[], relDir: string): boolean {
  const prefix = relDir + '/';
  return patterns.some((p) => p.exclusion && (p.pattern + '/').startsWith(prefix));
}
