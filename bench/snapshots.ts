// Snapshot apply/checkout benchmark. Run: npx tsx bench/snapshots.ts
// Builds a ~300 MB, 10-layer image from files of this machine (tar of /usr/share and /usr/lib subtrees,
// gzip by pigz/gzip -6), then in the same run times:
//   - our apply of all layers (gzip input, one snapshot per layer, diffIDs verified), and of the
//     uncompressed layers;
//   - `tar -x` of the same uncompressed layers (and `tar -xzf` of the gzip ones) into one directory;
//   - `umoci unpack` of the same OCI image;
//   - checkout of the 10-layer chain (copy and hardlink) against `cp -a` of the unpacked tree;
//   - peak RSS (ours sampled in-process, peers by /usr/bin/time).
// Everything lives in /dev/shm (tmpfs) when it exists, to keep the VM's noisy disk out of the ratios.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openMetadata } from '../src/metadata/index.js';
import type { Digest } from '../src/oci/index.js';
import { applyLayer, applyLayerToSnapshot, checkout, openSnapshotter } from '../src/snapshots/index.js';

const SOURCES = [
  '/usr/share/man', '/usr/lib/python3.11', '/usr/share/vim', '/usr/share/icons', '/usr/lib/git-core',
  '/usr/share/perl', '/usr/share/cmake-3.25', '/usr/share/i18n', '/usr/share/fonts', '/usr/share/mime',
].filter((p) => fs.existsSync(p));

const base = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'stowage-bench-'));
const onTmpfs = base.startsWith('/dev/shm');
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

let peakRss = 0;
const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 25);

function sha256File(p: string): string {
  return createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

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

async function main(): Promise<void> {
  console.log(`work dir: ${base} (${onTmpfs ? 'tmpfs /dev/shm' : 'disk'}), ${os.cpus().length} CPUs, node ${process.version}`);
  // 1. layers
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

  const rows: [string, number, number][] = [];

  // 2. ours: gzip layers into a snapshot chain
  const store = path.join(base, 'store');
  const md = openMetadata(store);
  const sn = openSnapshotter(store, md.snapshots);
  let parent: Digest | undefined;
  const oursGz = await timeIt(async () => {
    for (const [i, g] of gzs.entries()) {
      const r = await applyLayerToSnapshot(sn, { parentChainId: parent, layerStream: fs.createReadStream(g, { highWaterMark: 1 << 20 }), expectedDiffID: diffIDs[i]! });
      parent = r.chainID;
    }
  });
  rows.push(['stowage apply, gzip layers -> snapshot chain', oursGz.secs, oursGz.rssMB]);
  const top = parent!;

  // 3. ours: uncompressed layers, merged into one dir (what tar -x does)
  const oursTarDir = path.join(base, 'ours-merged');
  const oursTar = await timeIt(async () => {
    for (const t of tars) await applyLayer(fs.createReadStream(t, { highWaterMark: 1 << 20 }), oursTarDir, { mode: 'merged' });
  });
  rows.push(['stowage apply, plain tar layers -> one dir', oursTar.secs, oursTar.rssMB]);
  fs.rmSync(oursTarDir, { recursive: true, force: true });

  // 4. peers: tar -x of the plain and gzip layers
  const tarDir = path.join(base, 'tar-x');
  fs.mkdirSync(tarDir);
  let tarSecs = 0; let tarRss = 0;
  for (const t of tars) { const r = timeCmd('tar', ['--numeric-owner', '-xf', t, '-C', tarDir]); tarSecs += r.secs; tarRss = Math.max(tarRss, r.rssMB); }
  rows.push(['tar -xf, plain layers -> one dir', tarSecs, tarRss]);
  fs.rmSync(tarDir, { recursive: true, force: true });
  fs.mkdirSync(tarDir);
  let tgzSecs = 0; let tgzRss = 0;
  for (const g of gzs) { const r = timeCmd('tar', ['--numeric-owner', '-xzf', g, '-C', tarDir]); tgzSecs += r.secs; tgzRss = Math.max(tgzRss, r.rssMB); }
  rows.push(['tar -xzf, gzip layers -> one dir', tgzSecs, tgzRss]);

  // 5. peer: umoci unpack
  let umoci: { secs: number; rssMB: number } | undefined;
  if (has('umoci')) {
    umoci = timeCmd('umoci', ['unpack', '--image', `${image}:bench`, path.join(base, 'bundle')]);
    rows.push(['umoci unpack (gzip layers)', umoci.secs, umoci.rssMB]);
  }

  // 6. checkout of the 10-layer chain vs cp -a of an unpacked tree
  const coCopy = await timeIt(() => checkout(sn, top, path.join(base, 'co-copy'), { link: 'copy' }));
  rows.push([`stowage checkout ${SOURCES.length}-layer chain (copy)`, coCopy.secs, coCopy.rssMB]);
  const coLink = await timeIt(() => checkout(sn, top, path.join(base, 'co-link'), { link: 'hardlink' }));
  rows.push([`stowage checkout ${SOURCES.length}-layer chain (hardlink)`, coLink.secs, coLink.rssMB]);
  const cp = timeCmd('cp', ['-a', tarDir, path.join(base, 'cp-a')]);
  rows.push(['cp -a of the unpacked tree', cp.secs, cp.rssMB]);
  const cpl = timeCmd('cp', ['-al', tarDir, path.join(base, 'cp-al')]);
  rows.push(['cp -al (hardlinks) of the unpacked tree', cpl.secs, cpl.rssMB]);

  // sanity: our checkout equals tar -x's tree
  const diff = spawnSync('diff', ['-r', '--no-dereference', '-q', path.join(base, 'co-copy'), tarDir], { encoding: 'utf8' });
  console.log(`checkout vs tar -x tree: ${diff.status === 0 ? 'identical' : 'DIFFERENT\n' + diff.stdout.slice(0, 2000)}`);

  console.log('\n| operation | seconds | MB/s (tar bytes) | peak RSS MB |');
  console.log('|---|---:|---:|---:|');
  for (const [name, secs, rss] of rows) console.log(`| ${name} | ${fmt(secs)} | ${fmt(rawTotal / 1e6 / secs, 0)} | ${fmt(rss, 0)} |`);
  console.log('\nratios (lower is better for us):');
  console.log(`  stowage gzip->snapshots / tar -xzf          = ${fmt(oursGz.secs / tgzSecs)}`);
  console.log(`  stowage plain tar / tar -xf                 = ${fmt(oursTar.secs / tarSecs)}`);
  if (umoci) console.log(`  stowage gzip->snapshots / umoci unpack      = ${fmt(oursGz.secs / umoci.secs)}`);
  console.log(`  stowage checkout copy / cp -a               = ${fmt(coCopy.secs / cp.secs)}`);
  console.log(`  stowage checkout hardlink / cp -al          = ${fmt(coLink.secs / cpl.secs)}`);
  (md as unknown as { close?: () => void }).close?.();
}

main().then(
  () => { clearInterval(sampler); fs.rmSync(base, { recursive: true, force: true }); },
  (e) => { clearInterval(sampler); fs.rmSync(base, { recursive: true, force: true }); console.error(e); process.exitCode = 1; },
);
