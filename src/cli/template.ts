/**
 * The small part of Go's text/template that docker users put in `--format`:
 * `{{.Field.Sub}}`, `{{json .}}`, `{{join .RepoTags ", "}}`, `{{index .Labels "k"}}`, `upper`, `lower`,
 * `len`, `println`, pipes (`{{.Tag | upper}}`), and docker's `table` prefix with `\t` / `\n` escapes.
 */
import { InvalidArgumentError } from '../errors/index.js';

type Node = { kind: 'text'; text: string } | { kind: 'action'; pipeline: Command[] };
type Arg = { kind: 'field'; path: string[] } | { kind: 'string'; value: string } | { kind: 'number'; value: number } | { kind: 'ident'; name: string };
interface Command { args: Arg[] }

export interface Template {
  /** True when the format started with `table`: output goes through the column aligner with a header. */
  table: boolean;
  execute(data: unknown): string;
}

const FUNCS: Record<string, (...args: unknown[]) => unknown> = {
  json: (v) => JSON.stringify(v ?? null),
  join: (v, sep) => (Array.isArray(v) ? v.map(goString).join(String(sep ?? '')) : goString(v)),
  upper: (v) => goString(v).toUpperCase(),
  lower: (v) => goString(v).toLowerCase(),
  title: (v) => goString(v).replace(/\b\w/g, (c) => c.toUpperCase()),
  len: (v) => (Array.isArray(v) || typeof v === 'string' ? v.length : v && typeof v === 'object' ? Object.keys(v).length : 0),
  index: (v, ...keys) => keys.reduce<unknown>((acc, k) => (acc && typeof acc === 'object' ? (acc as Record<string, unknown>)[String(k)] : undefined), v),
  println: (...vs) => vs.map(goString).join(' ') + '\n',
  truncate: (v, n) => [...goString(v)].slice(0, Number(n)).join(''),
  split: (v, sep) => goString(v).split(String(sep)),
};

/** Parses a docker `--format` value (not `json`/`table` alone: callers handle those keywords). */
export function parseTemplate(format: string): Template {
  let text = format;
  let table = false;
  if (text.startsWith('table ')) { table = true; text = text.slice(6); }
  text = text.trim().replaceAll('\\t', '\t').replaceAll('\\n', '\n');
  const nodes = parseNodes(text);
  return { table, execute: (data) => nodes.map((n) => (n.kind === 'text' ? n.text : goString(evalPipeline(n.pipeline, data)))).join('') };
}

function parseNodes(text: string): Node[] {
  const nodes: Node[] = [];
  let pos = 0;
  while (pos < text.length) {
    const open = text.indexOf('{{', pos);
    if (open < 0) { nodes.push({ kind: 'text', text: text.slice(pos) }); break; }
    if (open > pos) nodes.push({ kind: 'text', text: text.slice(pos, open) });
    const close = text.indexOf('}}', open + 2);
    if (close < 0) throw new InvalidArgumentError(`template parsing error: unclosed action in ${JSON.stringify(text)}`);
    let inner = text.slice(open + 2, close);
    if (inner.startsWith('-')) inner = inner.slice(1);
    if (inner.endsWith('-')) inner = inner.slice(0, -1);
    nodes.push({ kind: 'action', pipeline: inner.split('|').map((part) => ({ args: tokenize(part) })) });
    pos = close + 2;
  }
  return nodes;
}

function tokenize(src: string): Arg[] {
  const out: Arg[] = [];
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`|(\.[A-Za-z0-9_.]*)|(-?\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*))/y;
  let rest = src.trim();
  while (rest.length > 0) {
    re.lastIndex = 0;
    const m = re.exec(rest);
    if (!m || m[0].length === 0) throw new InvalidArgumentError(`template parsing error: unexpected ${JSON.stringify(rest)}`);
    if (m[1] !== undefined) out.push({ kind: 'string', value: JSON.parse(`"${m[1]}"`) as string });
    else if (m[2] !== undefined) out.push({ kind: 'string', value: m[2] });
    else if (m[3] !== undefined) out.push({ kind: 'field', path: m[3].split('.').filter((p) => p !== '') });
    else if (m[4] !== undefined) out.push({ kind: 'number', value: Number(m[4]) });
    else if (m[5] !== undefined) out.push({ kind: 'ident', name: m[5] });
    rest = rest.slice(m[0].length).trim();
  }
  if (out.length === 0) throw new InvalidArgumentError('template parsing error: missing value for command');
  return out;
}

function evalPipeline(pipeline: Command[], data: unknown): unknown {
  let value: unknown;
  let first = true;
  for (const cmd of pipeline) {
    const [head, ...rest] = cmd.args;
    const args = rest.map((a) => evalArg(a, data));
    if (!first) args.push(value);
    if (head!.kind === 'ident') {
      const fn = FUNCS[head!.name];
      if (!fn) throw new InvalidArgumentError(`template parsing error: function "${head!.name}" not defined`);
      value = fn(...args);
    } else {
      if (args.length > 0) throw new InvalidArgumentError('template parsing error: can\'t give argument to non-function');
      value = evalArg(head!, data);
    }
    first = false;
  }
  return value;
}

function evalArg(arg: Arg, data: unknown): unknown {
  switch (arg.kind) {
    case 'string': return arg.value;
    case 'number': return arg.value;
    case 'ident': {
      const fn = FUNCS[arg.name];
      if (!fn) throw new InvalidArgumentError(`template parsing error: function "${arg.name}" not defined`);
      return fn();
    }
    case 'field': {
      let v: unknown = data;
      for (const key of arg.path) {
        // Missing keys print "<no value>", as for Go maps; a scalar has no fields at all.
        if (v === undefined) break;
        if (v === null || typeof v !== 'object') throw new InvalidArgumentError(`template: executing at <.${arg.path.join('.')}>: can't evaluate field ${key}`);
        v = (v as Record<string, unknown>)[key];
      }
      return v;
    }
  }
}

/** How Go's fmt prints a value with %v. */
export function goString(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `map[${entries.map(([k, x]) => `${k}:${goString(x)}`).join(' ')}]`;
  }
  return String(v);
}
