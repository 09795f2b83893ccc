/**
 * The module specifiers a TypeScript file imports, found by a small scanner (TypeScript 7's compiler
 * has no JavaScript API to parse with): `import … from`, side-effect `import '…'`, `import type`,
 * `export … from`, `import('…')` expressions and `import('…')` types. Comments, strings, template
 * literals and regular expression literals are skipped, so text that merely looks like an import is not one.
 */
export interface FoundImport {
  specifier: string;
  kind: 'static' | 'export-from' | 'dynamic';
  /** 1-based line of the specifier. */
  line: number;
}

/** Keywords after which a `/` starts a regular expression, not a division. */
const REGEX_AFTER_WORD = new Set(['return', 'typeof', 'case', 'do', 'else', 'in', 'of', 'new', 'delete', 'void', 'throw', 'yield', 'await', 'instanceof']);

interface Token { kind: 'word' | 'string' | 'punct'; text: string; pos: number }

/** Words, string literals (their value; template literals without substitutions only) and punctuation. */
function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  /** Template literal nesting: for each open `${`, the brace depth at which it closes. */
  const templateStack: number[] = [];
  let braceDepth = 0;
  const regexAllowed = (): boolean => {
    const prev = out[out.length - 1];
    if (!prev) return true;
    if (prev.kind === 'word') return REGEX_AFTER_WORD.has(prev.text);
    if (prev.kind === 'string') return false;
    return !(prev.text === ')' || prev.text === ']' || prev.text === '}');
  };
  const readTemplate = (start: number): void => {
    // From just after a backquote or a closing `}` of a substitution, to the next backquote or `${`.
    let j = start;
    let text = '';
    while (j < src.length) {
      const c = src[j]!;
      if (c === '\\') { text += src[j + 1] ?? ''; j += 2; continue; }
      if (c === '`') { out.push({ kind: 'string', text, pos: start }); i = j + 1; return; }
      if (c === '$' && src[j + 1] === '{') { out.push({ kind: 'punct', text: '${', pos: j }); templateStack.push(braceDepth); braceDepth++; i = j + 2; return; }
      text += c;
      j++;
    }
    i = j;
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '/' && src[i + 1] === '/') { while (i < src.length && src[i] !== '\n') i++; continue; }
    if (c === '/' && src[i + 1] === '*') { const e = src.indexOf('*/', i + 2); i = e < 0 ? src.length : e + 2; continue; }
    if (/\s/.test(c)) { i++; continue; }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let text = '';
      while (j < src.length && src[j] !== c && src[j] !== '\n') {
        if (src[j] === '\\') { text += src[j + 1] ?? ''; j += 2; continue; }
        text += src[j++];
      }
      out.push({ kind: 'string', text, pos: i });
      i = j + 1;
      continue;
    }
    if (c === '`') { readTemplate(i + 1); continue; }
    if (c === '/' && regexAllowed()) {
      let j = i + 1;
      let inClass = false;
      while (j < src.length && src[j] !== '\n') {
        const d = src[j]!;
        if (d === '\\') { j += 2; continue; }
        if (d === '[') inClass = true;
        else if (d === ']') inClass = false;
        else if (d === '/' && !inClass) break;
        j++;
      }
      j++;
      while (j < src.length && /[a-z]/i.test(src[j]!)) j++;
      out.push({ kind: 'string', text: '', pos: i }); // a regex behaves like a literal for what follows
      i = j;
      continue;
    }
    if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[\w$]/.test(src[j]!)) j++;
      out.push({ kind: 'word', text: src.slice(i, j), pos: i });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[\w.]/.test(src[j]!)) j++;
      out.push({ kind: 'word', text: src.slice(i, j), pos: i }); // a number: never a keyword
      i = j;
      continue;
    }
    if (c === '{') braceDepth++;
    if (c === '}') {
      braceDepth--;
      if (templateStack.length > 0 && templateStack[templateStack.length - 1] === braceDepth) {
        templateStack.pop();
        out.push({ kind: 'punct', text: '}', pos: i });
        readTemplate(i + 1);
        continue;
      }
    }
    out.push({ kind: 'punct', text: c, pos: i });
    i++;
  }
  return out;
}

/** Every import of `src` (TypeScript source), in order. */
export function findImports(src: string): FoundImport[] {
  const toks = tokenize(src);
  const found: FoundImport[] = [];
  const lineOf = (pos: number): number => src.slice(0, pos).split('\n').length;
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k]!;
    if (t.kind !== 'word' || (t.text !== 'import' && t.text !== 'export')) continue;
    const prev = toks[k - 1];
    if (prev && prev.kind === 'punct' && prev.text === '.') continue; // `import.meta`, `x.import`
    const next = toks[k + 1];
    if (t.text === 'import' && next?.kind === 'punct' && next.text === '(') {
      const arg = toks[k + 2];
      if (arg?.kind === 'string') found.push({ specifier: arg.text, kind: 'dynamic', line: lineOf(arg.pos) });
      continue;
    }
    if (t.text === 'import' && next?.kind === 'punct' && next.text === '.') continue;
    if (t.text === 'import' && next?.kind === 'string') { found.push({ specifier: next.text, kind: 'static', line: lineOf(next.pos) }); continue; }
    // A declaration: find its `from '…'` before the statement ends (`;` or a new statement keyword at depth 0).
    let depth = 0;
    for (let j = k + 1; j < toks.length; j++) {
      const u = toks[j]!;
      if (u.kind === 'punct' && (u.text === '{' || u.text === '(')) depth++;
      else if (u.kind === 'punct' && (u.text === '}' || u.text === ')')) depth--;
      if (depth < 0) break;
      if (depth === 0 && u.kind === 'punct' && u.text === ';') break;
      if (depth === 0 && u.kind === 'word' && u.text === 'from' && toks[j + 1]?.kind === 'string') {
        found.push({ specifier: toks[j + 1]!.text, kind: t.text === 'import' ? 'static' : 'export-from', line: lineOf(toks[j + 1]!.pos) });
        break;
      }
      // `export const x = …`, `export function f() {…}` and the like never have a `from` clause.
      if (t.text === 'export' && j === k + 1 && u.kind === 'word' && u.text !== 'type' && u.text !== '*') break;
      if (depth === 0 && j > k + 1 && u.kind === 'word' && (u.text === 'import' || u.text === 'export')) break;
    }
  }
  return found;
}
