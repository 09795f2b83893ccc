/**
 * The Dockerfile parser: parser directives, comments, line continuations and instruction lines, as the
 * classic builder's parser reads them. It knows nothing of what the instructions mean (instructions.ts).
 */
import { InvalidArgumentError } from '../errors/index.js';

export interface Directives {
  /** The escape character: `\` (default) or a backtick. */
  escape: '\\' | '`';
  /** The `# syntax=` directive when present (reported, not acted upon: there is no frontend to fetch). */
  syntax?: string;
}

/** One instruction as written: its keyword and the text after it, continuations joined. */
export interface ParsedLine {
  /** Lower-case keyword: `from`, `copy`... */
  keyword: string;
  /** Everything after the keyword, leading whitespace removed. */
  rest: string;
  /** The instruction as docker prints it in `Step N/M : …` (continuations joined, outer whitespace trimmed). */
  original: string;
  /** 1-based first and last line numbers in the file. */
  startLine: number;
  endLine: number;
}

export interface ParsedDockerfile {
  directives: Directives;
  lines: ParsedLine[];
  /** Docker's warnings (empty continuation lines). */
  warnings: string[];
}

const DIRECTIVE_RE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;

/** Dockerfile parse error with docker's wording: `Dockerfile parse error line N: …`. */
export function parseError(line: number, message: string): InvalidArgumentError {
  return new InvalidArgumentError(`Dockerfile parse error line ${line}: ${message}`, { line, reason: 'dockerfile-parse' });
}

/** Reads the directives at the top of the file; returns them and the index of the first line after them. */
function readDirectives(lines: string[]): { directives: Directives; next: number } {
  const directives: Directives = { escape: '\\' };
  const seen = new Set<string>();
  let i = 0;
  for (; i < lines.length; i++) {
    const m = DIRECTIVE_RE.exec(lines[i]!);
    if (!m) break;
    const key = m[1]!.toLowerCase();
    const value = m[2]!;
    if (key !== 'escape' && key !== 'syntax') continue; // an unknown directive reads as a comment
    if (seen.has(key)) throw parseError(i + 1, `only one ${key} parser directive can be used`);
    seen.add(key);
    if (key === 'escape') {
      if (value !== '\\' && value !== '`') throw parseError(i + 1, `invalid ESCAPE '${value}'. Must be \` or \\`);
      directives.escape = value;
    } else {
      directives.syntax = value;
    }
  }
  return { directives, next: i };
}

const isComment = (l: string): boolean => /^[ \t]*#/.test(l);
const isBlank = (l: string): boolean => /^[ \t]*$/.test(l);

/** Splits a Dockerfile's text into instruction lines. Throws InvalidArgument with the line number on malformed input. */
export function parseDockerfile(text: string): ParsedDockerfile {
  const raw = text.replace(/^\uFEFF/, '').split('\n').map((l) => l.replace(/\r$/, ''));
  const { directives, next } = readDirectives(raw);
  const esc = directives.escape === '\\' ? '\\\\' : '`';
  const continuation = new RegExp(`${esc}[ \\t]*$`);
  const out: ParsedLine[] = [];
  const warnings: string[] = [];
  let i = next;
  while (i < raw.length) {
    const first = raw[i]!;
    if (isComment(first) || isBlank(first)) { i++; continue; }
    const start = i + 1;
    let acc = '';
    let line = first;
    let emptyContinuation = false;
    for (;;) {
      if (continuation.test(line)) {
        acc += line.replace(continuation, '');
        i++;
        // Comments and blank lines inside a continued instruction are skipped, as docker does.
        while (i < raw.length && (isComment(raw[i]!) || isBlank(raw[i]!))) {
          if (isBlank(raw[i]!)) emptyContinuation = true;
          i++;
        }
        if (i >= raw.length) break;
        line = raw[i]!;
        continue;
      }
      acc += line;
      i++;
      break;
    }
    if (emptyContinuation) warnings.push(`[WARNING]: Empty continuation line found in: ${acc.trim()}`);
    const original = acc.trim();
    if (original === '') continue;
    const m = /^(\S+)\s*([\s\S]*)$/.exec(original)!;
    out.push({ keyword: m[1]!.toLowerCase(), rest: m[2]!, original, startLine: start, endLine: i });
  }
  return { directives, lines: out, warnings };
}
