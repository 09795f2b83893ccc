/**
 * Progress callbacks of the long operations that had only a signal: tag, commit, squash, createImage,
 * delete, prune, gc and check. Each assertion compares the messages with the operation's own result
 * (IDs, layer digests and sizes, the delete and prune reports, the GC counts), so a callback that is
 * never called, or called with other data, fails.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, openStowage, type Manifest, type ProgressEvent, type Stowage } from '../../src/index.js';

let work: string;
let store: Stowage;

/** A progress listener and what it was told. */
function recorder(): { events: ProgressEvent[]; onProgress: (e: ProgressEvent) => void } {
  const events: ProgressEvent[] = [];
  return { events, onProgress: (e) => { events.push(e); } };
}

async function manifestOf(ref: string): Promise<Manifest> {
  const image = await store.getImage(ref);
  return image.manifest!.manifestDoc();
}

const hex12 = (digest: string) => digest.slice('sha256:'.length, 'sha256:'.length + 12);

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-progress-'));
  store = await openStowage({ root: path.join(work, 'store') });
  const base = await buildImage({ layers: [{ files: { '/etc/base': 'base\n' } }, { files: { '/etc/second': 'two\n' } }] });
  await store.addImage(base, { ref: 'example.com/base:1' });
});

afterAll(async () => {
  await store?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('progress of operations that write or remove', () => {
  it('tag: one Tagged message with the new familiar name', async () => {
    const r = recorder();
    await store.tag('example.com/base:1', 'base:copy', { onProgress: r.onProgress });
    expect(r.events).toEqual([{ status: 'Tagged', id: 'base:copy' }]);
  });

  it('commit: Layer written with the new layer digest and size, then Created with the image ID', async () => {
    await store.createLayer(undefined, 'example.com/base:1', { name: 'w1' });
    fs.writeFileSync(path.join(await store.layerPath('w1'), 'added'), 'x'.repeat(5000));
    const r = recorder();
    const { id } = await store.commit('w1', { ref: 'committed:1', onProgress: r.onProgress });
    const top = (await manifestOf('committed:1')).layers.at(-1)!;
    expect(r.events).toEqual([
      { status: 'Layer written', id: hex12(top.digest), progressDetail: { current: top.size, total: top.size } },
      { status: 'Created', id },
    ]);
  });

  it('squash: the merged layer, then Created', async () => {
    const r = recorder();
    const { id } = await store.squash('committed:1', { ref: 'squashed:1', onProgress: r.onProgress });
    const layers = (await manifestOf('squashed:1')).layers;
    expect(layers).toHaveLength(1);
    expect(r.events).toEqual([
      { status: 'Layer written', id: hex12(layers[0]!.digest), progressDetail: { current: layers[0]!.size, total: layers[0]!.size } },
      { status: 'Created', id },
    ]);
  });

  it('createImage: a streamed layer written, a stored one already there, then Created', async () => {
    const dir = path.join(work, 'layer');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'hello'), 'hello\n');
    const tar = execFileSync('tar', ['--numeric-owner', '-C', dir, '-czf', '-', '.']);
    const base = await manifestOf('example.com/base:1');
    const baseCfg = await (await store.getImage('example.com/base:1')).manifest!.readConfig();
    const r = recorder();
    const { id } = await store.createImage(
      { architecture: baseCfg.architecture, os: baseCfg.os, rootfs: { type: 'layers', diff_ids: [] } },
      {
        ref: 'created:1', onProgress: r.onProgress,
        layers: [{ descriptor: base.layers[0]!, diffId: baseCfg.rootfs.diff_ids[0]! }, { stream: Readable.from([tar]) }],
      },
    );
    const layers = (await manifestOf('created:1')).layers;
    expect(layers.map((l) => l.digest)[0]).toBe(base.layers[0]!.digest);
    expect(r.events).toEqual([
      { status: 'Layer already exists', id: hex12(base.layers[0]!.digest), progressDetail: {} },
      { status: 'Layer written', id: hex12(layers[1]!.digest), progressDetail: { current: layers[1]!.size, total: layers[1]!.size } },
      { status: 'Created', id },
    ]);
  });

  it('delete: each Untagged and Deleted item of the answer, in order', async () => {
    await store.tag('created:1', 'created:2');
    const r = recorder();
    expect((await store.delete('created:2', { onProgress: r.onProgress }))).toEqual([{ Untagged: 'created:2' }]);
    expect(r.events).toEqual([{ status: 'Untagged', id: 'created:2' }]);

    const r2 = recorder();
    const answer = await store.delete('created:1', { onProgress: r2.onProgress });
    expect(answer.some((i) => i.Deleted !== undefined)).toBe(true);
    expect(r2.events).toEqual(answer.map((i) => (i.Untagged !== undefined ? { status: 'Untagged', id: i.Untagged } : { status: 'Deleted', id: i.Deleted })));
  });

  it('prune: Untagged per record, Collecting garbage, Deleted per image whose content went', async () => {
    // Two dangling images: createImage without a name.
    const cfg = await (await store.getImage('example.com/base:1')).manifest!.readConfig();
    const a = await store.createImage({ ...cfg, config: { Env: ['A=1'] } }, { parent: 'example.com/base:1' });
    const b = await store.createImage({ ...cfg, config: { Env: ['B=1'] } }, { parent: 'example.com/base:1' });
    const r = recorder();
    const report = await store.prune({ onProgress: r.onProgress });
    const untagged = (report.ImagesDeleted ?? []).filter((i) => i.Untagged !== undefined).map((i) => ({ status: 'Untagged', id: i.Untagged }));
    const deleted = (report.ImagesDeleted ?? []).filter((i) => i.Deleted !== undefined).map((i) => ({ status: 'Deleted', id: i.Deleted }));
    expect(untagged.map((u) => u.id).sort()).toEqual([a.id, b.id].sort());
    expect(deleted.map((d) => d.id).sort()).toEqual([a.id, b.id].sort());
    expect(r.events).toEqual([...untagged, { status: 'Collecting garbage' }, ...deleted]);
  });

  it('gc: the marked counts, then each removal, with the blob bytes adding up to what was reclaimed', async () => {
    // commit --squash leaves the unsquashed step behind, unnamed: garbage for the next collection.
    await store.createLayer(undefined, 'example.com/base:1', { name: 'w2' });
    fs.writeFileSync(path.join(await store.layerPath('w2'), 'more'), 'y'.repeat(3000));
    const c = recorder();
    await store.commit('w2', { ref: 'committed:squashed', squash: true, onProgress: c.onProgress });
    const written = c.events.filter((e) => e.status === 'Layer written').map((e) => e.id);
    expect(written).toHaveLength(2); // the step's layer, then the squashed one
    expect(c.events.at(-1)).toEqual({ status: 'Created', id: (await store.getImage('committed:squashed')).id });

    const r = recorder();
    const report = await store.gc({ onProgress: r.onProgress });
    const [marked, ...removals] = r.events;
    expect(marked!.status).toMatch(/^Marked for removal: (\d+) blobs, (\d+) snapshots, \d+ images, \d+ leases, \d+ ingests$/);
    const blobs = removals.filter((e) => e.status === 'Removed blob');
    expect(Number(/(\d+) blobs/.exec(marked!.status!)![1])).toBeGreaterThanOrEqual(blobs.length);
    expect(blobs).toHaveLength(report.blobsRemoved);
    expect(report.blobsRemoved).toBeGreaterThanOrEqual(3); // the step's manifest, config and layer
    expect(blobs.map((e) => hex12(e.id!))).toContain(written[0]);
    expect(blobs.reduce((n, e) => n + (e.progressDetail?.current ?? 0), 0)).toBe(report.bytesReclaimed);
    const snapshots = removals.filter((e) => e.status === 'Removed snapshot' || e.status === 'Removed snapshot directory');
    expect(snapshots).toHaveLength(report.snapshotsRemoved);
    expect(removals.every((e) => /^Removed (blob|snapshot|snapshot directory|lease|ingest|image record)$/.test(e.status!) && e.id)).toBe(true);
  });

  it('check: each phase as it starts, every blob verified, every image ID checked', async () => {
    const r = recorder();
    const report = await store.check({ onProgress: r.onProgress });
    expect(report.ok).toBe(true);
    const phases = r.events.filter((e) => e.id === undefined).map((e) => e.status);
    expect(phases).toEqual([
      'Checking database', 'Checking blobs', 'Checking references', 'Checking leases', 'Checking snapshot directories',
      'Checking images', 'Checking containers',
    ]);
    const blobFiles = fs.readdirSync(path.join(store.root, 'blobs', 'sha256')).map((h) => `sha256:${h}`).sort();
    const verified = r.events.filter((e) => e.status === 'Verified');
    expect(verified.map((e) => e.id).sort()).toEqual(blobFiles);
    expect(verified.map((e) => e.progressDetail)).toEqual(blobFiles.map((_, i) => ({ current: i + 1, total: blobFiles.length })));
    const images = r.events.filter((e) => e.status === 'Checking image').map((e) => e.id).sort();
    expect(images).toEqual([...new Set((await store.images({ all: true })).map((i) => i.Id))].sort());
  });
});
