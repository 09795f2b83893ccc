import { InvalidArgumentError } from '../errors/index.js';
import type { Filters } from './types.js';

/**
 * Engine API filter arguments: parsing, validation with docker's messages, and the value helpers
 * (booleans, `until` timestamps, reference globs) the list, prune and events filters share.
 */
export class FilterArgs {
  private readonly map = new Map<string, string[]>();

  constructor(filters: Filters | undefined) {
    for (const [key, value] of Object.entries(filters ?? {})) {
      const values = Array.isArray(value) ? value : Object.entries(value).filter(([, on]) => on).map(([v]) => v);
      if (values.length > 0) this.map.set(key, [...new Set(values)]);
    }
  }

  /** 400 `invalid filter '<key>'` for any key outside `accepted`. */
  validate(accepted: readonly string[]): this {
    for (const key of this.map.keys()) {
      if (!accepted.includes(key)) throw new InvalidArgumentError(`invalid filter '${key}'`, { filter: key });
    }
    return this;
  }

  has(key: string): boolean { return this.map.has(key); }
  get(key: string): string[] { return this.map.get(key) ?? []; }

  /** A boolean filter (`true|false|1|0`); both values or another value → 400 `invalid filter 'key=[…]'`. */
  bool(key: string): boolean | undefined {
    const values = this.get(key);
    if (values.length === 0) return undefined;
    const parsed = new Set(values.map((v) => {
      const l = v.toLowerCase();
      if (l === 'true' || l === '1') return true;
      if (l === 'false' || l === '0') return false;
      return undefined;
    }));
    if (parsed.size !== 1 || parsed.has(undefined)) {
      throw new InvalidArgumentError(`invalid filter '${key}=[${values.join(' ')}]'`, { filter: key });
    }
    return [...parsed][0];
  }

  /** label=k / label=k=v (all must hold); with `negate`, the key `label!` (none may hold). */
  labelsMatch(labels: Record<string, string> | undefined, key = 'label'): boolean {
    const negate = key.endsWith('!');
    for (const want of this.get(key)) {
      const i = want.indexOf('=');
      const k = i === -1 ? want : want.slice(0, i);
      const hit = labels !== undefined && Object.hasOwn(labels, k) && (i === -1 || labels[k] === want.slice(i + 1));
      if (negate ? hit : !hit) return false;
    }
    return true;
  }
}

const GO_DURATION = /^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function parseGoDurationMs(s: string): number | undefined {
  if (!GO_DURATION.test(s)) return undefined;
  const sign = s.startsWith('-') ? -1 : 1;
  let total = 0;
  for (const m of s.replace(/^[-+]/, '').matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  return sign * total;
}

/**
 * docker's timestamp values (GetTimestamp + ParseTimestamps): a Go duration before `now` (`10m`, `1h30m`),
 * Unix seconds with optional `.nanos`, or RFC3339-like dates (`2006-01-02`, `2006-01-02T15:04:05`, with zone;
 * without a zone local time). Returns milliseconds since the epoch, or throws InvalidArgument with `what`.
 */
export function parseTimestamp(value: string, what: string, now = Date.now()): number {
  const bad = (): never => {
    throw new InvalidArgumentError(`${what}: failed to parse value as time or duration: "${value}"`, { value });
  };
  if (value !== '0') {
    const d = parseGoDurationMs(value);
    if (d !== undefined) return now - d;
  }
  if (/^\d+(\.\d{1,9})?$/.test(value)) {
    const [sec, frac = ''] = value.split('.');
    return Number(sec) * 1000 + Number((frac + '000000000').slice(0, 9)) / 1e6;
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(\.\d{1,9})?)?)?)?(Z|z|[+-]\d{2}:\d{2})?$/.exec(value);
  if (!m) return bad();
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone] = m;
  const iso = `${y}-${mo}-${d}T${h}:${mi}:${s}${frac ? frac.slice(0, 4) : ''}`;
  const ms = zone === undefined ? new Date(iso).getTime() : Date.parse(iso + (zone.toUpperCase() === 'Z' ? 'Z' : zone));
  if (Number.isNaN(ms)) return bad();
  return ms;
}

/** 400 "invalid value for 'until' filter: …" wording used by list and prune. */
export function parseUntil(value: string, now = Date.now()): number {
  try {
    return parseTimestamp(value, 'until', now);
  } catch {
    throw new InvalidArgumentError(`invalid value for 'until' filter: failed to parse value as time or duration: "${value}"`, { value });
  }
}

/** Go's path.Match as a RegExp: `*` and `?` never cross `/`, `[…]` classes with `^` negation, `\\` escapes. */
export function globToRegExp(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += escapeRe(pattern[++i]!);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) throw new InvalidArgumentError(`syntax error in pattern: ${pattern}`);
      let body = pattern.slice(i + 1, end);
      const neg = body.startsWith('^') || body.startsWith('!');
      if (neg) body = body.slice(1);
      re += `[${neg ? '^/' : ''}${body.replace(/[\]\\]/g, '\\$&')}]`;
      i = end;
    } else re += escapeRe(c);
  }
  return new RegExp(re + '$');
}

function escapeRe(c: string): string { return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'); }
