// Content store benchmark: ingest+commit of a stream through the store, against `sha256sum` of the same
// bytes and a plain `cp` of the file (the physical limit), in one run, with ratios and peak RSS at two
// sizes (RSS must not grow with the blob). Also: resume cost (checkpoint vs full re-hash) and the raw
// speed of the savable (hash-wasm) SHA-256 against Node's.
//
//   npx tsx bench/content.ts [--sizes=256,1024] [--dir=/dev/shm] [--reps=3]
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openContentStore, type ResumeReport } from '../src/content/index.js';
import { SavableSha256 } from '../src/content/sha256.js';
import type { Digest } from '../src/oci/index.js';

const MiB = 1 << 20;
const self = fileURLToPath(import.meta.url);
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

interface IngestResult { ms: number; peakRssMiB: number; maxRssMiB: number; mode?: string }
interface ResumeResult { checkpoint: { ms: number; report: ResumeReport }; rehash: { ms: number; report: ResumeReport } }

/** Samples RSS every 10 ms; returns a stop function giving the peak in MiB. */
function rssSampler(): () => number {
  let peak = process.memoryUsage().rss;
  const t = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 10);
  return () => { clearInterval(t); return Math.max(peak, process.memoryUsage().rss) / MiB; };
}

async function childIngest(p: { root: string; src: string; digest: Digest; size: number; checkpointMinBytes?: number }): Promise<IngestResult> {
  const store = await openContentStore(p.root, p.checkpointMinBytes !== undefined ? { checkpointMinBytes: p.checkpointMinBytes } : {});
  const stop = rssSampler();
  const t0 = performance.now();
  const w = await store.writer({ ref: 'bench', desc: { size: p.size, digest: p.digest } });
  for await (const chunk of fs.createReadStream(p.src, { highWaterMark: MiB })) await w.write(chunk as Buffer);
  await w.commit(p.size, p.digest);
  const ms = performance.now() - t0;
  return { ms, peakRssMiB: stop(), maxRssMiB: process.resourceUsage().maxRSS / 1024 };
}

async function childResume(p: { root: string; src: string; partial: number; paced: boolean }): Promise<ResumeResult> {
  const reports: ResumeReport[] = [];
  const store = await openContentStore(p.root, { onResume: (r) => reports.push(r) });
  const w = await store.writer({ ref: 'resume' });
  let o = 0;
  for await (const chunk of fs.createReadStream(p.src, { highWaterMark: MiB, end: p.partial - 1 })) {
    await w.write(chunk as Buffer);
    o += (chunk as Buffer).length;
    if (p.paced && o % (8 * MiB) === 0) await new Promise((r) => setTimeout(r, 100)); // ~80 MB/s, a fast download
  }
  await w.close();
  let t0 = performance.now();
  await (await store.writer({ ref: 'resume' })).close();
  const checkpoint = { ms: performance.now() - t0, report: reports.at(-1)! };
  // the same resume without a checkpoint: containerd's full re-hash
  const dir = path.join(p.root, 'ingest', createHash('sha256').update('resume').digest('hex'));
  fs.rmSync(path.join(dir, 'hashstate'), { force: true });
  t0 = performance.now();
  const w3 = await store.writer({ ref: 'resume' });
  const rehash = { ms: performance.now() - t0, report: reports.at(-1)! };
  await w3.close();
  await store.abort('resume');
  return { checkpoint, rehash };
}

function runChild<T>(mode: string, params: unknown): T {
  const r = spawnSync(process.execPath, ['--import', 'tsx', self, `--child=${mode}`, JSON.stringify(params)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`child ${mode} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as T;
}

function timed(cmd: string, args: string[]): { ms: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  return { ms, stdout: r.stdout };
}

function makeSource(file: string, size: number): void {
  const key = randomBytes(32);
  const aes = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16));
  const zeros = Buffer.alloc(8 * MiB);
  const fd = fs.openSync(file, 'w');
  for (let o = 0; o < size; o += zeros.length) fs.writeSync(fd, aes.update(zeros.subarray(0, Math.min(zeros.length, size - o))));
  fs.closeSync(fd);
}

async function hashSpeeds(): Promise<{ nodeMBs: number; savableMBs: number }> {
  const buf = randomBytes(64 * MiB);
  let t0 = performance.now();
  const n = createHash('sha256');
  for (let o = 0; o < buf.length; o += MiB) n.update(buf.subarray(o, o + MiB));
  n.digest();
  const nodeMs = performance.now() - t0;
  t0 = performance.now();
  const t = await SavableSha256.create();
  for (let o = 0; o < buf.length; o += MiB) t.update(buf.subarray(o, o + MiB));
  t.hex();
  const savableMs = performance.now() - t0;
  return { nodeMBs: (64 * MiB) / 1e6 / (nodeMs / 1000), savableMBs: (64 * MiB) / 1e6 / (savableMs / 1000) };
}

const f1 = (n: number) => n.toFixed(1);
const mbs = (bytes: number, ms: number) => `${((bytes / 1e6) / (ms / 1000)).toFixed(0)} MB/s`;

async function main(): Promise<void> {
  const sizes = (arg('sizes') ?? '256,1024').split(',').map((s) => Number(s) * MiB);
  const reps = Number(arg('reps') ?? '3');
  const base = arg('dir') ?? (fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir());
  const work = fs.mkdtempSync(path.join(base, 'stowage-bench-'));
  try {
    console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; best of ${reps} runs each`);
    console.log(`content store bench: data in ${work} (${base === '/dev/shm' ? 'tmpfs: fsync is free, this measures CPU and copies' : 'disk'}), node ${process.version}, ${os.cpus().length} cpus`);
    const speeds = await hashSpeeds();
    console.log(`sha256 in-process: node crypto ${speeds.nodeMBs.toFixed(0)} MB/s, savable (hash-wasm) ${speeds.savableMBs.toFixed(0)} MB/s (node/savable = ${(speeds.nodeMBs / speeds.savableMBs).toFixed(1)}x)`);
    console.log('');
    console.log('size      sha256sum           cp                  store ingest+commit   no checkpointer       store/sha256sum  store/cp  peak RSS (ingest)');
    for (const size of sizes) {
      const src = path.join(work, 'src.bin');
      makeSource(src, size);
      // Each figure is the best of `reps` runs, interleaved, so that noise from other work on the
      // machine hits every contender alike.
      const best = { sum: Infinity, cp: Infinity };
      let digest = '' as Digest;
      let ing: IngestResult | undefined;
      let plain: IngestResult | undefined;
      const root = path.join(work, 'store');
      for (let rep = 0; rep < reps; rep++) {
        const sum = timed('sha256sum', [src]);
        best.sum = Math.min(best.sum, sum.ms);
        digest = `sha256:${sum.stdout.split(' ')[0]}` as Digest;
        const cp = timed('cp', [src, path.join(work, 'copy.bin')]);
        best.cp = Math.min(best.cp, cp.ms);
        fs.rmSync(path.join(work, 'copy.bin'));
        const i = runChild<IngestResult>('ingest', { root, src, digest, size });
        fs.rmSync(root, { recursive: true, force: true });
        if (!ing || i.ms < ing.ms) ing = { ...i, peakRssMiB: Math.max(i.peakRssMiB, ing?.peakRssMiB ?? 0), maxRssMiB: Math.max(i.maxRssMiB, ing?.maxRssMiB ?? 0) };
        const p = runChild<IngestResult>('ingest', { root, src, digest, size, checkpointMinBytes: Number.MAX_SAFE_INTEGER });
        fs.rmSync(root, { recursive: true, force: true });
        if (!plain || p.ms < plain.ms) plain = { ...p, peakRssMiB: Math.max(p.peakRssMiB, plain?.peakRssMiB ?? 0) };
      }
      const sum = { ms: best.sum };
      const cp = { ms: best.cp };
      ing = ing!;
      plain = plain!;
      console.log(
        `${String(size / MiB).padStart(5)} MiB ${`${f1(sum.ms)} ms`.padEnd(10)}${mbs(size, sum.ms).padEnd(10)}${`${f1(cp.ms)} ms`.padEnd(10)}${mbs(size, cp.ms).padEnd(10)}` +
        `${`${f1(ing.ms)} ms`.padEnd(11)}${mbs(size, ing.ms).padEnd(11)}${`${f1(plain.ms)} ms`.padEnd(11)}${mbs(size, plain.ms).padEnd(11)}` +
        `${`${(ing.ms / sum.ms).toFixed(2)}x`.padEnd(17)}${`${(ing.ms / cp.ms).toFixed(2)}x`.padEnd(10)}` +
        `${f1(ing.peakRssMiB)} MiB (maxRSS ${f1(ing.maxRssMiB)}; no checkpointer ${f1(plain.peakRssMiB)})`,
      );
      fs.rmSync(src);
    }

    // Resume: a partial ingest closed and reopened, with the saved checkpoint and without it.
    const partial = 384 * MiB;
    const src = path.join(work, 'src.bin');
    makeSource(src, partial);
    console.log('');
    console.log(`resume of a ${partial / MiB} MiB partial ingest (reopen time):`);
    for (const paced of [true, false]) {
      const root = path.join(work, 'store');
      const r = runChild<ResumeResult>('resume', { root, src, partial, paced });
      fs.rmSync(root, { recursive: true, force: true });
      console.log(
        `  written ${paced ? 'at ~80 MB/s (download-like, checkpointer follows)' : 'at full speed (> 100 MB/s: no checkpointer) '}: ` +
        `with hashstate ${f1(r.checkpoint.ms)} ms (${r.checkpoint.report.mode}, hashed ${f1(r.checkpoint.report.hashedBytes / MiB)} MiB)  ` +
        `vs full re-hash ${f1(r.rehash.ms)} ms (${r.rehash.report.mode}, hashed ${f1(r.rehash.report.hashedBytes / MiB)} MiB)  ` +
        `= ${(r.rehash.ms / Math.max(r.checkpoint.ms, 0.01)).toFixed(0)}x faster`,
      );
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const child = arg('child');
if (child === 'ingest') {
  console.log(JSON.stringify(await childIngest(JSON.parse(process.argv.at(-1)!))));
  process.exit(0);
} else if (child === 'resume') {
  console.log(JSON.stringify(await childResume(JSON.parse(process.argv.at(-1)!))));
  process.exit(0);
} else {
  await main();
}
