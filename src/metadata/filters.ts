import { InvalidArgumentError } from '../errors/index.js';

/**
 * containerd-style list filters, small: the strings of a list are ORed, the comma-separated
 * selectors inside one string are ANDed. A selector is `fieldpath`, `fieldpath==value`,
 * `fieldpath!=value` or `fieldpath~=regexp`. A fieldpath is dot-separated; a segment may be quoted
 * (`labels."containerd.io/gc.root"`), and values with commas or quotes are written as "quoted" strings.
 */
export interface Selector { path: string[]; op?: '==' | '!=' | '~='; value?: string; re?: RegExp }
export type Filter = Selector[][];

/** Looks a fieldpath up on one record: the string value, or undefined when absent. */
export type FieldAdaptor = (path: string[]) => string | undefined;

export function parseFilters(filters: readonly string[]): Filter {
  return filters.filter((f) => f.trim() !== '').map(parseOne);
}

export function matchFilters(filter: Filter, adaptor: FieldAdaptor): boolean {
  if (filter.length === 0) return true;
  return filter.some((all) => all.every((s) => matchSelector(s, adaptor)));
}

function matchSelector(s: Selector, adaptor: FieldAdaptor): boolean {
  const v = adaptor(s.path);
  switch (s.op) {
    case undefined: return v !== undefined;
    case '==': return v === s.value;
    // A missing field compares as "" (containerd's rule): `parent!=""` means "has a parent".
    case '!=': return (v ?? '') !== s.value;
    case '~=': return v !== undefined && s.re!.test(v);
  }
}

function parseOne(input: string): Selector[] {
  const out: Selector[] = [];
  let i = 0;
  const fail = (why: string): never => { throw new InvalidArgumentError(`invalid filter ${JSON.stringify(input)}: ${why}`, { filter: input }); };
  const skipSpace = () => { while (i < input.length && input[i] === ' ') i++; };
  const quoted = (): string => {
    // A JSON-style quoted string starting at input[i] === '"'.
    let j = i + 1;
    while (j < input.length && input[j] !== '"') j += input[j] === '\\' ? 2 : 1;
    if (j >= input.length) fail('unterminated quote');
    const raw = input.slice(i, j + 1);
    i = j + 1;
    try { return JSON.parse(raw) as string; } catch { return fail(`bad quoted string ${raw}`); }
  };
  for (;;) {
    skipSpace();
    const path: string[] = [];
    for (;;) {
      if (input[i] === '"') path.push(quoted());
      else {
        const m = /^[A-Za-z0-9_\-/:@+]+/.exec(input.slice(i));
        if (!m) fail(`expected a field name at offset ${i}`);
        path.push(m![0]);
        i += m![0].length;
      }
      if (input[i] === '.') { i++; continue; }
      break;
    }
    skipSpace();
    const sel: Selector = { path };
    const op = input.slice(i, i + 2);
    if (op === '==' || op === '!=' || op === '~=') {
      i += 2;
      skipSpace();
      let value: string;
      if (input[i] === '"') value = quoted();
      else {
        const end = input.indexOf(',', i);
        value = (end < 0 ? input.slice(i) : input.slice(i, end)).trimEnd();
        i = end < 0 ? input.length : end;
      }
      sel.op = op;
      sel.value = value;
      if (op === '~=') {
        try { sel.re = new RegExp(value); } catch { fail(`bad regular expression ${JSON.stringify(value)}`); }
      }
    }
    out.push(sel);
    skipSpace();
    if (i >= input.length) return out;
    if (input[i] !== ',') fail(`unexpected ${JSON.stringify(input[i])} at offset ${i}`);
    i++;
  }
}

/** Adaptor helper: `labels.<k>` (rest of the path joined with dots) looks the key up in `labels`. */
export function labelField(path: string[], labels: Record<string, string>): string | undefined {
  if (path[0] !== 'labels' || path.length < 2) return undefined;
  return labels[path.slice(1).join('.')];
}
