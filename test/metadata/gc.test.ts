// TestMetadataCollector, end to end: real content store, real snapshot directories, real SQLite.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStowageError } from '../../src/errors/index.js';
import { collectGarbage, openMetadata, type GcBackends, type Metadata } from '../../src/metadata/index.js';
import type { ContentStore } from '../../src/content/index.js';
import { age, blobPath, contentFor, DirSnapshots, exists, putBlob } from './backends.js';
import { tempRoot } from './helpers.js';

const G = 'containerd.io/gc.';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const HOUR = 3_600_000;

let root: string; let cleanup: () => void; let md: Metadata; let cs: ContentStore; let snaps: DirSnapshots;
beforeEach(async () => {
  ({ root, cleanup } = tempRoot());
  md = openMetadata(root);
  cs = await contentFor(md);
  snaps = new DirSnapshots(root);
});
afterEach(() => { md.close(); cleanup(); });

/** A pulled image: index -> manifest -> {config -> top snapshot, layer}, recorded as a pull would. */
async function pullImage(name: string, tag: string) {
  const lease = md.leases.create({ expiresInMs: HOUR }).id;
  const layer = await putBlob(cs, `layer of ${tag}`);
  const config = await putBlob(cs, `config of ${tag}`);
  const manifest = await putBlob(cs, `manifest of ${tag}`);
  const index = await putBlob(cs, `index of ${tag}`);
  for (const b of [layer, config, manifest, index]) md.content.recordBlob(b.digest, b.size, { lease });
  const base = md.snapshots.create('native', `extract-1 ${tag}`, 'active', undefined, {}, { lease });
  snaps.make('native', base.id);
  md.snapshots.commit('native', `extract-1 ${tag}`, `chain-1-${tag}`, undefined, { lease });
  const top = md.snapshots.create('native', `extract-2 ${tag}`, 'active', `chain-1-${tag}`, {}, { lease });
  snaps.make('native', top.id);
  md.snapshots.commit('native', `extract-2 ${tag}`, `chain-2-${tag}`, undefined, { lease });
  md.content.setLabel(index.digest, `${G}ref.content.m.0`, manifest.digest);
  md.content.setLabel(manifest.digest, `${G}ref.content.config`, config.digest);
  md.content.setLabel(manifest.digest, `${G}ref.content.l.0`, layer.digest);
  md.content.setLabel(config.digest, `${G}ref.snapshot.native`, `chain-2-${tag}`);
  md.images.create({ name, target: { mediaType: INDEX, digest: index.digest, size: index.size } });
  md.leases.delete(lease);
  return { layer, config, manifest, index, snapshots: [base.id, top.id] };
}

describe('collectGarbage', () => {
  it('keeps what images, leases and roots reach and removes the rest, files included', async () => {
    const kept = await pullImage('docker.io/library/kept:1', 'kept');
    const gone = await pullImage('docker.io/library/gone:1', 'gone');
    md.images.delete('docker.io/library/gone:1');

    const live = md.leases.create({ expiresInMs: HOUR }).id;
    const inLease = await putBlob(cs, 'protected by a live lease');
    md.content.recordBlob(inLease.digest, inLease.size, { lease: live });
    const expired = md.leases.create({ id: 'expired', labels: { [`${G}expire`]: new Date(Date.now() - 1000).toISOString() } }).id;
    const inExpired = await putBlob(cs, 'in an expired lease');
    md.content.recordBlob(inExpired.digest, inExpired.size, { lease: expired });
    const rooted = await putBlob(cs, 'gc.root');
    md.content.recordBlob(rooted.digest, rooted.size, { labels: { [`${G}root`]: 'yes' } });
    const unrecordedOld = await putBlob(cs, 'unrecorded and old');
    age(blobPath(md, unrecordedOld.digest), 2 * HOUR);
    const unrecordedYoung = await putBlob(cs, 'unrecorded and young (another process is about to record it)');
    const strayDir = 99_999;
    snaps.make('native', strayDir); // a directory whose record is gone

    // An ingest in the live lease (kept, with its expected blob) and an abandoned one.
    const expectedBlob = await putBlob(cs, 'the live ingest expects me');
    age(blobPath(md, expectedBlob.digest), 2 * HOUR);
    const w1 = await cs.writer({ ref: 'live-ingest', desc: { size: 100 } });
    await w1.write(Buffer.from('partial')); await w1.close();
    md.leases.addResource(live, { type: 'ingests', id: 'live-ingest' });
    const w2 = await cs.writer({ ref: 'abandoned-ingest' });
    await w2.write(Buffer.from('partial')); await w2.close();

    const before = md.generation();
    const backends: GcBackends = {
      content: {
        walk: (fn) => cs.walk(fn), delete: (d) => cs.delete(d), abort: (r) => cs.abort(r),
        // The real store records no expected digest for a plain ingest: give the live one its expectation.
        listStatuses: async () => (await cs.listStatuses()).map((s) => (s.ref === 'live-ingest' ? { ...s, expected: expectedBlob.digest } : s)),
      },
      snapshots: snaps,
    };
    // abandonIngestsAfterMs 0: every ingest outside a live lease counts as abandoned (no waiting on the clock).
    const report = await collectGarbage(md, backends, { gracePeriodMs: HOUR, abandonIngestsAfterMs: 0 });

    const alive = (d: { digest: `${string}:${string}` }) => exists(blobPath(md, d.digest));
    for (const b of [kept.layer, kept.config, kept.manifest, kept.index, inLease, rooted, unrecordedYoung, expectedBlob]) expect(alive(b)).toBe(true);
    for (const b of [gone.layer, gone.config, gone.manifest, gone.index, inExpired, unrecordedOld]) expect(alive(b)).toBe(false);
    for (const id of kept.snapshots) expect(exists(snaps.dir('native', id))).toBe(true);
    for (const id of [...gone.snapshots, strayDir]) expect(exists(snaps.dir('native', id))).toBe(false);
    expect(md.snapshots.walk('native').map((s) => s.key).sort()).toEqual(['chain-1-kept', 'chain-2-kept']);
    expect(md.leases.list().map((l) => l.id)).toEqual([live]);
    expect(md.content.labels(gone.index.digest)).toEqual({});
    expect(md.content.labels(kept.index.digest)).toEqual({ [`${G}ref.content.m.0`]: kept.manifest.digest });
    expect((await cs.listStatuses()).map((s) => s.ref)).toEqual(['live-ingest']);

    expect(report.removed).toEqual({ blobs: 6, snapshots: 3, ingests: 1, images: 0, leases: 1 });
    expect(report.bytesReclaimed).toBe([gone.layer, gone.config, gone.manifest, gone.index, inExpired, unrecordedOld].reduce((n, b) => n + b.size, 0));
    expect(report.remarks).toBe(0);
    expect(report.errors).toEqual([]);
    // GC's own deletes leave the generation alone: a second collector's mark is not made stale by them.
    expect(md.generation()).toBe(before);

    // A second pass finds nothing.
    const again = await collectGarbage(md, backends, { gracePeriodMs: HOUR, abandonIngestsAfterMs: 0 });
    expect(again.removed).toEqual({ blobs: 0, snapshots: 0, ingests: 0, images: 0, leases: 0 });
  });

  it('expired images go (with their blobs); a lease keeps an expiring image', async () => {
    const a = await putBlob(cs, 'target a');
    const b = await putBlob(cs, 'target b');
    md.content.recordBlob(a.digest, a.size);
    md.content.recordBlob(b.digest, b.size);
    const past = new Date(Date.now() - 1000).toISOString();
    md.images.create({ name: 'a', target: { mediaType: INDEX, ...a }, labels: { [`${G}expire`]: past } });
    const l = md.leases.create().id;
    md.images.create({ name: 'b', target: { mediaType: INDEX, ...b }, labels: { [`${G}expire`]: past } }, { lease: l });
    const r = await collectGarbage(md, { content: cs });
    expect(r.removed).toMatchObject({ images: 1, blobs: 1 });
    expect(md.images.list().map((i) => i.name)).toEqual(['b']);
    expect(exists(blobPath(md, a.digest))).toBe(false);
    expect(exists(blobPath(md, b.digest))).toBe(true);
  });

  it('dry run reports and deletes nothing', async () => {
    const x = await putBlob(cs, 'garbage');
    md.content.recordBlob(x.digest, x.size);
    const r = await collectGarbage(md, { content: cs }, { dryRun: true });
    expect(r.candidates.blobs).toEqual([x.digest]);
    expect(exists(blobPath(md, x.digest))).toBe(true);
  });

  it('a record re-referenced after the mark survives (the batch marks again)', async () => {
    const x = await putBlob(cs, 'unreferenced at mark time');
    md.content.recordBlob(x.digest, x.size);
    const other = openMetadata(root); // another connection, as another process
    const r = await collectGarbage(md, { content: cs }, {
      afterMark: () => { other.images.create({ name: 'late', target: { mediaType: INDEX, ...x } }); },
    });
    other.close();
    expect(r.candidates.blobs).toEqual([x.digest]);
    expect(r.remarks).toBe(1);
    expect(r.removed.blobs).toBe(0);
    expect(exists(blobPath(md, x.digest))).toBe(true);
    expect(md.content.labels(x.digest)).toEqual({});
  });

  it('while GC deletes a blob file, recording that digest is refused (retry), and works afterwards', async () => {
    const x = await putBlob(cs, 'about to be collected');
    md.content.recordBlob(x.digest, x.size);
    const other = openMetadata(root);
    let during: unknown;
    await collectGarbage(md, { content: cs }, {
      beforeFileDeletes: () => {
        try { other.content.recordBlob(x.digest, x.size); } catch (e) { during = e; }
      },
    });
    expect(isStowageError(during, 'Unavailable')).toBe(true);
    expect((during as { data: { retry?: boolean } }).data.retry).toBe(true);
    expect(exists(blobPath(md, x.digest))).toBe(false);
    // The retry writes the blob again and records it.
    const again = await putBlob(cs, 'about to be collected');
    other.content.recordBlob(again.digest, again.size);
    other.close();
    expect(exists(blobPath(md, x.digest))).toBe(true);
  });

  it('never holds the write lock for the whole sweep: batches interleave with other writers', async () => {
    for (let i = 0; i < 60; i++) {
      const b = await putBlob(cs, `junk ${i}`);
      md.content.recordBlob(b.digest, b.size);
    }
    const other = openMetadata(root);
    const r = await collectGarbage(md, { content: cs }, {
      batchSize: 10,
      afterMark: () => { other.images.create({ name: 'during', target: { mediaType: INDEX, digest: `sha256:${'a'.repeat(64)}`, size: 1 } }); },
    });
    other.close();
    expect(r.removed.blobs).toBe(60);
    expect(md.images.get('during')).toBeTruthy();
    expect(r.remarks).toBe(1); // the first batch saw the other writer's commit
  });

  it('one collector at a time; the lock goes with the collection', async () => {
    let second: unknown;
    await collectGarbage(md, { content: cs }, {
      afterMark: async () => { try { await collectGarbage(md, { content: cs }); } catch (e) { second = e; } },
    });
    expect(isStowageError(second, 'Unavailable')).toBe(true);
    await collectGarbage(md, { content: cs }); // released
  });

  it('a lock row this process left behind (release failed, or the store was closed mid-GC) does not block it for hours', async () => {
    const raw = (md as unknown as { db: { db: import('better-sqlite3').Database } }).db.db;
    raw.prepare(`INSERT INTO gc_lock VALUES (1, 'left-behind', ?, ?, ?)`).run(process.pid, (await import('node:os')).hostname(), Date.now());
    await collectGarbage(md, { content: cs }); // no collection of ours is running: the row is stale
    expect(raw.prepare('SELECT COUNT(*) AS n FROM gc_lock').get()).toEqual({ n: 0 });
  });

  it('an old ingest a writer resumes while GC runs is not aborted under it', async () => {
    const data = Buffer.from('the first half, then the second half');
    const w0 = await cs.writer({ ref: 'resumed-during-gc' });
    await w0.write(data.subarray(0, 15)); await w0.close();
    // Untouched for two hours (its files aged, no waiting), past the abandonment age below.
    const dir = path.join(md.root, 'content', 'ingest', createHash('sha256').update('resumed-during-gc').digest('hex'));
    fs.writeFileSync(path.join(dir, 'updatedat'), new Date(Date.now() - 2 * HOUR).toISOString());
    for (const f of fs.readdirSync(dir)) age(path.join(dir, f), 2 * HOUR);
    let w: Awaited<ReturnType<ContentStore['writer']>> | undefined;
    await collectGarbage(md, { content: cs }, {
      abandonIngestsAfterMs: HOUR,
      // after GC listed the ingests (old), a writer resumes it and makes progress
      afterMark: async () => { w = await cs.writer({ ref: 'resumed-during-gc' }); await w.write(data.subarray(15)); },
    });
    await w!.commit(data.length); // its bytes are all still there
    expect((await cs.info((await import('../../src/oci/index.js')).digestOf(data))).size).toBe(data.length);
  });

  it('protecting a digest in a lease is refused while its file is being deleted', async () => {
    const x = await putBlob(cs, 'doomed');
    md.content.recordBlob(x.digest, x.size);
    const l = md.leases.create().id;
    let during: unknown;
    await collectGarbage(md, { content: cs }, {
      beforeFileDeletes: () => { try { md.leases.addResource(l, { type: 'content', id: x.digest }); } catch (e) { during = e; } },
    });
    expect(isStowageError(during, 'Unavailable')).toBe(true);
    md.leases.addResource(l, { type: 'content', id: x.digest }); // fine afterwards
  });

  it('finishes the work of a collector that died with tombstones standing', async () => {
    const young = await putBlob(cs, 'condemned but young');
    const wanted = await putBlob(cs, 'condemned, then wanted');
    const rewritten = await putBlob(cs, 'condemned, then written again');
    const raw = (md as unknown as { db: { db: import('better-sqlite3').Database } }).db.db;
    const now = Date.now();
    raw.prepare('INSERT INTO blob_tombstones (digest, created_at) VALUES (?, ?), (?, ?), (?, ?)').run(young.digest, now, wanted.digest, now, rewritten.digest, now);
    const hostname = (await import('node:os')).hostname();
    // While the holder lives, its tombstones turn writers away (it may be deleting those files now)...
    raw.prepare(`INSERT INTO gc_lock VALUES (1, 'live', ?, ?, ?)`).run(process.pid, hostname, now);
    expect(() => md.content.recordBlob(rewritten.digest, rewritten.size)).toThrow(/garbage collected/);
    // ...once it is dead nobody deletes anything until the next collector, which re-judges each one.
    raw.prepare(`UPDATE gc_lock SET owner = 'dead', pid = 2147483646 WHERE id = 1`).run();
    md.content.recordBlob(rewritten.digest, rewritten.size);
    md.images.create({ name: 'wants-it', target: { mediaType: INDEX, ...wanted } });
    md.images.create({ name: 'wants-the-rewritten', target: { mediaType: INDEX, ...rewritten } });
    const r = await collectGarbage(md, { content: cs }, { gracePeriodMs: HOUR }); // the dead holder's lock is taken over
    expect(r.removed.blobs).toBe(1);
    expect(exists(blobPath(md, young.digest))).toBe(false);
    expect(exists(blobPath(md, wanted.digest))).toBe(true);
    expect(exists(blobPath(md, rewritten.digest))).toBe(true);
    md.content.recordBlob(wanted.digest, wanted.size); // its tombstone was lifted
    expect(raw.prepare('SELECT COUNT(*) AS n FROM blob_tombstones').get()).toEqual({ n: 0 });
  });
});
