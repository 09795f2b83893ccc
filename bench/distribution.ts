// Registry pull benchmark: a large multi-layer image (≈150 MB gzip, 5 layers made from this machine's
// files in /dev/shm) pushed once to a local docker-registry, then in the same run:
//   1. our pull into a fresh content store  vs  `skopeo copy docker://… oci:DIR` (ratio, medians);
//   2. bytes re-downloaded after the connection drops at 50% of the largest layer (through the fault proxy);
//   3. peak RSS of both (ours sampled in a child process; skopeo via /usr/bin/time -v).
//
//   npx tsx bench/distribution.ts [--reps=3] [--dir=/dev/shm] [--concurrency=3]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openContentStore } from '../src/content/index.js';
import { RegistryClient } from '../src/distribution/index.js';
import { MediaType, type Descriptor } from '../src/oci/index.js';
import { startFaultProxy } from '../test/harness/proxy.js';
import { startRegistry } from '../test/harness/registry.js';

const MiB = 1 << 20;
const self = fileURLToPath(import.meta.url);
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

interface PullRun { ms: number; peakRssMiB: number; baseRssMiB: number; bytes: number }

function rssSampler(): () => number {
  let peak = process.memoryUsage().rss;
  const t = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 10);
  return () => { clearInterval(t); return Math.max(peak, process.memoryUsage().rss) / MiB; };
}

/** Child mode: one pull into a store, JSON on stdout; with killAtBytes it SIGKILLs itself once that many bytes are in. */
async function childPull(ref: string, root: string, concurrency: number, killAtBytes = 0): Promise<void> {
  const store = await openContentStore(root, process.env.BENCH_NO_CHECKPOINT ? { checkpointMinBytes: Number.MAX_SAFE_INTEGER } : {});
  const client = new RegistryClient({ concurrency });
  const baseRssMiB = process.memoryUsage().rss / MiB;
  const stop = rssSampler();
  const t0 = performance.now();
  const done = new Map<string, number>();
  let sum = 0;
  const onProgress = killAtBytes > 0 ? (e: { digest: string; current: number; phase: string }) => {
    if (e.phase !== 'downloading') return;
    sum += e.current - (done.get(e.digest) ?? 0);
    done.set(e.digest, e.current);
    if (sum >= killAtBytes) process.kill(process.pid, 'SIGKILL');
  } : undefined;
  const r = await client.pull(ref, store, onProgress ? { onProgress } : {});
  const ms = performance.now() - t0;
  const out: PullRun = { ms, peakRssMiB: stop(), baseRssMiB, bytes: r.stats.bytesDownloaded };
  process.stdout.write(JSON.stringify(out));
}

function runChild(ref: string, root: string, concurrency: number, killAtBytes = 0): Promise<PullRun | 'killed'> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', self, '--child', ref, root, String(concurrency), String(killAtBytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    p.on('exit', (code, signal) => {
      if (signal === 'SIGKILL' && killAtBytes > 0) resolve('killed');
      else if (code === 0) resolve(JSON.parse(out) as PullRun);
      else reject(new Error(`child pull failed: ${code ?? signal}`));
    });
  });
}

async function runFull(ref: string, root: string, concurrency: number): Promise<PullRun> {
  const r = await runChild(ref, root, concurrency);
  if (r === 'killed') throw new Error('unexpected kill');
  return r;
}

function runSkopeo(ref: string, dest: string): { ms: number; maxRssMiB: number } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-v', 'skopeo', 'copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dest}:bench`], { encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`skopeo failed: ${r.stderr}`);
  const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? 0);
  return { ms, maxRssMiB: kb / 1024 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(4 * MiB);
  for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  fs.closeSync(fd);
  return `sha256:${h.digest('hex')}`;
}

/** Builds the OCI layout: one gzip layer per directory of this machine. */
function buildImage(layout: string, dirs: string[]): { manifest: Descriptor; layers: Descriptor[] } {
  const blobs = path.join(layout, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const d of dirs) {
    const tmp = path.join(layout, 'layer.tmp');
    // tar | tee >(sha256sum) | pigz: the diffID and the blob in one pass.
    const out = execFileSync('bash', ['-c', `set -o pipefail; tar -C / -cf - ${d} 2>/dev/null | tee >(sha256sum > ${tmp}.diffid) | pigz -6 > ${tmp}`]);
    void out;
    const diff = `sha256:${fs.readFileSync(`${tmp}.diffid`, 'utf8').split(' ')[0]}`;
    const digest = sha256File(tmp);
    fs.renameSync(tmp, path.join(blobs, digest.slice(7)));
    fs.rmSync(`${tmp}.diffid`);
    layers.push({ mediaType: MediaType.OciLayerGzip, digest: digest as Descriptor['digest'], size: fs.statSync(path.join(blobs, digest.slice(7))).size });
    diffIds.push(diff);
  }
  const write = (obj: unknown, mediaType: string): Descriptor => {
    const b = Buffer.from(JSON.stringify(obj));
    const digest = `sha256:${createHash('sha256').update(b).digest('hex')}` as Descriptor['digest'];
    fs.writeFileSync(path.join(blobs, digest.slice(7)), b);
    return { mediaType, digest, size: b.length };
  };
  const config = write({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, config: {} }, MediaType.OciConfig);
  const manifest = write({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers }, MediaType.OciManifest);
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }));
  return { manifest, layers };
}

async function main(): Promise<void> {
  const reps = Number(arg('reps') ?? 3);
  const concurrency = Number(arg('concurrency') ?? 3);
  const base = fs.mkdtempSync(path.join(arg('dir') ?? '/dev/shm', 'stowage-bench-dist-'));
  const reg = await startRegistry({ storageDir: path.join(base, 'registry') });
  const proxy = await startFaultProxy(reg.url);
  try {
    let t0 = performance.now();
    const dirs = ['usr/share/doc', 'usr/lib/gcc', 'usr/share/man', 'usr/lib/python3', 'etc'].filter((d) => fs.existsSync(`/${d}`));
    const img = buildImage(path.join(base, 'layout'), dirs);
    const total = img.layers.reduce((n, l) => n + l.size, 0);
    console.log(`image: ${img.layers.length} layers, ${(total / 1e6).toFixed(1)} MB gzip (built in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    t0 = performance.now();
    execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--preserve-digests', `oci:${path.join(base, 'layout')}:v1`, `docker://${reg.host}/big:v1`]);
    console.log(`pushed once with skopeo in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const ref = `${reg.host}/big:v1`;

    const ours: PullRun[] = [];
    const theirs: Array<{ ms: number; maxRssMiB: number }> = [];
    for (let i = 0; i < reps; i++) {
      const root = path.join(base, `store-${i}`);
      ours.push(await runFull(ref, root, concurrency));
      fs.rmSync(root, { recursive: true, force: true });
      const dest = path.join(base, `skopeo-${i}`);
      theirs.push(runSkopeo(ref, dest));
      fs.rmSync(dest, { recursive: true, force: true });
    }
    const oMs = median(ours.map((r) => r.ms));
    const sMs = median(theirs.map((r) => r.ms));
    console.log('\npull of the whole image from the local registry (median of ' + reps + ')');
    console.log(`  stowage pull → content store   ${(oMs / 1000).toFixed(2)} s  ${(total / MiB / (oMs / 1000)).toFixed(0)} MiB/s  peak RSS ${median(ours.map((r) => r.peakRssMiB)).toFixed(0)} MiB (${median(ours.map((r) => r.baseRssMiB)).toFixed(0)} MiB before the pull: node + tsx)  concurrency ${concurrency}`);
    console.log(`  skopeo copy → oci: layout      ${(sMs / 1000).toFixed(2)} s  ${(total / MiB / (sMs / 1000)).toFixed(0)} MiB/s  max RSS ${median(theirs.map((r) => r.maxRssMiB)).toFixed(0)} MiB`);
    console.log(`  ratio stowage/skopeo           ${(oMs / sMs).toFixed(2)}×  (runs: ours ${ours.map((r) => (r.ms / 1000).toFixed(2)).join(', ')}; skopeo ${theirs.map((r) => (r.ms / 1000).toFixed(2)).join(', ')})`);

    // Interruption: the connection drops at 50% of the largest layer; the pull resumes with Range.
    const largest = [...img.layers].sort((a, b) => b.size - a.size)[0]!;
    proxy.addFault({ method: 'GET', path: largest.digest, fault: { kind: 'drop', afterBytes: Math.floor(largest.size / 2) } });
    const root = path.join(base, 'store-interrupted');
    const r = await runFull(`${proxy.host}/big:v1`, root, concurrency);
    const layerSent = proxy.bytesSentFor(largest.digest);
    console.log('\ninterruption 1: the connection drops at 50% of the largest layer (' + (largest.size / 1e6).toFixed(1) + ' MB), through the fault proxy');
    console.log(`  bytes re-downloaded for that layer   ${layerSent - largest.size} (${(100 * (layerSent - largest.size) / largest.size).toFixed(3)}% of it); pull ${(r.ms / 1000).toFixed(2)} s`);
    console.log('  (skopeo and podman restart an interrupted layer from 0: ' + (largest.size / 2 / 1e6).toFixed(1) + ' MB again here)');
    fs.rmSync(root, { recursive: true, force: true });

    // The pulling process is SIGKILLed at 50% of the image; a new process resumes from the ingests.
    const killRoot = path.join(base, 'store-killed');
    const served0 = proxy.bytesSentFor('/blobs/sha256:');
    const killed = await runChild(`${proxy.host}/big:v1`, killRoot, concurrency, Math.floor(total / 2));
    const served1 = proxy.bytesSentFor('/blobs/sha256:');
    // What the killed process left: committed blobs plus partial ingests.
    const left = await openContentStore(killRoot);
    let kept = 0;
    await left.walk((i) => { kept += i.size; });
    for (const st of await left.listStatuses()) kept += st.offset;
    const resumed = await runFull(`${proxy.host}/big:v1`, killRoot, concurrency);
    const served2 = proxy.bytesSentFor('/blobs/sha256:');
    const all = served2 - served0;
    console.log('\ninterruption 2: the pulling process is SIGKILLed at 50% of the image; a new process pulls again');
    console.log(`  first process ${killed === 'killed' ? 'killed' : 'NOT killed'}: the server had sent ${((served1 - served0) / 1e6).toFixed(1)} MB; ${(kept / 1e6).toFixed(1)} MB were in the store (blobs + ingests)`);
    console.log(`  second process downloaded ${(resumed.bytes / 1e6).toFixed(1)} MB of ${(total / 1e6).toFixed(1)} MB in ${(resumed.ms / 1000).toFixed(2)} s: stored bytes fetched again ${(Math.max(0, resumed.bytes - (total - kept)) / 1e6).toFixed(2)} MB`);
    console.log(`  network bytes over the image size: ${((all - total) / 1e6).toFixed(2)} MB (${(100 * (all - total) / total).toFixed(2)}%: data in socket buffers or not yet written when the process died)`);
    fs.rmSync(killRoot, { recursive: true, force: true });
  } finally {
    await proxy.stop();
    await reg.stop();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  await childPull(process.argv[3]!, process.argv[4]!, Number(process.argv[5]), Number(process.argv[6] ?? 0));
} else {
  await main();
}
