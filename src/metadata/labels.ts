import type Database from 'better-sqlite3';
import { InvalidArgumentError } from '../errors/index.js';
import { GC_EXPIRE } from '../content/index.js';
import type { Labels } from './types.js';

/** containerd's limit: key plus value of one label, in bytes. */
export const MAX_LABEL_BYTES = 4096;

export function validateLabels(labels: Labels | undefined): void {
  if (labels === undefined) return;
  if (typeof labels !== 'object' || labels === null) throw new InvalidArgumentError('labels must be an object');
  for (const [k, v] of Object.entries(labels)) validateLabel(k, v);
}

export function validateLabel(key: string, value: string): void {
  if (key === '') throw new InvalidArgumentError('label key must not be empty');
  if (typeof value !== 'string') throw new InvalidArgumentError(`label ${JSON.stringify(key)}: value must be a string`, { key });
  const n = Buffer.byteLength(key) + Buffer.byteLength(value);
  if (n > MAX_LABEL_BYTES) {
    throw new InvalidArgumentError(`label ${JSON.stringify(key.slice(0, 64))}: key+value is ${n} bytes, limit ${MAX_LABEL_BYTES}`, { key, bytes: n });
  }
}

/** Reads and writes one `<kind>_labels(owner, key, value)` table. */
export class LabelTable {
  private readonly getAll: Database.Statement;
  private readonly clear: Database.Statement;
  private readonly put: Database.Statement;
  private readonly del: Database.Statement;

  constructor(db: Database.Database, readonly table: string) {
    this.getAll = db.prepare(`SELECT key, value FROM ${table} WHERE owner = ?`);
    this.clear = db.prepare(`DELETE FROM ${table} WHERE owner = ?`);
    this.put = db.prepare(`INSERT INTO ${table} (owner, key, value) VALUES (?, ?, ?) ON CONFLICT (owner, key) DO UPDATE SET value = excluded.value`);
    this.del = db.prepare(`DELETE FROM ${table} WHERE owner = ? AND key = ?`);
  }

  get(owner: string | number): Labels {
    const out: Labels = {};
    for (const r of this.getAll.all(owner) as { key: string; value: string }[]) out[r.key] = r.value;
    return out;
  }

  /** Replaces every label of `owner`. Empty values are dropped (an empty value means "unset"). */
  replace(owner: string | number, labels: Labels | undefined): void {
    this.clear.run(owner);
    for (const [k, v] of Object.entries(labels ?? {})) if (v !== '') this.put.run(owner, k, v);
  }

  /** Writes only the difference between two label maps (cheap for one-key updates of big maps). */
  apply(owner: string | number, from: Labels, to: Labels): void {
    for (const k of Object.keys(from)) if (to[k] === undefined || to[k] === '') this.del.run(owner, k);
    for (const [k, v] of Object.entries(to)) if (v !== '' && from[k] !== v) this.put.run(owner, k, v);
  }

  /** Sets one key; an empty value deletes it. */
  set(owner: string | number, key: string, value: string): void {
    if (value === '') this.del.run(owner, key);
    else this.put.run(owner, key, value);
  }
}

/**
 * Applies containerd fieldpaths to a label map: `labels` replaces the map, `labels.<k>` sets or
 * (missing/empty in the update) removes one key. Returns null when a path is not a label path.
 */
export function applyLabelPath(current: Labels, update: Labels, fieldpath: string): Labels | null {
  if (fieldpath === 'labels') return { ...update };
  if (fieldpath.startsWith('labels.')) {
    const key = fieldpath.slice('labels.'.length);
    const next = { ...current };
    const v = update[key];
    if (v === undefined || v === '') delete next[key];
    else next[key] = v;
    return next;
  }
  return null;
}

/** Parses an RFC 3339 `gc.expire` value; undefined when absent or unparsable (then it never expires). */
export function expiryOf(labels: Labels): number | undefined {
  const v = labels[GC_EXPIRE];
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}
