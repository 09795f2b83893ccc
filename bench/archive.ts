// Save/load benchmark: `stowage save` and `stowage load` (through the built binary) of the large test
// image of bench/pull.ts (5 gzip layers of ~80 MB tar each), against skopeo in the same run:
//   save: `stowage save -o F`               vs `skopeo copy oci:LAYOUT docker-archive:F`
//   load: `stowage load -i F` (store + unpack) vs `skopeo copy docker-archive:F oci:DIR` (store only)
//         and vs skopeo + `umoci unpack` (store + unpack, the like-for-like peer of ours)
// Every tool writes into a file system of its own per repetition (bench/support/scratch-fs.ts: a fresh
// loop-mounted ext4, then tmpfs); the inputs (source store, OCI layout, the archive loaded) sit in
// /dev/shm. Medians of wall time and peak RSS (/usr/bin/time -v); ratios stowage ÷ peer, target ≤ 1.0.
// Peak RSS is also taken at a quarter of the image size (tmpfs) to show it stays flat.
//
//   npx tsx bench/archive.ts [--reps=3] [--fs=ext4,tmpfs] [--layers=5] [--layer-mb=80]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt } from '../test/cli/binary.js';
import { buildBenchImage, treeStats } from './support/pull-image.js';
import { timed, unmountAll, type Timed } from './support/pull-peers.js';
import { benchFsKinds, freshFs, type FsKind } from './support/scratch-fs.js';
import { summarise } from './support/summary.js';

const projectRoot = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const reps = Number(arg('reps') ?? 3);
const layerCount = Number(arg('layers') ?? 5);
const layerBytes = Number(arg('layer-mb') ?? 80) * 1e6;
const stowageBin = path.join(projectRoot, 'bin', 'stowage.js');
const REF = 'bench/large:latest';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const secs = (ms: number) => (ms / 1000).toFixed(2);

function rm(dir: string): void {
  unmountAll(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

let base = '';
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { if (base) rm(base); process.exit(130); });

const stowage = (root: string, args: string[]): Promise<Timed> =>
  timed(stowageBin, ['--root', root, ...args], base, { cwd: projectRoot });

/** Runs `fn` with an empty directory on a fresh file system of `kind`, removed afterwards. */
async function onFresh<T>(kind: FsKind, label: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const f = freshFs(kind, label);
  try { return await fn(f.dir); } finally { f.dispose(); }
}

interface Row { name: string; runs: Timed[]; peer: boolean }

/** One image size: the source store and layout, then `reps` interleaved rounds of every tool. */
async function measure(layers: number, bytes: number, label: string, kind: FsKind): Promise<{ save: Row[]; load: Row[]; archiveBytes: number; tarBytes: number; gzBytes: number }> {
  const img = await buildBenchImage(path.join(base, `layout-${label}`), { layers, layerBytes: bytes, tag: 'latest' });
  const layoutTar = path.join(base, `layout-${label}.tar`);
  execFileSync('tar', ['-C', img.layout, '-cf', layoutTar, '.']);
  const src = path.join(base, `src-${label}`);
  await stowage(src, ['load', '-q', '-i', layoutTar]);
  execFileSync(stowageBin, ['--root', src, 'tag', 'latest:latest', REF]);
  fs.rmSync(layoutTar);
  const gzBytes = img.layers.reduce((n, l) => n + l.size, 0);

  const save: Row[] = [{ name: 'stowage save -o', runs: [], peer: false }, { name: 'skopeo copy oci: → docker-archive:', runs: [], peer: true }];
  const load: Row[] = [
    { name: 'stowage load -i (store + unpack)', runs: [], peer: false },
    { name: 'skopeo copy docker-archive: → oci:', runs: [], peer: true },
    { name: 'skopeo copy + umoci unpack', runs: [], peer: true },
  ];
  // The archive both loads read: ours (it is also a docker-archive), written once to /dev/shm.
  const archive = path.join(base, `archive-${label}.tar`);
  await stowage(src, ['save', '-o', archive, REF]);
  const archiveBytes = fs.statSync(archive).size;
  for (let i = 0; i < reps; i++) {
    save[0]!.runs.push(await onFresh(kind, 'save-stowage', (d) => stowage(src, ['save', '-o', path.join(d, 'a.tar'), REF])));
    save[1]!.runs.push(await onFresh(kind, 'save-skopeo', (d) => timed('skopeo', ['copy', '--quiet', `oci:${img.layout}:latest`, `docker-archive:${path.join(d, 'a.tar')}:${REF}`], base)));
    load[0]!.runs.push(await onFresh(kind, 'load-stowage', async (d) => {
      const root = path.join(d, 'root');
      const t = await stowage(root, ['load', '-q', '-i', archive]);
      if (i === 0 && label === 'full') {
        const out = path.join(d, 'checkout');
        await stowage(root, ['checkout', '--hardlink', REF, out]);
        const st = treeStats(out);
        const ok = st.regularFiles === img.expected.regularFiles && st.regularBytes === img.expected.regularBytes && st.symlinks === img.expected.symlinks;
        console.log(`  sanity (${kind}): loaded tree ${st.regularFiles} files, ${st.regularBytes} bytes, ${st.symlinks} symlinks: ${ok ? 'ok' : 'MISMATCH'}`);
        if (!ok) process.exitCode = 1;
      }
      return t;
    }));
    const [sk, um] = await onFresh(kind, 'load-skopeo', async (d) => {
      const layout = path.join(d, 'layout');
      const a = await timed('skopeo', ['copy', '--quiet', `docker-archive:${archive}`, `oci:${layout}:latest`], base);
      const b = await timed('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, path.join(d, 'bundle')], base);
      return [a, b] as const;
    });
    load[1]!.runs.push(sk);
    load[2]!.runs.push({ ms: sk.ms + um.ms, maxRssMiB: Math.max(sk.maxRssMiB, um.maxRssMiB), cpuS: sk.cpuS + um.cpuS });
    console.log(`  ${label} ${kind} rep ${i + 1}/${reps}: save ${secs(save[0]!.runs.at(-1)!.ms)} s vs skopeo ${secs(save[1]!.runs.at(-1)!.ms)} s; `
      + `load ${secs(load[0]!.runs.at(-1)!.ms)} s vs skopeo ${secs(sk.ms)} s (+umoci ${secs(um.ms)} s)`);
  }
  fs.rmSync(archive);
  rm(src);
  rm(img.layout);
  return { save, load, archiveBytes, tarBytes: img.tarBytes, gzBytes };
}

function table(title: string, rows: Row[]): void {
  const ours = rows[0]!;
  const oMed = median(ours.runs.map((r) => r.ms));
  const oRss = median(ours.runs.map((r) => r.maxRssMiB));
  console.log(`\n${title}`);
  console.log(`${'tool'.padEnd(38)} ${'median s'.padStart(9)} ${'peak RSS MiB'.padStart(13)} ${'stowage ÷ peer'.padStart(15)} ${'RSS ÷'.padStart(7)}`);
  for (const r of rows) {
    const med = median(r.runs.map((x) => x.ms));
    const rss = median(r.runs.map((x) => x.maxRssMiB));
    console.log(`${r.name.padEnd(38)} ${secs(med).padStart(9)} ${rss.toFixed(0).padStart(13)} ${(r.peer ? `${(oMed / med).toFixed(2)}×` : '').padStart(15)} ${(r.peer ? `${(oRss / rss).toFixed(2)}×` : '').padStart(7)}`);
  }
}

async function main(): Promise<void> {
  await ensureBuilt();
  base = fs.mkdtempSync(path.join('/dev/shm', 'stowage-bench-archive-'));
  try {
    for (const kind of benchFsKinds()) {
      const full = await measure(layerCount, layerBytes, 'full', kind);
      console.log(`\nimage: ${layerCount} layers, ${(full.tarBytes / 1e6).toFixed(0)} MB tar, ${(full.gzBytes / 1e6).toFixed(0)} MB gzip; archive ${(full.archiveBytes / 1e6).toFixed(0)} MB; `
        + `${reps} reps, a fresh ${kind} per tool and rep; load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
      table(`save (${kind})`, full.save);
      table(`load (${kind})`, full.load);
      const med = (r: Row) => median(r.runs.map((x) => x.ms)) / 1000;
      const rss = (r: Row) => median(r.runs.map((x) => x.maxRssMiB));
      summarise({
        operation: `save, ${layerCount} layers`, fs: kind, unit: 's', stowage: med(full.save[0]!), stowageRssMiB: rss(full.save[0]!),
        peers: [{ peer: full.save[1]!.name, value: med(full.save[1]!), rssMiB: rss(full.save[1]!) }], targets: { [full.save[1]!.name]: 1.0 },
      });
      summarise({
        operation: `load (+unpack), ${layerCount} layers`, fs: kind, unit: 's', stowage: med(full.load[0]!), stowageRssMiB: rss(full.load[0]!),
        peers: full.load.slice(1).map((r) => ({ peer: r.name, value: med(r), rssMiB: rss(r) })), targets: { [full.load[1]!.name]: 1.0 },
      });
      if (kind !== 'tmpfs') continue;
      // Flat memory: the same tools on an image a quarter the size.
      const small = await measure(layerCount, layerBytes / 4, 'quarter', kind);
      console.log(`\npeak RSS (MiB), image of ${(small.gzBytes / 1e6).toFixed(0)} MB gzip vs ${(full.gzBytes / 1e6).toFixed(0)} MB gzip:`);
      for (const [a, b] of [[small.save, full.save], [small.load, full.load]] as const) {
        for (let i = 0; i < a.length; i++) {
          console.log(`  ${a[i]!.name.padEnd(38)} ${median(a[i]!.runs.map((x) => x.maxRssMiB)).toFixed(0).padStart(5)} → ${median(b[i]!.runs.map((x) => x.maxRssMiB)).toFixed(0).padStart(5)}`);
        }
      }
    }
  } finally {
    rm(base);
  }
}

await main();
