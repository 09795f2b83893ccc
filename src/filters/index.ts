import { InvalidArgumentError } from '../errors/index.js';

/**
 * containerd's filter language (content walk, ingests, images, leases, snapshots), generic over the record it is applied to.
 *
 *   filter   := selector ("," selector)*        -- comma is AND
 *   selector := fieldpath [ op value ]          -- no op: the field must be present
 *   fieldpath:= field ("." field)*              -- field: bare word or "quoted"
 *   op       := "==" | "!=" | "~="              -- ~= is a regular expression (unanchored)
 *   value    := "quoted" | anything up to the next comma; after ~= also /quoted/ or |quoted|
 *   quoted   := Go string escapes (\n, \t, \\, \<quote>, \xHH, ...); any other escape is InvalidArgument
 *
 * Several filter strings are ORed. No filters, or an empty string, matches everything.
 * Example: `labels."containerd.io/gc.root"`, `size==42,digest~=^sha256:ab`.
 */
export type FilterOp = '==' | '!=' | '~=' | 'present';

export interface Selector {
  fieldpath: string[];
  op: FilterOp;
  value?: string;
  regex?: RegExp;
}

/** Outer array: ORed alternatives; inner array: ANDed selectors. */
export type Filters = Selector[][];

/** Looks a field path up in a record; undefined means absent. */
export type FieldGetter = (fieldpath: string[]) => string | undefined;

export function parseFilters(...filters: string[]): Filters {
  return filters.map(parseOne);
}

export function matchFilters(filters: Filters, getField: FieldGetter): boolean {
  if (filters.length === 0) return true;
  return filters.some((all) => all.every((s) => matchSelector(s, getField)));
}

function matchSelector(s: Selector, getField: FieldGetter): boolean {
  const v = getField(s.fieldpath);
  switch (s.op) {
    case 'present': return v !== undefined;
    case '==': return v !== undefined && v === s.value;
    // containerd compares an absent field as "": `parent!=""` means "has a parent".
    case '!=': return (v ?? '') !== s.value;
    case '~=': return v !== undefined && s.regex!.test(v);
  }
}

const BARE_FIELD = /[A-Za-z0-9_\-/:+@]/;
const SIMPLE_ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

function parseOne(input: string): Selector[] {
  const selectors: Selector[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new InvalidArgumentError(`invalid filter ${JSON.stringify(input)}: ${why} at ${i}`, { filter: input, position: i });
  };
  const skipSpace = () => { while (i < input.length && /\s/.test(input[i]!)) i++; };
  const quoted = (): string => {
    const quote = input[i]!;
    i++;
    let out = '';
    while (i < input.length && input[i] !== quote) {
      if (input[i] === '\\' && i + 1 < input.length) {
        // Go's escapes, as containerd's unquote: an unknown one is an error, never silently dropped
        // (`/docker\.io/` must not turn into the regex `docker.io`).
        const c = input[i + 1]!;
        i += 2;
        const simple = SIMPLE_ESCAPES[c];
        if (simple !== undefined) { out += simple; continue; }
        if (c === '\\' || c === quote) { out += c; continue; }
        const hexLen = c === 'x' ? 2 : c === 'u' ? 4 : c === 'U' ? 8 : 0;
        if (hexLen > 0 && /^[0-9A-Fa-f]+$/.test(input.slice(i, i + hexLen)) && i + hexLen <= input.length) {
          const code = Number.parseInt(input.slice(i, i + hexLen), 16);
          if (code > 0x10ffff) fail('escape out of range');
          out += String.fromCodePoint(code);
          i += hexLen;
          continue;
        }
        if (/^[0-7]{3}$/.test(c + input.slice(i, i + 2)) && Number.parseInt(c + input.slice(i, i + 2), 8) <= 255) {
          out += String.fromCharCode(Number.parseInt(c + input.slice(i, i + 2), 8));
          i += 2;
          continue;
        }
        i -= 2;
        fail(`invalid escape \\${c} in a quoted string`);
      } else {
        out += input[i++];
      }
    }
    if (i >= input.length) fail('unterminated quote');
    i++; // closing quote
    return out;
  };

  skipSpace();
  if (i >= input.length) return []; // empty filter: matches all
  for (;;) {
    skipSpace();
    const fieldpath: string[] = [];
    for (;;) {
      if (input[i] === '"') {
        fieldpath.push(quoted());
      } else {
        const start = i;
        while (i < input.length && BARE_FIELD.test(input[i]!)) i++;
        if (i === start) fail('expected a field name');
        fieldpath.push(input.slice(start, i));
      }
      if (input[i] === '.') { i++; continue; }
      break;
    }
    skipSpace();
    const two = input.slice(i, i + 2);
    if (two === '==' || two === '!=' || two === '~=') {
      i += 2;
      skipSpace();
      let value: string;
      if (input[i] === '"' || (two === '~=' && (input[i] === '/' || input[i] === '|'))) {
        value = quoted();
      } else {
        const start = i;
        while (i < input.length && input[i] !== ',') i++;
        value = input.slice(start, i).trimEnd();
        if (value === '') fail('expected a value');
      }
      const sel: Selector = { fieldpath, op: two, value };
      if (two === '~=') {
        try {
          sel.regex = new RegExp(value);
        } catch {
          fail(`invalid regular expression ${JSON.stringify(value)}`);
        }
      }
      selectors.push(sel);
    } else {
      selectors.push({ fieldpath, op: 'present' });
    }
    skipSpace();
    if (i >= input.length) return selectors;
    if (input[i] !== ',') fail('expected "," or an operator');
    i++;
  }
}

/**
 * Field lookup for a record with a `labels` map: `labels.<k>` joins the rest of the path with dots,
 * so `labels.a.b` and `labels."a.b"` name the same key (as containerd's adaptors do).
 */
export function labelField(labels: Record<string, string>, rest: string[]): string | undefined {
  if (rest.length === 0) return undefined;
  const key = rest.join('.');
  return Object.prototype.hasOwnProperty.call(labels, key) ? labels[key] : undefined;
}
