import { afterEach, beforeEach, expect, it } from 'vitest';
import fs from 'node:fs';
import Database from 'better-sqlite3';
import path from 'node:path';
import { checkStore, openMetadata, type Metadata } from '../../src/metadata/index.js';
import type { ContentStore } from '../../src/content/index.js';
import { blobPath, contentFor, exists, putBlob } from './backends.js';
import { dg, tempRoot } from './helpers.js';

const G = 'containerd.io/gc.';
const M = 'application/vnd.oci.image.manifest.v1+json';
let root: string; let cleanup: () => void; let md: Metadata; let cs: ContentStore;
beforeEach(async () => { ({ root, cleanup } = tempRoot()); md = openMetadata(root); cs = await contentFor(md); });
afterEach(() => { md.close(); cleanup(); });

it('a healthy store has no problems', async () => {
  const cfg = await putBlob(cs, 'config');
  const man = await putBlob(cs, 'manifest');
  md.content.recordBlob(cfg.digest, cfg.size);
  md.content.recordBlob(man.digest, man.size, { labels: { [`${G}ref.content.config`]: cfg.digest } });
  md.images.create({ name: 'ok', target: { mediaType: M, ...man } });
  const r = await checkStore(md, cs);
  expect(r.problems).toEqual([]);
  expect(r.blobsChecked).toBe(2);
});

it('finds missing targets, missing and corrupt blobs, dangling records; repairs only what is safe', async () => {
  const cfg = await putBlob(cs, 'config');
  const man = await putBlob(cs, 'manifest');
  md.content.recordBlob(man.digest, man.size, { labels: {
    [`${G}ref.content.config`]: cfg.digest, [`${G}ref.content.l.0`]: dg('never downloaded'), [`${G}ref.snapshot.native`]: 'no-such-snapshot',
  } });
  md.content.recordBlob(cfg.digest, cfg.size);
  md.images.create({ name: 'broken', target: { mediaType: M, ...man } });
  md.images.create({ name: 'no-target', target: { mediaType: M, digest: dg('absent'), size: 9 } });
  fs.writeFileSync(blobPath(md, cfg.digest), 'tampered'); // corrupt bytes
  md.content.recordBlob(dg('orphan record'), 5);                // a record with no bytes, unreferenced
  const l = md.leases.create({ id: 'l' }).id;
  md.leases.addResource(l, { type: 'images', id: 'gone-image' });
  md.leases.addResource(l, { type: 'ingests', id: 'gone-ingest' });
  md.leases.addResource(l, { type: 'snapshots/native', id: 'gone-snap' });

  const found = await checkStore(md, cs);
  const kinds = found.problems.map((p) => `${p.kind} ${p.subject}`).sort();
  expect(kinds).toEqual([
    `blob-missing ${dg('never downloaded')}`,
    `blob-record-without-file ${dg('orphan record')}`,
    `digest-mismatch ${cfg.digest}`,
    'image-target-missing no-target',
    'lease-resource-dangling l/images/gone-image',
    'lease-resource-dangling l/ingests/gone-ingest',
    'lease-resource-dangling l/snapshots/native/gone-snap',
    'snapshot-missing native/no-such-snapshot',
  ].sort());
  expect(found.problems.every((p) => !p.repaired)).toBe(true);
  expect(exists(blobPath(md, cfg.digest))).toBe(true); // no repair asked: nothing touched

  // Records are recent: repair leaves them alone unless told they are old enough.
  const cautious = await checkStore(md, cs, { repair: true });
  expect(cautious.problems.filter((p) => p.repaired).map((p) => p.kind)).toEqual(['digest-mismatch']);
  expect(exists(blobPath(md, cfg.digest))).toBe(false);
  expect(md.content.labels(cfg.digest)).toEqual({});

  const fixed = await checkStore(md, cs, { repair: true, minAgeMs: 0 });
  expect(fixed.problems.filter((p) => p.repaired).map((p) => `${p.kind} ${p.subject}`).sort()).toEqual([
    `blob-record-without-file ${dg('orphan record')}`,
    'lease-resource-dangling l/images/gone-image',
    'lease-resource-dangling l/snapshots/native/gone-snap',
  ]);
  expect(md.leases.listResources(l)).toEqual([{ type: 'ingests', id: 'gone-ingest' }]);
  const after = await checkStore(md, cs);
  expect(after.problems.map((p) => p.kind).sort()).toEqual([
    'blob-missing', 'blob-missing', 'image-target-missing', 'lease-resource-dangling', 'snapshot-missing',
  ]); // the corrupt config is now simply missing: a re-pull fetches it
});

it('reports foreign-key violations (a snapshot whose parent record vanished)', async () => {
  md.snapshots.create('native', 'p', 'active', undefined, {});
  md.snapshots.commit('native', 'p', 'parent', undefined);
  md.snapshots.create('native', 'c', 'active', 'parent', {});
  md.close();
  const raw = new Database(path.join(root, 'metadata.db'));
  raw.pragma('foreign_keys = OFF');
  raw.prepare(`DELETE FROM snapshots WHERE key = 'parent'`).run();
  raw.close();
  md = openMetadata(root);
  const r = await checkStore(md, cs);
  expect(r.problems.map((p) => p.kind)).toContain('foreign-key-violation');
});

it('compares snapshot records with their directories', async () => {
  const { DirSnapshots } = await import('./backends.js');
  const snaps = new DirSnapshots(root);
  const a = md.snapshots.create('native', 'a', 'active', undefined, {});
  snaps.make('native', a.id);
  md.snapshots.commit('native', 'a', 'layer-a', undefined);
  md.snapshots.create('native', 'b', 'active', undefined, {});  // no directory (yet): too recent to report
  md.snapshots.create('native', 'c', 'active', undefined, {});
  md.snapshots.commit('native', 'c', 'layer-c', undefined);     // committed without a directory: a problem
  snaps.make('native', 4242);                                   // orphan directory
  const found = await checkStore(md, cs, { snapshots: snaps });
  expect(found.problems.map((p) => `${p.kind} ${p.subject}`).sort()).toEqual([
    'snapshot-directory-missing native/layer-c', 'snapshot-directory-orphan native/4242',
  ]);
  await checkStore(md, cs, { snapshots: snaps, repair: true });
  expect(exists(snaps.dir('native', 4242))).toBe(false);
  expect(exists(snaps.dir('native', a.id))).toBe(true);
});
