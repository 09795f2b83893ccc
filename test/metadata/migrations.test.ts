import { afterEach, beforeEach, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { isStowageError } from '../../src/errors/index.js';
import { migrate, openMetadata, SCHEMA_VERSION } from '../../src/metadata/index.js';
import { dg, MANIFEST, tempRoot } from './helpers.js';

let root: string; let cleanup: () => void;
beforeEach(() => ({ root, cleanup } = tempRoot()));
afterEach(() => cleanup());

const Z = `sha256:${"0".repeat(64)}` as const;
const ONE = `sha256:${"1".repeat(64)}` as const;

/** Builds `<root>/metadata.db` from a frozen dump an older stowage wrote (never from today's code). */
function fromFixture(version: number): string {
  const file = path.join(root, 'metadata.db');
  const old = new Database(file);
  old.exec(fs.readFileSync(path.join(import.meta.dirname, 'fixtures', `metadata-v${version}.sql`), 'utf8'));
  old.close();
  return file;
}

it('opens a v1 database, migrates it in order, and keeps its rows', () => {
  const file = fromFixture(1);
  const before = new Database(file, { readonly: true });
  expect((before.prepare('SELECT version FROM schema_version').get() as { version: number }).version).toBe(1);
  expect(before.prepare(`SELECT name FROM sqlite_master WHERE name = 'gc_state'`).get()).toBeUndefined();
  before.close();

  const md = openMetadata(root);
  try {
    const img = md.images.get('old:1');
    expect(img).toMatchObject({ name: 'old:1', labels: { k: 'v' }, target: { digest: Z } });
    expect(img.createdAt.getTime()).toBe(1000);
    expect(md.content.labels(Z)).toEqual({ 'containerd.io/gc.ref.content.l.0': ONE });
    // v4: a lease from before owners were recorded has none, and keeps its expiry.
    expect(md.leases.list()).toEqual([{ id: 'old-lease', createdAt: new Date(1500), labels: { 'containerd.io/gc.expire': '2099-01-01T00:00:00.000Z' } }]);
    expect(md.leases.listResources('old-lease')).toEqual([{ type: 'content', id: ONE }]);
    expect(md.generation()).toBe(0);
    md.images.update({ name: 'old:1', labels: { k: 'w' } }, 'labels.k');
    expect(md.generation()).toBe(1);
  } finally { md.close(); }
  const after = new Database(file, { readonly: true });
  expect((after.prepare('SELECT version FROM schema_version').get() as { version: number }).version).toBe(SCHEMA_VERSION);
  after.close();
});

it('opens a v3 database (before lease owners): old leases stay ownerless, new ones record their process', () => {
  fromFixture(3);
  const md = openMetadata(root);
  try {
    expect(md.leases.list().map((l) => [l.id, l.owner])).toEqual([['old-lease', undefined]]);
    const me = { pid: process.pid, host: 'h', start: '42' };
    md.leases.create({ id: 'new', owner: me });
    expect(md.leases.list().find((l) => l.id === 'new')!.owner).toEqual(me);
  } finally { md.close(); }
});

it('refuses a database from a newer stowage', () => {
  fs.mkdirSync(root, { recursive: true });
  const db = new Database(path.join(root, 'metadata.db'));
  db.exec(`CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (${SCHEMA_VERSION + 1})`);
  db.close();
  let err: unknown;
  try { openMetadata(root).close(); } catch (e) { err = e; }
  expect(isStowageError(err, 'FailedPrecondition')).toBe(true);
});

it('migrating twice is a no-op', () => {
  openMetadata(root).close();
  const md = openMetadata(root);
  md.images.create({ name: 'a', target: { mediaType: MANIFEST, digest: dg('a'), size: 1 } });
  md.close();
  const again = openMetadata(root);
  expect(again.images.list()).toHaveLength(1);
  again.close();
});
