// Registry benchmark: skopeo pulling the 5-layer benchmark image of bench/pull.ts (5 gzip layers of
// ~80 MB tar, cut from this machine's files) from `stowage serve --registry` against pulling the same
// image from Debian's docker-registry 2.8, in the same run, interleaved (alternating which goes first); then 8 skopeo clients at once
// against each (alternating which goes first): wall time, throughput, the server's CPU time and peak RSS
// (VmHWM of the server process).
// Both servers run as their own processes on loopback and serve from --dir (default /dev/shm).
//
//   npx tsx bench/registry.ts [--reps=3] [--dir=/dev/shm] [--layers=5] [--layer-mb=80] [--clients=8]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pushWithSkopeo } from '../test/harness/images.js';
import { startRegistry, type Registry } from '../test/harness/registry.js';
import { buildBenchImage } from './support/pull-image.js';
import { timed } from './support/pull-peers.js';

const projectRoot = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const reps = Number(arg('reps') ?? 3);
const layerCount = Number(arg('layers') ?? 5);
const layerBytes = Number(arg('layer-mb') ?? 80) * 1e6;
const clients = Number(arg('clients') ?? 8);
const stowageBin = path.join(projectRoot, 'bin', 'stowage.js');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const secs = (ms: number) => (ms / 1000).toFixed(2);
const peakRssMiB = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
/** CPU seconds (user + system) a process has used so far. */
const cpuSeconds = (pid: number) => { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

const cleanups: Array<() => Promise<void> | void> = [];
async function cleanup(): Promise<void> {
  for (const f of cleanups.splice(0).reverse()) {
    try { await f(); } catch (e) { console.error(`cleanup: ${(e as Error).message}`); }
  }
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { void cleanup().finally(() => process.exit(130)); });

/** `stowage serve --registry 127.0.0.1:0` over `root`, as its own process. */
async function serveStowage(root: string): Promise<{ child: ChildProcess; host: string }> {
  const child = spawn(stowageBin, ['--root', root, 'serve', '--registry', '127.0.0.1:0', '--quiet'], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let out = '';
  const host = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => { out += c.toString(); const m = /Serving registry at http:\/\/(\S+)/.exec(out); if (m) resolve(m[1]!); });
    child.once('exit', (code) => reject(new Error(`stowage serve exited with ${code}: ${out}`)));
  });
  return { child, host };
}

async function skopeoPull(host: string, dest: string, scratch: string) {
  return timed('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${host}/bench/large:latest`, `oci:${dest}:bench`], scratch);
}

async function main(): Promise<void> {
  const base = fs.mkdtempSync(path.join(arg('dir') ?? '/dev/shm', 'stowage-bench-registry-'));
  cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  const img = await buildBenchImage(path.join(base, 'layout'), { layers: layerCount, layerBytes, tag: 'latest' });
  const gzBytes = img.layers.reduce((n, l) => n + l.size, 0);
  console.log(`image: ${img.layers.length} layers, ${(img.tarBytes / 1e6).toFixed(0)} MB tar, ${(gzBytes / 1e6).toFixed(0)} MB gzip`);

  const tmpdir = process.env.TMPDIR;
  process.env.TMPDIR = base;
  let reg: Registry;
  try { reg = await startRegistry({ storageDir: path.join(base, 'registry') }); } finally {
    if (tmpdir === undefined) delete process.env.TMPDIR; else process.env.TMPDIR = tmpdir;
  }
  cleanups.push(() => reg.stop());
  await pushWithSkopeo(img.layout, `docker://${reg.host}/bench/large:latest`, { tag: 'latest' });
  fs.rmSync(img.layout, { recursive: true, force: true });

  // The same image in a stowage store (pulled from the registry), served by `stowage serve`.
  const root = path.join(base, 'stowage');
  await timed(stowageBin, ['--root', root, 'pull', '-q', `${reg.host}/bench/large:latest`], base, { cwd: projectRoot });
  const served = await serveStowage(root);
  console.log(`docker-registry at ${reg.host} (pid ${reg.pid}), stowage serve at ${served.host} (pid ${served.child.pid})`);
  const idle = { stowage: rssMiB(served.child.pid!), registry: rssMiB(reg.pid) };

  // One pull from each, not measured: both servers and the page cache warm (node's JIT, Go's nothing).
  for (const host of [served.host, reg.host]) {
    await skopeoPull(host, path.join(base, 'warm-up'), base);
    fs.rmSync(path.join(base, 'warm-up'), { recursive: true, force: true });
  }
  const times = { stowage: [] as number[], registry: [] as number[] };
  const clientRss = { stowage: [] as number[], registry: [] as number[] };
  for (let i = 0; i < reps; i++) {
    const pair = [['stowage', served.host], ['registry', reg.host]] as const;
    for (const [who, host] of i % 2 === 0 ? pair : [...pair].reverse()) {
      const dest = path.join(base, `pull-${who}-${i}`);
      const t = await skopeoPull(host, dest, base);
      times[who].push(t.ms);
      clientRss[who].push(t.maxRssMiB);
      fs.rmSync(dest, { recursive: true, force: true });
    }
    console.log(`  rep ${i + 1}/${reps}: from stowage ${secs(times.stowage.at(-1)!)} s, from docker-registry ${secs(times.registry.at(-1)!)} s`);
  }
  const single = { stowage: peakRssMiB(served.child.pid!), registry: peakRssMiB(reg.pid) };

  // N clients at once, against each server in turn, alternating which goes first; medians.
  const manyTimes = { stowage: [] as number[], registry: [] as number[] };
  const manyCpu = { stowage: [] as number[], registry: [] as number[] };
  const pids = { stowage: served.child.pid!, registry: reg.pid };
  for (let i = 0; i < reps; i++) {
    const order = i % 2 === 0 ? (['stowage', 'registry'] as const) : (['registry', 'stowage'] as const);
    for (const who of order) {
      const host = who === 'stowage' ? served.host : reg.host;
      const c0 = cpuSeconds(pids[who]);
      const t0 = performance.now();
      await Promise.all(Array.from({ length: clients }, (_, c) => skopeoPull(host, path.join(base, `many-${who}-${c}`), base)));
      manyTimes[who].push(performance.now() - t0);
      manyCpu[who].push(cpuSeconds(pids[who]) - c0);
      for (let c = 0; c < clients; c++) fs.rmSync(path.join(base, `many-${who}-${c}`), { recursive: true, force: true });
    }
    console.log(`  ${clients} clients, rep ${i + 1}/${reps}: stowage ${secs(manyTimes.stowage.at(-1)!)} s, docker-registry ${secs(manyTimes.registry.at(-1)!)} s`);
  }
  const concurrent = { stowage: median(manyTimes.stowage), registry: median(manyTimes.registry) };
  const cpu = { stowage: median(manyCpu.stowage), registry: median(manyCpu.registry) };
  const peak = { stowage: peakRssMiB(served.child.pid!), registry: peakRssMiB(reg.pid) };

  const mb = gzBytes / 1e6;
  const sMed = median(times.stowage);
  const rMed = median(times.registry);
  console.log(`\nskopeo copy docker://… → oci: of ${layerCount} layers, ${mb.toFixed(0)} MB gzip; stores in ${arg('dir') ?? '/dev/shm'}; ${reps} reps, interleaved; `
    + `load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (a shared machine: figures move with the other work on it)`);
  console.log(`${'server'.padEnd(22)} ${'median s'.padStart(9)} ${'MB/s'.padStart(7)} ${'server RSS idle/1 client MiB'.padStart(29)} ${`${clients} clients s`.padStart(12)} ${'MB/s total'.padStart(11)} ${'server peak RSS MiB'.padStart(20)} ${'server CPU s'.padStart(13)}`);
  for (const [who, name] of [['stowage', 'stowage serve'], ['registry', 'docker-registry 2.8']] as const) {
    const med = median(times[who]);
    console.log(`${name.padEnd(22)} ${secs(med).padStart(9)} ${(mb / (med / 1000)).toFixed(0).padStart(7)} ${`${idle[who].toFixed(0)} / ${single[who].toFixed(0)}`.padStart(29)} `
      + `${secs(concurrent[who]).padStart(12)} ${((mb * clients) / (concurrent[who] / 1000)).toFixed(0).padStart(11)} ${peak[who].toFixed(0).padStart(20)} ${cpu[who].toFixed(2).padStart(13)}`);
  }
  console.log(`stowage ÷ docker-registry: one client ${(sMed / rMed).toFixed(2)}× (target ≤ 1.00×), ${clients} clients ${(concurrent.stowage / concurrent.registry).toFixed(2)}×`);
  console.log(`runs (s): stowage ${times.stowage.map(secs).join(', ')}; docker-registry ${times.registry.map(secs).join(', ')}; skopeo peak RSS ${median(clientRss.stowage).toFixed(0)} / ${median(clientRss.registry).toFixed(0)} MiB`);
}

try {
  await main();
} finally {
  await cleanup();
}
