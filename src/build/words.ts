/**
 * Docker's shell-like word processing for Dockerfile arguments: quotes, the escape character, and
 * variable substitution (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alternative}`). No commands,
 * no globbing: exactly what the classic builder does to ENV, LABEL, COPY, WORKDIR… arguments.
 */
import { InvalidArgumentError } from '../errors/index.js';

/** Variable lookup: the first `KEY=value` entry wins (ENV before build arguments). */
export type Lookup = (name: string) => string | undefined;

export function lookupIn(...lists: string[][]): Lookup {
  return (name) => {
    for (const list of lists) {
      for (const e of list) {
        const i = e.indexOf('=');
        if (i < 0 ? e === name : e.slice(0, i) === name) return i < 0 ? '' : e.slice(i + 1);
      }
    }
    return undefined;
  };
}

class Lexer {
  private i = 0;
  constructor(private readonly s: string, private readonly escape: string, private readonly env: Lookup) {}

  private peek(): string | undefined { return this.s[this.i]; }
  private next(): string | undefined { return this.s[this.i++]; }

  /**
   * Reads until `stop` (consumed) or the end. Returns the text and the word boundaries met (unquoted
   * whitespace, including whitespace produced by unquoted substitutions), so callers can split words.
   */
  run(stop?: string): { text: string; words: string[] } {
    const words: string[] = [];
    let cur = '';
    let inWord = false;
    let text = '';
    const add = (t: string, splittable: boolean): void => {
      text += t;
      if (!splittable) { cur += t; inWord = true; return; }
      for (const ch of t) {
        if (/\s/.test(ch)) { if (inWord) { words.push(cur); cur = ''; inWord = false; } } else { cur += ch; inWord = true; }
      }
    };
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) {
        if (stop !== undefined) throw new InvalidArgumentError(`syntax error: missing '${stop}' in ${JSON.stringify(this.s)}`, { reason: 'substitution' });
        break;
      }
      if (stop !== undefined && ch === stop) { this.next(); break; }
      if (ch === "'") { this.next(); add(this.single(), false); continue; }
      if (ch === '"') { this.next(); add(this.double(), false); continue; }
      if (ch === '$') { this.next(); add(this.dollar(), true); continue; }
      this.next();
      if (ch === this.escape) {
        const n = this.next();
        if (n === undefined) break;
        add(n, false);
        continue;
      }
      add(ch, true);
    }
    if (inWord) words.push(cur);
    return { text, words };
  }

  private single(): string {
    let out = '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new InvalidArgumentError(`unexpected end of statement while looking for matching single-quote in ${JSON.stringify(this.s)}`, { reason: 'quote' });
      if (ch === "'") return out;
      out += ch;
    }
  }

  private double(): string {
    let out = '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new InvalidArgumentError(`unexpected end of statement while looking for matching double-quote in ${JSON.stringify(this.s)}`, { reason: 'quote' });
      if (ch === '"') return out;
      if (ch === '$') { out += this.dollar(); continue; }
      if (ch === this.escape) {
        const n = this.peek();
        // Only these can be escaped inside double quotes; any other escape stays as written.
        if (n === '"' || n === '$' || n === this.escape) { out += this.next(); continue; }
      }
      out += ch;
    }
  }

  private name(): string {
    let name = '';
    const first = this.peek();
    if (first !== undefined && /[0-9]/.test(first)) {
      while (this.peek() !== undefined && /[0-9]/.test(this.peek()!)) name += this.next();
      return name;
    }
    while (this.peek() !== undefined && /[A-Za-z0-9_]/.test(this.peek()!)) name += this.next();
    return name;
  }

  private dollar(): string {
    if (this.peek() !== '{') {
      const name = this.name();
      return name === '' ? '$' : this.env(name) ?? '';
    }
    this.next();
    const name = this.name();
    const ch = this.next();
    if (ch === '}') return this.env(name) ?? '';
    if (ch === ':') {
      const mod = this.next();
      if (mod === '-' || mod === '+') {
        const word = this.run('}').text;
        const value = this.env(name);
        const set = value !== undefined && value !== '';
        if (mod === '-') return set ? value : word;
        return set ? word : '';
      }
      throw new InvalidArgumentError(`unsupported modifier (${mod ?? 'EOF'}) in substitution`, { reason: 'substitution' });
    }
    throw new InvalidArgumentError(`missing ':' in substitution`, { reason: 'substitution' });
  }
}

/** Processes one word: quotes removed, escapes applied, variables substituted. */
export function processWord(word: string, env: Lookup, escape = '\\'): string {
  return new Lexer(word, escape, env).run().text;
}

/** Processes text into words: unquoted whitespace (also from substitutions) separates them. */
export function processWords(text: string, env: Lookup, escape = '\\'): string[] {
  return new Lexer(text, escape, env).run().words;
}

/**
 * Splits on whitespace outside quotes, keeping the quotes and escapes in the words (docker's
 * `parseWords`, used for KEY=VALUE lists before each part is processed).
 */
export function splitWords(text: string, escape = '\\'): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote === undefined && /\s/.test(ch)) {
      if (inWord) { words.push(cur); cur = ''; inWord = false; }
      continue;
    }
    inWord = true;
    cur += ch;
    if (ch === escape && i + 1 < text.length) { cur += text[++i]; continue; }
    if (quote === undefined && (ch === '"' || ch === "'")) quote = ch;
    else if (ch === quote) quote = undefined;
  }
  if (inWord) words.push(cur);
  return words;
}
