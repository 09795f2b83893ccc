/**
 * The command line's own costs: start-up time of `stowage version` and `stowage images` (empty store)
 * beside `node -e 0` (the floor), `skopeo --version` and `docker --version` (client only) in the same
 * run, and `stowage images` over a store holding 10,000 images beside containerd's `ctr images ls`
 * over the same 10,000 images (imported from the stowage store's own blobs as an OCI archive).
 * Runs the BUILT binary (builds dist/ first when it is missing).
 *
 *   npx tsx bench/cli.ts [--runs N] [--images N] [--keep]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openMetadata } from '../src/metadata/index.js';
import { ensureBuilt } from '../test/cli/binary.js';
import { startContainerd } from './support/pull-peers.js';
import { summarise } from './support/summary.js';

const REPO = path.resolve(import.meta.dirname, '..');
const BIN = path.join(REPO, 'bin', 'stowage.js');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const RUNS = arg('runs', 15);
const IMAGES = arg('images', 10_000);


interface Timing { median: number; min: number; peakRssKb: number }

/** Runs a command `runs` times (after one warm-up) under /usr/bin/time; wall ms and peak RSS. */
function time(cmd: string, args: string[], runs = RUNS, env: NodeJS.ProcessEnv = process.env): Timing {
  const samples: number[] = [];
  let peak = 0;
  for (let i = 0; i <= runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    const rss = Number(r.stderr.trim().split('\n').at(-1));
    if (i === 0) continue; // warm-up: page cache, JIT caches
    samples.push(ms);
    peak = Math.max(peak, rss);
  }
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)]!, min: samples[0]!, peakRssKb: peak };
}

function sha256(b: Buffer): string { return `sha256:${createHash('sha256').update(b).digest('hex')}`; }

/**
 * A store with `count` distinct images (own config and manifest, one shared layer). Set up through the
 * store's own layout and metadata API: blob files under blobs/sha256 plus their records, image records in
 * batches — so the set-up takes seconds instead of 20,000 fsynced commits.
 */
function makeStore(root: string, count: number): Array<{ name: string; target: { mediaType: string; digest: string; size: number } }> {
  const blobs = path.join(root, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const md = openMetadata(root);
  const put = (bytes: Buffer): string => {
    const d = sha256(bytes);
    fs.writeFileSync(path.join(blobs, d.slice(7)), bytes);
    return d;
  };
  const layer = Buffer.alloc(1024, 1);
  const layerDigest = put(layer);
  const records: Array<{ name: string; target: { mediaType: string; digest: string; size: number }; labels: Record<string, string>; blobs: Array<[string, number, Record<string, string>]> }> = [];
  for (let i = 0; i < count; i++) {
    const config = Buffer.from(JSON.stringify({
      created: new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString(), architecture: 'amd64', os: 'linux',
      config: { Labels: { 'bench.index': String(i) } },
      rootfs: { type: 'layers', diff_ids: [sha256(Buffer.from(`diff-${i % 50}`))] },
      history: [{ created_by: `bench image ${i}` }],
    }));
    const configDigest = put(config);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
    }));
    const manifestDigest = put(manifest);
    records.push({
      name: `registry.example.com/bench/app-${Math.floor(i / 100)}:v${i % 100}`,
      target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length },
      labels: {},
      blobs: [
        [configDigest, config.length, {}],
        [manifestDigest, manifest.length, { 'containerd.io/gc.ref.content.config': configDigest, 'containerd.io/gc.ref.content.l.0': layerDigest }],
      ],
    });
  }
  md.content.recordBlob(layerDigest as `sha256:${string}`, layer.length);
  for (let i = 0; i < records.length; i += 500) {
    md.batch(() => {
      for (const r of records.slice(i, i + 500)) {
        for (const [d, size, labels] of r.blobs) md.content.recordBlob(d as `sha256:${string}`, size, { labels });
        md.images.create({ name: r.name, target: r.target as never, labels: r.labels });
      }
    });
  }
  md.close();
  return records.map((r) => ({ name: r.name, target: r.target }));
}

/**
 * The same images as an OCI archive for `ctr images import`: the store's blobs/sha256 is already an
 * OCI layout's blob directory; an index names each manifest with containerd's image-name annotation.
 */
function ociArchiveOf(root: string, images: Array<{ name: string; target: { mediaType: string; digest: string; size: number } }>, out: string): void {
  const meta = fs.mkdtempSync(path.join(path.dirname(out), 'oci-meta-'));
  fs.writeFileSync(path.join(meta, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(meta, 'index.json'), JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: images.map((i) => ({ ...i.target, annotations: { 'io.containerd.image.name': i.name } })),
  }));
  execFileSync('tar', ['-cf', out, '-C', meta, 'oci-layout', 'index.json', '-C', root, 'blobs']);
  fs.rmSync(meta, { recursive: true, force: true });
}

function row(label: string, t: Timing, base?: Timing): string {
  const ratio = base ? `  ${(t.median / base.median).toFixed(2)}×` : '';
  return `  ${label.padEnd(44)} ${t.median.toFixed(1).padStart(8)} ms median  ${t.min.toFixed(1).padStart(8)} ms min  ${(t.peakRssKb / 1024).toFixed(0).padStart(5)} MB peak RSS${ratio}`;
}

async function main(): Promise<void> {
  await ensureBuilt();
  const work = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'stowage-bench-cli-'));
  try {
    const empty = path.join(work, 'empty');
    console.log(`Start-up time (${RUNS} runs each after a warm-up; wall clock per process)`);
    const skopeo = time('skopeo', ['--version']);
    const docker = time('docker', ['--version']);
    const version = time(BIN, ['version']);
    const images = time(BIN, ['--root', empty, 'images']);
    const nodeBare = time(process.execPath, ['-e', '0']);
    // The stowage launcher keeps NODE_EXTRA_CA_CERTS from Node's start (bin/stowage.js): Node without it.
    const noExtraCa = { ...process.env };
    delete noExtraCa.NODE_EXTRA_CA_CERTS;
    const nodeNoCa = process.env.NODE_EXTRA_CA_CERTS !== undefined ? time(process.execPath, ['-e', '0'], RUNS, noExtraCa) : undefined;
    console.log(row('skopeo --version', skopeo));
    console.log(row('docker --version (client)', docker));
    console.log(row('node -e 0 (Node start-up floor)', nodeBare));
    if (nodeNoCa) console.log(row('node -e 0 without NODE_EXTRA_CA_CERTS', nodeNoCa) + `  (it is set here: ${process.env.NODE_EXTRA_CA_CERTS})`);
    console.log(row('stowage version', version, skopeo) + ' of skopeo');
    console.log(row('stowage images (empty store)', images, skopeo) + ' of skopeo');
    console.log(row('stowage images vs docker --version', images, docker) + ' of docker');
    console.log(row('stowage version vs node -e 0', version, nodeBare) + ' of node -e 0');
    console.log(row('stowage images (empty) vs node -e 0', images, nodeBare) + ' of node -e 0');
    if (nodeNoCa) console.log(row('stowage images vs node without the CA file', images, nodeNoCa) + ' of node -e 0 without NODE_EXTRA_CA_CERTS');
    summarise({ operation: 'start-up: stowage version', fs: 'tmpfs', unit: 'ms', stowage: version.median, stowageRssMiB: version.peakRssKb / 1024, peers: [{ peer: 'node -e 0', value: nodeBare.median, rssMiB: nodeBare.peakRssKb / 1024 }], targets: { 'node -e 0': 1.3 } });
    summarise({ operation: 'start-up: stowage images (empty store)', fs: 'tmpfs', unit: 'ms', stowage: images.median, stowageRssMiB: images.peakRssKb / 1024, peers: [{ peer: 'node -e 0', value: nodeBare.median, rssMiB: nodeBare.peakRssKb / 1024 }], targets: { 'node -e 0': 2.0 } });

    const full = path.join(work, 'full');
    const t0 = Date.now();
    const made = makeStore(full, IMAGES);
    console.log(`\nstowage images with ${IMAGES.toLocaleString('en')} images (set-up ${((Date.now() - t0) / 1000).toFixed(1)} s; ${Math.max(3, Math.floor(RUNS / 3))} runs each)`);
    const runs = Math.max(3, Math.floor(RUNS / 3));
    const lines = execFileSync(BIN, ['--root', full, 'images', '-q'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).split('\n').filter(Boolean).length;
    if (lines !== IMAGES) throw new Error(`expected ${IMAGES} rows, got ${lines}`);
    const table = time(BIN, ['--root', full, 'images'], runs);
    const quiet = time(BIN, ['--root', full, 'images', '-q'], runs);
    const json = time(BIN, ['--root', full, 'images', '--format', 'json'], runs);
    const filtered = time(BIN, ['--root', full, 'images', 'registry.example.com/bench/app-7'], runs);
    console.log(row('stowage images (table)', table, images) + ' of empty');
    console.log(row('stowage images -q', quiet));
    console.log(row('stowage images --format json', json));
    console.log(row('stowage images REPO (100 of them)', filtered));
    console.log(`  per image (table): ${(((table.median - images.median) * 1000) / IMAGES).toFixed(1)} µs`);

    // containerd with the same images: a private daemon, the store's blobs imported as one OCI archive.
    const archive = path.join(work, 'images.tar');
    ociArchiveOf(full, made, archive);
    const daemon = await startContainerd(path.join(work, 'containerd'));
    try {
      const ctrArgs = ['--address', daemon.address, '-n', 'bench'];
      execFileSync('ctr', [...ctrArgs, 'images', 'import', '--no-unpack', archive], { stdio: 'ignore', maxBuffer: 64 * 1024 * 1024 });
      const ctrLines = execFileSync('ctr', [...ctrArgs, 'images', 'ls', '-q'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).split('\n').filter(Boolean).length;
      if (ctrLines !== IMAGES) throw new Error(`containerd holds ${ctrLines} images, expected ${IMAGES}`);
      const ctrLs = time('ctr', [...ctrArgs, 'images', 'ls'], runs);
      const ctrQ = time('ctr', [...ctrArgs, 'images', 'ls', '-q'], runs);
      console.log(row('ctr images ls (same images, containerd 1.6)', ctrLs));
      console.log(row('ctr images ls -q', ctrQ));
      console.log(row('stowage images vs ctr images ls', table, ctrLs) + ' of ctr');
      summarise({ operation: `stowage images, ${IMAGES} images`, fs: 'tmpfs', unit: 'ms', stowage: table.median, stowageRssMiB: table.peakRssKb / 1024, peers: [{ peer: 'ctr images ls', value: ctrLs.median, rssMiB: ctrLs.peakRssKb / 1024 }], targets: { 'ctr images ls': 1.0 } });
      summarise({ operation: `stowage images -q, ${IMAGES} images`, fs: 'tmpfs', unit: 'ms', stowage: quiet.median, stowageRssMiB: quiet.peakRssKb / 1024, peers: [{ peer: 'ctr images ls -q', value: ctrQ.median, rssMiB: ctrQ.peakRssKb / 1024 }] });
    } finally {
      await daemon.stop();
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv.includes('--keep')) {
  // Only build the big store and print where it is (for profiling `stowage images` by hand); remove it yourself.
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'stowage-bench-cli-keep-'));
  makeStore(dir, IMAGES);
  console.log(dir);
} else {
  await main();
}
