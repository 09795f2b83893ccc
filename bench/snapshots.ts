// Snapshot apply benchmark. Run: npx tsx bench/snapshots.ts [--reps=3] [--fs=ext4,tmpfs]
// Builds a ~300 MB, 10-layer image from files of this machine (tar of /usr/share and /usr/lib subtrees,
// gzip by pigz/gzip -6), then times, in the same run, interleaved, each tool in a file system of its own
// per repetition (a fresh loop-mounted ext4 when root, then tmpfs; see bench/support/scratch-fs.ts):
//   - our apply of the uncompressed layers merged into one tree, against `tar -xf` of the same layers
//     into one directory (the plain-tar apply path; target ≤ 1.5×); ours reads the layer files as the
//     store reads its blobs (LayerFile);
//   - our apply of the gzip layers into a snapshot chain (one snapshot per layer, diffIDs verified),
//     against `tar -xzf` of the same layers and `umoci unpack` of the same OCI image;
//   - peak RSS (ours sampled in-process, peers by /usr/bin/time).
// Sanity: our merged tree equals tar's. Checkout against `cp -a` is in bench/pull.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openMetadata } from '../src/metadata/index.js';
import type { Digest } from '../src/oci/index.js';
import { LayerFile, applyLayer, applyLayerToSnapshot, openSnapshotter } from '../src/snapshots/index.js';
import { benchFsKinds, freshFs, type FsKind, type ScratchFs } from './support/scratch-fs.js';
import { summarise } from './support/summary.js';

const SOURCES = [
  '/usr/share/man', '/usr/lib/python3.11', '/usr/share/vim', '/usr/share/icons', '/usr/lib/git-core',
  '/usr/share/perl', '/usr/share/cmake-3.25', '/usr/share/i18n', '/usr/share/fonts', '/usr/share/mime',
].filter((p) => fs.existsSync(p));

const base = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'stowage-bench-'));
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/**
 * A layer read from its file, as the store reads its blobs (LayerFile). Run from the sources, the apply
 * runs in this thread (the apply pool's thread script is built only into dist/): one layer at a time
 * either way.
 */
async function withLayerFile<T>(file: string, fn: (f: LayerFile) => Promise<T>): Promise<T> {
  const fd = fs.openSync(file, 'r');
  try { return await fn(LayerFile.complete(fd, fs.fstatSync(fd).size)); } finally { fs.closeSync(fd); }
}

let peakRss = 0;
const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 25);

function sha256File(p: string): string {
  return createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const reps = Number(arg('reps') ?? 3);

function timeCmd(cmd: string, args: string[], opts: { cwd?: string } = {}): { secs: number; rssMB: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { cwd: opts.cwd, encoding: 'utf8', maxBuffer: 1 << 26 });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const kb = Number(r.stderr.trim().split('\n').pop());
  return { secs, rssMB: kb / 1024 };
}

async function timeIt<T>(f: () => Promise<T>): Promise<{ secs: number; rssMB: number; value: T }> {
  global.gc?.();
  peakRss = process.memoryUsage().rss;
  const t0 = process.hrtime.bigint();
  const value = await f();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  return { secs, rssMB: peakRss / 2 ** 20, value };
}

const fmt = (n: number, d = 2): string => n.toFixed(d);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
interface Sample { secs: number; rssMB: number }

async function main(): Promise<void> {
  console.log(`inputs in ${base}, ${os.cpus().length} CPUs, node ${process.version}`);
  // 1. layers (inputs on tmpfs: read by every tool alike)
  const image = path.join(base, 'image');
  const blobs = path.join(image, 'blobs/sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const tars: string[] = [];
  const gzs: string[] = [];
  const diffIDs: Digest[] = [];
  const layerDescs: { mediaType: string; digest: string; size: number }[] = [];
  let rawTotal = 0; let gzTotal = 0; let files = 0;
  const gzip = has('pigz') ? 'pigz' : 'gzip';
  for (const [i, src] of SOURCES.entries()) {
    const t = path.join(base, `layer${i}.tar`);
    execFileSync('tar', ['--numeric-owner', '-C', '/', '-cf', t, src.slice(1)]);
    const g = t + '.gz';
    execFileSync('sh', ['-c', `${gzip} -6 -c '${t}' > '${g}'`]);
    tars.push(t); gzs.push(g);
    diffIDs.push(`sha256:${sha256File(t)}`);
    const d = sha256File(g);
    fs.copyFileSync(g, path.join(blobs, d));
    const size = fs.statSync(g).size;
    layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${d}`, size });
    rawTotal += fs.statSync(t).size; gzTotal += size;
    files += Number(execFileSync('sh', ['-c', `tar -tf '${t}' | wc -l`]).toString().trim());
  }
  const putJson = (o: unknown): { digest: string; size: number } => {
    const b = Buffer.from(JSON.stringify(o));
    const d = createHash('sha256').update(b).digest('hex');
    fs.writeFileSync(path.join(blobs, d), b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const cfg = putJson({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIDs } });
  const man = putJson({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg }, layers: layerDescs });
  fs.writeFileSync(path.join(image, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(path.join(image, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...man, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }));
  console.log(`image: ${SOURCES.length} layers, ${fmt(rawTotal / 1e6, 1)} MB tar, ${fmt(gzTotal / 1e6, 1)} MB gzip, ${files} entries`);

  for (const kind of benchFsKinds()) {
    const col = { plain: [] as Sample[], tarx: [] as Sample[], chain: [] as Sample[], tarxz: [] as Sample[], umoci: [] as Sample[] };
    const scratch = (label: string): ScratchFs => freshFs(kind as FsKind, label);
    for (let rep = 0; rep < reps; rep++) {
      // a. plain tar layers merged into one tree: ours, then tar -xf (the first rep compares the trees)
      const ours = scratch('apply-plain');
      const peer = scratch('tar-x');
      try {
        const oursDir = path.join(ours.dir, 'tree');
        col.plain.push(await timeIt(async () => {
          for (const t of tars) await withLayerFile(t, (f) => applyLayer(f, oursDir, { mode: 'merged' }));
        }));
        const tarDir = path.join(peer.dir, 'tree');
        fs.mkdirSync(tarDir);
        const t0 = process.hrtime.bigint();
        let rss = 0;
        for (const t of tars) rss = Math.max(rss, timeCmd('tar', ['--numeric-owner', '-xf', t, '-C', tarDir]).rssMB);
        col.tarx.push({ secs: Number(process.hrtime.bigint() - t0) / 1e9, rssMB: rss });
        if (rep === 0) {
          const diff = spawnSync('diff', ['-r', '--no-dereference', '-q', oursDir, tarDir], { encoding: 'utf8' });
          console.log(`${kind}: our merged tree vs tar -x's: ${diff.status === 0 ? 'identical' : 'DIFFERENT\n' + diff.stdout.slice(0, 2000)}`);
          if (diff.status !== 0) process.exitCode = 1;
        }
      } finally { ours.dispose(); peer.dispose(); }

      // b. gzip layers: ours into a snapshot chain, tar -xzf into one directory, umoci unpack (first rep)
      const chainFs = scratch('apply-chain');
      try {
        const store = path.join(chainFs.dir, 'store');
        const md = openMetadata(store);
        const sn = openSnapshotter(store, md.snapshots);
        let parent: Digest | undefined;
        col.chain.push(await timeIt(async () => {
          for (const [i, g] of gzs.entries()) {
            const r = await withLayerFile(g, (f) => applyLayerToSnapshot(sn, { parentChainId: parent, layer: f, expectedDiffID: diffIDs[i]! }));
            parent = r.chainID;
          }
        }));
        md.close();
      } finally { chainFs.dispose(); }
      const tgzFs = scratch('tar-xz');
      try {
        const t0 = process.hrtime.bigint();
        let rss = 0;
        for (const g of gzs) rss = Math.max(rss, timeCmd('tar', ['--numeric-owner', '-xzf', g, '-C', tgzFs.dir]).rssMB);
        col.tarxz.push({ secs: Number(process.hrtime.bigint() - t0) / 1e9, rssMB: rss });
      } finally { tgzFs.dispose(); }
      if (rep === 0 && has('umoci')) {
        const umociFs = scratch('umoci');
        try { col.umoci.push(timeCmd('umoci', ['unpack', '--image', `${image}:bench`, path.join(umociFs.dir, 'bundle')])); } finally { umociFs.dispose(); }
      }
      console.log(`  ${kind} rep ${rep + 1}/${reps}: plain apply ${fmt(col.plain.at(-1)!.secs)} s vs tar -xf ${fmt(col.tarx.at(-1)!.secs)} s; `
        + `gzip chain ${fmt(col.chain.at(-1)!.secs)} s vs tar -xzf ${fmt(col.tarxz.at(-1)!.secs)} s${col.umoci.length && rep === 0 ? `, umoci ${fmt(col.umoci[0]!.secs)} s` : ''}`);
    }
    const sec = (xs: Sample[]) => median(xs.map((x) => x.secs));
    const rss = (xs: Sample[]) => median(xs.map((x) => x.rssMB));
    const what = `${SOURCES.length} layers, ${fmt(rawTotal / 1e6, 0)} MB tar`;
    summarise({ operation: `apply plain tar → one tree, ${what}`, fs: kind, unit: 's', stowage: sec(col.plain), stowageRssMiB: rss(col.plain), peers: [{ peer: 'tar -xf', value: sec(col.tarx), rssMiB: rss(col.tarx) }], targets: { 'tar -xf': 1.5 } });
    summarise({
      operation: `apply gzip → snapshot chain, ${what}`, fs: kind, unit: 's', stowage: sec(col.chain), stowageRssMiB: rss(col.chain),
      peers: [{ peer: 'tar -xzf', value: sec(col.tarxz), rssMiB: rss(col.tarxz) }, ...(col.umoci.length ? [{ peer: 'umoci unpack', value: sec(col.umoci), rssMiB: rss(col.umoci) }] : [])],
    });
  }
}

main().then(
  () => { clearInterval(sampler); fs.rmSync(base, { recursive: true, force: true }); },
  (e) => { clearInterval(sampler); fs.rmSync(base, { recursive: true, force: true }); console.error(e); process.exitCode = 1; },
);
