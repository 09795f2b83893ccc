// Save/load benchmark: `stowage save` and `stowage load` (through the built binary) of the large test
// image of bench/pull.ts (5 gzip layers of ~80 MB tar each), against skopeo in the same run:
//   save: `stowage save -o F`               vs `skopeo copy oci:LAYOUT docker-archive:F`
//   load: `stowage load -i F` (store + unpack) vs `skopeo copy docker-archive:F oci:DIR` (store only)
//         and vs skopeo + `umoci unpack` (store + unpack, the like-for-like peer of ours)
// Every tool writes into a fresh directory per repetition on the chosen file system (default /dev/shm,
// so no tool pays for the ext4 churn of another). Medians of wall time and peak RSS (/usr/bin/time -v);
// ratios stowage ÷ peer. Peak RSS is also taken at two image sizes to show it stays flat.
//
//   npx tsx bench/archive.ts [--reps=3] [--dir=/dev/shm] [--layers=5] [--layer-mb=80]
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBenchImage, treeStats } from './support/pull-image.js';
import { timed, unmountAll, type Timed } from './support/pull-peers.js';

const projectRoot = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const reps = Number(arg('reps') ?? 3);
const layerCount = Number(arg('layers') ?? 5);
const layerBytes = Number(arg('layer-mb') ?? 80) * 1e6;
const stowageBin = path.join(projectRoot, 'bin', 'stowage.js');
const REF = 'bench/large:latest';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const secs = (ms: number) => (ms / 1000).toFixed(2);

function ensureBuilt(): void {
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: projectRoot, encoding: 'utf8' });
  if (r.status !== 0 && !fs.existsSync(path.join(projectRoot, 'dist', 'cli', 'main.js'))) throw new Error(`build failed:\n${r.stdout}${r.stderr}`);
}

function rm(dir: string): void {
  unmountAll(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

let base = '';
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { if (base) rm(base); process.exit(130); });

const stowage = (root: string, args: string[]): Promise<Timed> =>
  timed(process.execPath, [stowageBin, '--root', root, ...args], base, { cwd: projectRoot });

interface Row { name: string; runs: Timed[]; peer: boolean }

/** One image size: the source store and layout, then `reps` interleaved rounds of every tool. */
async function measure(layers: number, bytes: number, label: string): Promise<{ save: Row[]; load: Row[]; archiveBytes: number; tarBytes: number; gzBytes: number }> {
  const img = await buildBenchImage(path.join(base, `layout-${label}`), { layers, layerBytes: bytes, tag: 'latest' });
  const layoutTar = path.join(base, `layout-${label}.tar`);
  execFileSync('tar', ['-C', img.layout, '-cf', layoutTar, '.']);
  const src = path.join(base, `src-${label}`);
  await stowage(src, ['load', '-q', '-i', layoutTar]);
  execFileSync(process.execPath, [stowageBin, '--root', src, 'tag', 'latest:latest', REF]);
  fs.rmSync(layoutTar);
  const gzBytes = img.layers.reduce((n, l) => n + l.size, 0);

  const save: Row[] = [{ name: 'stowage save -o', runs: [], peer: false }, { name: 'skopeo copy oci: → docker-archive:', runs: [], peer: true }];
  const load: Row[] = [
    { name: 'stowage load -i (store + unpack)', runs: [], peer: false },
    { name: 'skopeo copy docker-archive: → oci:', runs: [], peer: true },
    { name: 'skopeo copy + umoci unpack', runs: [], peer: true },
  ];
  let archiveBytes = 0;
  for (let i = 0; i < reps; i++) {
    const ours = path.join(base, `ours-${label}-${i}`);
    fs.mkdirSync(ours);
    save[0]!.runs.push(await stowage(src, ['save', '-o', path.join(ours, 'a.tar'), REF]));
    archiveBytes = fs.statSync(path.join(ours, 'a.tar')).size;
    const theirs = path.join(base, `skopeo-${label}-${i}`);
    fs.mkdirSync(theirs);
    save[1]!.runs.push(await timed('skopeo', ['copy', '--quiet', `oci:${img.layout}:latest`, `docker-archive:${path.join(theirs, 'a.tar')}:${REF}`], base));

    // Both loads read the same archive: ours (it is also a docker-archive).
    const archive = path.join(ours, 'a.tar');
    const root = path.join(base, `load-${label}-${i}`);
    load[0]!.runs.push(await stowage(root, ['load', '-q', '-i', archive]));
    if (i === 0 && label === 'full') {
      const out = path.join(base, 'checkout');
      await stowage(root, ['checkout', REF, out]);
      const s = treeStats(out);
      const ok = s.regularFiles === img.expected.regularFiles && s.regularBytes === img.expected.regularBytes && s.symlinks === img.expected.symlinks;
      console.log(`  sanity: loaded tree ${s.regularFiles} files, ${s.regularBytes} bytes, ${s.symlinks} symlinks: ${ok ? 'ok' : 'MISMATCH'}`);
      if (!ok) process.exitCode = 1;
      rm(out);
    }
    rm(root);
    const layout = path.join(base, `sk-layout-${label}-${i}`);
    const sk = await timed('skopeo', ['copy', '--quiet', `docker-archive:${archive}`, `oci:${layout}:latest`], base);
    load[1]!.runs.push(sk);
    const bundle = path.join(base, `umoci-${label}-${i}`);
    const um = await timed('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, bundle], base);
    load[2]!.runs.push({ ms: sk.ms + um.ms, maxRssMiB: Math.max(sk.maxRssMiB, um.maxRssMiB) });
    rm(bundle);
    rm(layout);
    rm(ours);
    rm(theirs);
    console.log(`  ${label} rep ${i + 1}/${reps}: save ${secs(save[0]!.runs.at(-1)!.ms)} s vs skopeo ${secs(save[1]!.runs.at(-1)!.ms)} s; `
      + `load ${secs(load[0]!.runs.at(-1)!.ms)} s vs skopeo ${secs(sk.ms)} s (+umoci ${secs(um.ms)} s)`);
  }
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
  ensureBuilt();
  base = fs.mkdtempSync(path.join(arg('dir') ?? '/dev/shm', 'stowage-bench-archive-'));
  try {
    const full = await measure(layerCount, layerBytes, 'full');
    console.log(`\nimage: ${layerCount} layers, ${(full.tarBytes / 1e6).toFixed(0)} MB tar, ${(full.gzBytes / 1e6).toFixed(0)} MB gzip; archive ${(full.archiveBytes / 1e6).toFixed(0)} MB; `
      + `${reps} reps in ${arg('dir') ?? '/dev/shm'}, fresh directory per tool and rep; load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    table('save', full.save);
    table('load', full.load);
    // Flat memory: the same tools on an image a quarter the size.
    const small = await measure(layerCount, layerBytes / 4, 'quarter');
    console.log(`\npeak RSS (MiB), image of ${(small.gzBytes / 1e6).toFixed(0)} MB gzip vs ${(full.gzBytes / 1e6).toFixed(0)} MB gzip:`);
    for (const [a, b] of [[small.save, full.save], [small.load, full.load]] as const) {
      for (let i = 0; i < a.length; i++) {
        console.log(`  ${a[i]!.name.padEnd(38)} ${median(a[i]!.runs.map((x) => x.maxRssMiB)).toFixed(0).padStart(5)} → ${median(b[i]!.runs.map((x) => x.maxRssMiB)).toFixed(0).padStart(5)}`);
      }
    }
  } finally {
    rm(base);
  }
}

await main();
