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

it('opens a v1 database, migrates it in order, and keeps its rows', () => {
  const file = path.join(root, 'metadata.db');
  const old = new Database(file);
  old.pragma('journal_mode = WAL');
  expect(migrate(old, 1)).toBe(1);
  // What an old stowage wrote.
  old.prepare(`INSERT INTO images VALUES ('old:1', ?, ?, ?, 5, 1000, 2000)`).run(JSON.stringify({ mediaType: MANIFEST, digest: dg('o'), size: 5 }), dg('o'), MANIFEST);
  old.prepare(`INSERT INTO image_labels VALUES ('old:1', 'k', 'v')`).run();
  expect(old.prepare(`SELECT name FROM sqlite_master WHERE name = 'gc_state'`).get()).toBeUndefined();
  old.close();

  const md = openMetadata(root);
  try {
    const img = md.images.get('old:1');
    expect(img).toMatchObject({ name: 'old:1', labels: { k: 'v' }, target: { digest: dg('o') } });
    expect(img.createdAt.getTime()).toBe(1000);
    expect(md.generation()).toBe(0);
    md.images.update({ name: 'old:1', labels: { k: 'w' } }, 'labels.k');
    expect(md.generation()).toBe(1);
  } finally { md.close(); }
  const after = new Database(file, { readonly: true });
  expect((after.prepare('SELECT version FROM schema_version').get() as { version: number }).version).toBe(SCHEMA_VERSION);
  after.close();
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
