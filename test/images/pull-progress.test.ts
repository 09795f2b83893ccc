/**
 * The progress of a pull, against docker's observable behaviour, on a real docker-registry (reached
 * through the harness's loopback proxy, which counts the bytes it serves):
 * - the exact shape of the pull stream: "Pulling from", layer lines, Digest and Status, with docker's fields;
 * - a blob used twice by one manifest is fetched and reported once;
 * - a re-pull after an interrupted pull: one terminal line per layer, resumed downloads, little re-fetched.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage, type Stowage } from '../../src/index.js';
import type { ProgressEvent } from '../../src/images/index.js';
import { pushWithSkopeo } from '../harness/images.js';
import { startFaultProxy, type FaultProxy } from '../harness/proxy.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { filesFor, writeOciLayout, type GenImage } from './gen.js';

let registry: Registry;
let proxy: FaultProxy;
let work: string;
let two: GenImage; // two small layers
let base: GenImage; // the first layer of `two` alone
let big: GenImage; // a big incompressible layer, then a small one
let dup: GenImage; // the same layer blob twice, with another between
let n = 0;

const tmp = (): string => fs.mkdtempSync(path.join(work, `t${n++}-`));
/** Pulls go through the proxy (same registry storage), so its byte counts are what the client fetched. */
const ref = (name: string): string => `${proxy.host}/${name}`;
const TERMINAL = new Set(['Already exists', 'Pull complete']);
const id12 = (digest: string): string => digest.slice(7, 19);

function collect(): { events: ProgressEvent[]; onProgress: (e: ProgressEvent) => void } {
  const events: ProgressEvent[] = [];
  return { events, onProgress: (e) => { events.push(structuredClone(e)); } };
}

function statusesOf(events: ProgressEvent[], id: string): string[] {
  return events.filter((e) => e.id === id).map((e) => e.status!);
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-pull-progress-'));
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.url);
  const baseLayer = filesFor('polish-base');
  two = await writeOciLayout(path.join(work, 'two'), [{ layers: [baseLayer, filesFor('polish-top')], created: '2024-05-01T00:00:00Z' }], '1');
  base = await writeOciLayout(path.join(work, 'base'), [{ layers: [baseLayer], created: '2024-04-01T00:00:00Z' }], '1');
  big = await writeOciLayout(path.join(work, 'big'), [{
    layers: [[{ path: 'big.bin', content: randomBytes(8 << 20) }], filesFor('polish-small')], created: '2024-06-01T00:00:00Z',
  }], '1');
  const again = filesFor('polish-dup');
  dup = await writeOciLayout(path.join(work, 'dup'), [{ layers: [again, filesFor('polish-mid'), again], created: '2024-07-01T00:00:00Z' }], '1');
  const push = (dir: string, name: string) => pushWithSkopeo(dir, `docker://${registry.host}/${name}`, { tag: name.split(':')[1]! });
  await Promise.all([
    push(two.dir, 'zzz/app:1'), push(two.dir, 'shape/app:1'),
    push(base.dir, 'base:1'), push(big.dir, 'big:1'), push(dup.dir, 'dup:1'),
  ]);
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('pull stream shape (the JSON messages docker\'s pull writes)', () => {
  let s: Stowage;
  beforeAll(async () => { s = await openStowage({ root: path.join(tmp(), 'store') }); });
  afterAll(async () => { await s?.close(); });

  it('"Pulling from" carries the tag as id and no progressDetail; layer lines, Digest and Status have docker\'s fields', async () => {
    const p = collect();
    await s.pull(ref('shape/app:1'), { onProgress: p.onProgress });
    const ev = p.events;
    expect(ev[0]).toStrictEqual({ status: 'Pulling from shape/app', id: '1' });
    expect(ev.slice(-2)).toStrictEqual([
      { status: `Digest: ${two.target.digest}` },
      { status: `Status: Downloaded newer image for ${ref('shape/app:1')}` },
    ]);
    const layers = two.manifests[0]!.layers;
    const ids = layers.map((l) => id12(l.digest));
    for (const e of ev.slice(1, -2)) {
      // Every line in between is a layer's: a 12-hex id and a progressDetail, nothing else.
      expect(ids).toContain(e.id);
      expect(Object.keys(e).sort()).toEqual(['id', 'progressDetail', 'status']);
      if (e.status === 'Downloading' || e.status === 'Extracting') {
        expect(e.progressDetail).toStrictEqual({ current: expect.any(Number), total: expect.any(Number) });
      } else {
        expect(['Pulling fs layer', 'Download complete', 'Pull complete']).toContain(e.status);
        expect(e.progressDetail).toStrictEqual({});
      }
    }
    layers.forEach((l, i) => {
      const mine = statusesOf(ev, ids[i]!);
      expect(mine[0]).toBe('Pulling fs layer');
      expect(mine.filter((x) => TERMINAL.has(x))).toEqual(['Pull complete']);
      expect(mine[mine.length - 1]).toBe('Pull complete');
      const dl = ev.filter((e) => e.id === ids[i] && e.status === 'Downloading');
      expect(dl.length).toBeGreaterThan(0);
      expect(dl[dl.length - 1]!.progressDetail).toStrictEqual({ current: l.size, total: l.size });
      expect(mine.indexOf('Download complete')).toBeGreaterThan(mine.indexOf('Downloading'));
      expect(mine.indexOf('Pull complete')).toBeGreaterThan(mine.indexOf('Download complete'));
    });
    // Every 'Pulling fs layer' comes before any layer's progress, as docker announces the layers first.
    const lastAnnounce = ev.map((e) => e.status).lastIndexOf('Pulling fs layer');
    expect(ev.slice(1, lastAnnounce + 1).every((e) => e.status === 'Pulling fs layer')).toBe(true);
  });

  it('pulling again: "Pulling from", Digest, "Image is up to date", and no layer lines', async () => {
    const p = collect();
    await s.pull(ref('shape/app:1'), { onProgress: p.onProgress });
    expect(p.events).toStrictEqual([
      { status: 'Pulling from shape/app', id: '1' },
      { status: `Digest: ${two.target.digest}` },
      { status: `Status: Image is up to date for ${ref('shape/app:1')}` },
    ]);
  });

  it('a digest pull names the whole reference as id; a layer present before the pull is only "Already exists"', async () => {
    const s2 = await openStowage({ root: path.join(tmp(), 'store') });
    try {
      await s2.pull(ref('base:1'));
      const p = collect();
      const digestRef = `${ref('zzz/app')}@${two.target.digest}`;
      await s2.pull(digestRef, { onProgress: p.onProgress });
      expect(p.events[0]).toStrictEqual({ status: 'Pulling from zzz/app', id: digestRef });
      const [shared, top] = two.manifests[0]!.layers.map((l) => id12(l.digest));
      expect(statusesOf(p.events, shared!)).toEqual(['Already exists']);
      expect(statusesOf(p.events, top!).filter((x) => TERMINAL.has(x))).toEqual(['Pull complete']);
    } finally { await s2.close(); }
  });
});

describe('a blob used twice by one manifest', () => {
  it('is fetched once and reported once: one "Pulling fs layer" and one terminal line for its id', async () => {
    const s = await openStowage({ root: path.join(tmp(), 'store') });
    try {
      const [l0, l1, l2] = dup.manifests[0]!.layers;
      expect(l2!.digest).toBe(l0!.digest);
      const mark = proxy.requests.length;
      const p = collect();
      await s.pull(ref('dup:1'), { onProgress: p.onProgress });
      for (const l of [l0!, l1!]) {
        const mine = statusesOf(p.events, id12(l.digest));
        expect(mine.filter((x) => x === 'Pulling fs layer')).toHaveLength(1);
        expect(mine.filter((x) => x === 'Download complete')).toHaveLength(1);
        expect(mine.filter((x) => TERMINAL.has(x))).toEqual(['Pull complete']);
        expect(mine[mine.length - 1]).toBe('Pull complete');
      }
      expect(proxy.requests.slice(mark).filter((q) => q.method === 'GET' && q.path.includes(`/blobs/${l0!.digest}`))).toHaveLength(1);
      const i = await s.inspect(ref('dup:1'));
      expect(i.RootFS.Layers).toHaveLength(3);
      const dir = path.join(tmp(), 'co');
      await s.checkout(ref('dup:1'), dir);
      expect(fs.existsSync(path.join(dir, 'd-polish-dup', 'f0.txt'))).toBe(true);
      expect((await s.check()).ok).toBe(true);
    } finally { await s.close(); }
  });
});

/** Pulls `big:1` and aborts once the small layer is downloaded and the big one is partway. */
async function interruptBigPull(s: Stowage) {
  const [bigLayer, smallLayer] = big.manifests[0]!.layers as [GenImage['manifests'][0]['layers'][0], GenImage['manifests'][0]['layers'][0]];
  const bigId = id12(bigLayer.digest);
  const smallId = id12(smallLayer.digest);
  // Interrupt once the small layer is downloaded (its unpack waits for the big one) and the big one is
  // partway; the big one's answer is held back until the small one is complete.
  let releaseBig!: () => void;
  const smallComplete = new Promise<void>((r) => { releaseBig = r; });
  proxy.addFault({ method: 'GET', path: bigLayer.digest, fault: { kind: 'hold', until: smallComplete } });
  const ctrl = new AbortController();
  let smallDone = false;
  let bigAt = 0;
  const first = collect();
  const maybeAbort = () => { if (smallDone && bigAt > 0 && !ctrl.signal.aborted) ctrl.abort(); };
  await expect(s.pull(ref('big:1'), {
    signal: ctrl.signal,
    onProgress: (e) => {
      first.onProgress(e);
      if (e.id === smallId && e.status === 'Download complete') { smallDone = true; releaseBig(); }
      const cur = e.progressDetail?.current ?? 0;
      if (e.id === bigId && e.status === 'Downloading' && cur > 0 && cur < bigLayer.size) bigAt = cur;
      maybeAbort();
    },
  })).rejects.toMatchObject({ code: 'Aborted' });
  expect(bigAt).toBeGreaterThan(0);
  expect(statusesOf(first.events, bigId)).not.toContain('Download complete');
  return { bigLayer, smallLayer, bigId, smallId };
}

describe('re-pull after an interrupted pull', () => {
  it('each layer ends with exactly one terminal line; the resumed layer continues from its offset and re-fetches little', async () => {
    const s = await openStowage({ root: path.join(tmp(), 'store') });
    try {
      const { bigLayer, smallLayer, bigId, smallId } = await interruptBigPull(s);

      const mark = proxy.requests.length;
      const again = collect();
      const r = await s.pull(ref('big:1'), { onProgress: again.onProgress });
      expect(r).toMatchObject({ id: big.target.digest, updated: true });
      for (const id of [bigId, smallId]) {
        const mine = statusesOf(again.events, id);
        expect(mine[0], id).toBe('Pulling fs layer');
        expect(mine.filter((x) => TERMINAL.has(x)), id).toEqual(['Pull complete']);
        expect(mine[mine.length - 1], id).toBe('Pull complete');
        expect(mine, id).toContain('Download complete');
      }
      // The small layer was fetched by the first pull: no download, but it is unpacked now.
      expect(statusesOf(again.events, smallId)).not.toContain('Downloading');
      expect(statusesOf(again.events, smallId)).toContain('Extracting');
      // The big one continues from what the first pull wrote.
      const dl = again.events.filter((e) => e.id === bigId && e.status === 'Downloading');
      expect(dl[0]!.progressDetail!.current).toBeGreaterThan(0);
      expect(dl[dl.length - 1]!.progressDetail).toStrictEqual({ current: bigLayer.size, total: bigLayer.size });
      const refetched = proxy.requests.slice(mark).filter((q) => q.path.includes(bigLayer.digest)).reduce((a, q) => a + q.bytesSent, 0);
      expect(refetched).toBeGreaterThan(0);
      expect(refetched).toBeLessThan(bigLayer.size);
      expect(refetched).toBe(bigLayer.size - dl[0]!.progressDetail!.current!);
      expect(proxy.requests.slice(mark).some((q) => q.path.includes(smallLayer.digest))).toBe(false);

      const dir = path.join(tmp(), 'co');
      await s.checkout(ref('big:1'), dir);
      expect(fs.statSync(path.join(dir, 'big.bin')).size).toBe(8 << 20);
      expect((await s.check()).ok).toBe(true);
    } finally { await s.close(); }
  });
});

describe('re-pull after an interrupted pull, from a registry that ignores Range', () => {
  it('says so on the layer, downloads it again from byte 0, and completes with the right content', async () => {
    const s = await openStowage({ root: path.join(tmp(), 'store') });
    try {
      const { bigLayer, bigId } = await interruptBigPull(s);
      proxy.addFault({ method: 'GET', path: bigLayer.digest, fault: { kind: 'ignoreRange' } });
      const mark = proxy.requests.length;
      const again = collect();
      await s.pull(ref('big:1'), { onProgress: again.onProgress });
      const mine = statusesOf(again.events, bigId);
      expect(mine.some((x) => /ignored the Range request/.test(x))).toBe(true);
      expect(mine.filter((x) => TERMINAL.has(x))).toEqual(['Pull complete']);
      const refetched = proxy.requests.slice(mark).filter((q) => q.path.includes(bigLayer.digest)).reduce((a, q) => a + q.bytesSent, 0);
      expect(refetched).toBe(bigLayer.size);
      expect((await s.check()).ok).toBe(true);
    } finally { await s.close(); }
  });
});
