// Metadata database bench: image-record writes and lookups with 10,000 images, and a GC over
// 10,000 real blob files with half of them reachable. The reference line is raw SQLite on the same
// disk with the same pragmas (no peer tool applies: containerd's bbolt is not reachable without a daemon).
//   npx tsx bench/metadata.ts [--n=10000] [--dir=/path]   (default: a fresh dir under os.tmpdir())
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { openContentStore } from '../src/content/index.js';
import { collectGarbage, labelStoreFor, openMetadata } from '../src/metadata/index.js';
import { internalsOf } from '../src/metadata/store.js';
import { digestOf, type Digest } from '../src/oci/index.js';

const arg = (k: string) => process.argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
const N = Number(arg('n') ?? 10_000);
const base = fs.mkdtempSync(path.join(arg('dir') ?? os.tmpdir(), 'stowage-bench-md-'));

let peakRss = 0;
const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 20);
const sample = () => { peakRss = Math.max(peakRss, process.memoryUsage().rss); };

function time<T>(fn: () => T): [T, number] {
  const t = performance.now();
  const r = fn();
  sample();
  return [r, performance.now() - t];
}
async function timeAsync<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await fn();
  sample();
  return [r, performance.now() - t];
}
const rate = (n: number, ms: number) => `${Math.round(n / (ms / 1000)).toLocaleString('en-US').padStart(9)} ops/s`;
const row = (what: string, n: number, ms: number, ref?: number) =>
  console.log(`${what.padEnd(44)} ${String(n).padStart(6)} in ${ms.toFixed(0).padStart(6)} ms  ${rate(n, ms)}${ref ? `   ${(ms / ref).toFixed(1)}x the time of raw sqlite` : ''}`);

const M = 'application/vnd.oci.image.manifest.v1+json';
const fakeDigest = (i: number): Digest => `sha256:${i.toString(16).padStart(64, '0')}`;

try {
  console.log(`metadata bench: n=${N}, dir=${base} (${process.platform}, node ${process.version})`);

  // Reference: raw SQLite, same pragmas, a two-column insert.
  const rawDb = new Database(path.join(base, 'raw.db'));
  rawDb.pragma('journal_mode = WAL');
  rawDb.pragma('synchronous = NORMAL');
  rawDb.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL)');
  const ins = rawDb.prepare('INSERT INTO t VALUES (?, ?)');
  const begin = rawDb.prepare('BEGIN IMMEDIATE');
  const commit = rawDb.prepare('COMMIT');
  const [, rawOne] = time(() => { for (let i = 0; i < N; i++) { begin.run(); ins.run(`a${i}`, 'x'.repeat(200)); commit.run(); } });
  const [, rawBatch] = time(() => rawDb.transaction(() => { for (let i = 0; i < N; i++) ins.run(`b${i}`, 'x'.repeat(200)); }).immediate());
  const get = rawDb.prepare('SELECT v FROM t WHERE k = ?');
  const [, rawGet] = time(() => { for (let i = 0; i < N; i++) get.get(`a${i}`); });
  rawDb.close();
  row('raw sqlite insert, one txn each (reference)', N, rawOne);
  row('raw sqlite insert, one txn (reference)', N, rawBatch);
  row('raw sqlite point lookups (reference)', N, rawGet);

  // Image records through the store.
  const md = openMetadata(path.join(base, 'store'));
  const rec = (i: number, p: string) => ({ name: `registry.example/${p}/app-${i}:v1`, target: { mediaType: M, digest: fakeDigest(i), size: 1000 + i }, labels: { 'org.example/build': String(i) } });
  const [, oneEach] = time(() => { for (let i = 0; i < N; i++) md.images.create(rec(i, 'single')); });
  const [, batched] = time(() => md.batch(() => { for (let i = 0; i < N; i++) md.images.create(rec(i, "batch")); }));
  const [, lookups] = time(() => { for (let i = 0; i < N; i++) md.images.get(`registry.example/single/app-${i}:v1`); });
  const [all, listMs] = time(() => md.images.list());
  const [filtered, filterMs] = time(() => md.images.list('name~=^registry\\.example/batch/app-1'));
  row('image create, one txn each', N, oneEach, rawOne);
  row('image create, one batched txn', N, batched, rawBatch);
  row('image get by name', N, lookups, rawGet);
  console.log(`${'image list (all)'.padEnd(44)} ${String(all.length).padStart(6)} in ${listMs.toFixed(0).padStart(6)} ms`);
  console.log(`${'image list (regexp filter)'.padEnd(44)} ${String(filtered.length).padStart(6)} in ${filterMs.toFixed(0).padStart(6)} ms`);
  md.close();

  // GC over N real blobs, half reachable: N/200 images, each a manifest labelling 99 layers.
  const gcRoot = path.join(base, 'gc');
  const gmd = openMetadata(gcRoot);
  const cs = await openContentStore(path.join(gcRoot, 'content'), { labels: labelStoreFor(gmd) });
  const [, setupMs] = await timeAsync(async () => {
    const perImage = 100;
    const reachable = Math.floor(N / 2);
    const blobs: { digest: Digest; size: number }[] = [];
    const writeOne = async (i: number) => {
      const bytes = Buffer.from(`blob ${i} ${'y'.repeat(1024)}`);
      const digest = digestOf(bytes);
      const w = await cs.writer({ ref: `bench-${i}` });
      await w.write(bytes);
      await w.commit(bytes.length, digest);
      blobs[i] = { digest, size: bytes.length };
    };
    for (let i = 0; i < N; i += 32) await Promise.all(Array.from({ length: Math.min(32, N - i) }, (_, j) => writeOne(i + j)));
    internalsOf(gmd).db.write(() => {
      for (const b of blobs) gmd.content.recordBlob(b.digest, b.size);
      for (let img = 0; img * perImage < reachable; img++) {
        const group = blobs.slice(img * perImage, Math.min((img + 1) * perImage, reachable));
        const [manifest, ...layers] = group;
        if (!manifest) break;
        layers.forEach((l, j) => gmd.content.setLabel(manifest.digest, `containerd.io/gc.ref.content.l.${j}`, l.digest));
        gmd.images.create({ name: `gc/app-${img}:v1`, target: { mediaType: M, ...manifest } });
      }
    });
  });
  console.log(`gc setup: ${N} blobs written through the content store and recorded in ${(setupMs / 1000).toFixed(1)} s`);
  const [report, gcMs] = await timeAsync(() => collectGarbage(gmd, { content: cs }, { gracePeriodMs: 0 }));
  const d = report.durations;
  console.log(`${'gc: removed'.padEnd(44)} ${String(report.removed.blobs).padStart(6)} blobs, ${(report.bytesReclaimed / 1024 / 1024).toFixed(1)} MiB in ${gcMs.toFixed(0)} ms` +
    `  (${Math.round(report.removed.blobs / (gcMs / 1000)).toLocaleString('en-US')} blobs/s)`);
  console.log(`${"gc: phases".padEnd(44)} scan ${d.scanMs.toFixed(0)} ms, mark ${d.markMs.toFixed(0)} ms, record sweep ${d.sweepMs.toFixed(0)} ms, files ${d.contentMs.toFixed(0)} ms; ` +
    `longest write txn ${d.longestWriteTxMs.toFixed(1)} ms (writers wait at most this long)`);
  const [again, gc2Ms] = await timeAsync(() => collectGarbage(gmd, { content: cs }, { gracePeriodMs: 0 }));
  console.log(`${'gc: second pass (nothing to do)'.padEnd(44)} ${String(again.removed.blobs).padStart(6)} blobs in ${gc2Ms.toFixed(0)} ms (mark ${again.durations.markMs.toFixed(0)} ms)`);
  gmd.close();
  sample();
  console.log(`peak rss ${(peakRss / 1024 / 1024).toFixed(0)} MiB`);
} finally {
  clearInterval(sampler);
  fs.rmSync(base, { recursive: true, force: true });
}
