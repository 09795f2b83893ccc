// Pull benchmark: `stowage pull` (download + unpack into snapshots, through the built binary) of a
// large image (5 gzip layers of ~80 MB tar each, cut from this machine's files) served by the real
// docker-registry on loopback, against, in the same run:
//   - containerd 1.6's `ctr images pull` (private daemon, unpacks into the overlayfs snapshotter),
//   - `skopeo copy docker://… oci:DIR` (download only), and skopeo + `umoci unpack --rootless`.
// Every tool gets a fresh store per repetition; medians and minimums of wall time, peak RSS
// (/usr/bin/time -v for the clients, VmHWM for the containerd daemon), ratios stowage ÷ peer.
// Sanity: the tree of `stowage checkout` has the same files and bytes as umoci's and containerd's.
//
//   npx tsx bench/pull.ts [--reps=3] [--dir=/dev/shm] [--layers=5] [--layer-mb=80] [--snapshotter=overlayfs]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt } from '../test/cli/binary.js';
import { pushWithSkopeo } from '../test/harness/images.js';
import { startRegistry, type Registry } from '../test/harness/registry.js';
import { buildBenchImage, treeStats, type TreeStats } from './support/pull-image.js';
import { ctr, startContainerd, timed, unmountAll, type Containerd, type Timed } from './support/pull-peers.js';

const MiB = 1 << 20;
const projectRoot = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

const reps = Number(arg('reps') ?? 3);
const layerCount = Number(arg('layers') ?? 5);
const layerBytes = Number(arg('layer-mb') ?? 80) * 1e6;
const snapshotter = arg('snapshotter') ?? 'overlayfs';
const stowageBin = path.join(projectRoot, 'bin', 'stowage.js');

interface Sample { ms: number; rssMiB: number; rssNote?: string }
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const min = (xs: number[]) => Math.min(...xs);
const secs = (ms: number) => (ms / 1000).toFixed(2);

// Cleanup runs once, from `finally` or from a signal.
const cleanups: Array<() => Promise<void> | void> = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const f of cleanups.reverse()) {
      try { await f(); } catch (e) { console.error(`cleanup: ${(e as Error).message}`); }
    }
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => { void cleanup().finally(() => process.exit(130)); });
}

function rm(dir: string): void {
  unmountAll(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

function stowage(root: string, args: string[]): Promise<Timed> {
  return timed(process.execPath, [stowageBin, '--root', root, ...args], path.dirname(root), { cwd: projectRoot });
}

async function main(): Promise<void> {
  await ensureBuilt();
  const base = fs.mkdtempSync(path.join(arg('dir') ?? '/dev/shm', 'stowage-bench-pull-'));
  cleanups.push(() => rm(base));
  let reg: Registry | undefined;
  // A registry killed by the same Ctrl-C never emits 'exit' again, and the harness's stop() waits for
  // it: give stop() a few seconds, the run's directory (which holds the registry's own) goes anyway.
  cleanups.push(async () => {
    if (!reg) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([reg.stop(), new Promise((r) => { timer = setTimeout(r, 3000); })]);
    clearTimeout(timer);
  });

  let t0 = performance.now();
  const img = await buildBenchImage(path.join(base, 'layout'), { layers: layerCount, layerBytes, tag: 'latest' });
  const gzBytes = img.layers.reduce((n, l) => n + l.size, 0);
  console.log(`image: ${img.layers.length} layers, ${(img.tarBytes / 1e6).toFixed(0)} MB tar, ${(gzBytes / 1e6).toFixed(0)} MB gzip, `
    + `${img.expected.regularFiles} files + ${img.expected.symlinks} symlinks (built in ${secs(performance.now() - t0)} s)`);
  console.log(`  layers (MB tar / gzip): ${img.layers.map((l, i) => `${(img.layerTarBytes[i]! / 1e6).toFixed(1)}/${(l.size / 1e6).toFixed(1)}`).join(', ')}`);

  // The registry's work dir (config, log) comes from os.tmpdir(): put it under the run's directory.
  const tmpdir = process.env.TMPDIR;
  process.env.TMPDIR = base;
  try {
    reg = await startRegistry({ storageDir: path.join(base, 'registry') });
  } finally {
    if (tmpdir === undefined) delete process.env.TMPDIR; else process.env.TMPDIR = tmpdir;
  }
  t0 = performance.now();
  await pushWithSkopeo(img.layout, `docker://${reg.host}/bench/large:latest`, { tag: 'latest' });
  fs.rmSync(img.layout, { recursive: true, force: true });
  console.log(`pushed once to docker-registry ${reg.host} in ${secs(performance.now() - t0)} s`);
  const ref = `${reg.host}/bench/large:latest`;

  const ours: Sample[] = [];
  const ctrs: Sample[] = [];
  const skopeos: Sample[] = [];
  const umocis: Sample[] = [];
  const checkouts: Sample[] = [];
  const trees: Array<{ who: string; stats: TreeStats }> = [];

  // Interleaved repetitions (ours, ctr, skopeo+umoci): machine noise spreads over every tool alike.
  for (let i = 0; i < reps; i++) {
    const first = i === 0;

    // a. stowage pull (download + unpack into snapshots), then on the first rep a checkout for the sanity check.
    const root = path.join(base, `stowage-${i}`);
    const s = await stowage(root, ['pull', '-q', ref]);
    ours.push({ ms: s.ms, rssMiB: s.maxRssMiB });
    if (first) {
      const out = path.join(base, 'stowage-checkout');
      const c = await stowage(root, ['checkout', ref, out]);
      checkouts.push({ ms: c.ms, rssMiB: c.maxRssMiB });
      trees.push({ who: 'stowage checkout', stats: treeStats(out) });
      rm(out);
    }
    rm(root);

    // b. containerd: a fresh daemon and store per rep (its VmHWM is then this pull's peak).
    const cdir = path.join(base, `containerd-${i}`);
    let daemon: Containerd | undefined;
    const stopDaemon = async () => { await daemon?.stop(); daemon = undefined; };
    cleanups.push(stopDaemon);
    try {
      daemon = await startContainerd(cdir);
      const baseline = daemon.peakRssMiB();
      const c = await timed('ctr', ['--address', daemon.address, '-n', 'bench', 'images', 'pull', '--plain-http', '--snapshotter', snapshotter, ref], base);
      const dRss = daemon.peakRssMiB();
      ctrs.push({ ms: c.ms, rssMiB: c.maxRssMiB + dRss, rssNote: `ctr ${c.maxRssMiB.toFixed(0)} + containerd ${dRss.toFixed(0)} (idle ${baseline.toFixed(0)})` });
      if (first) {
        // The merged view of the unpacked snapshots, mounted read-only by containerd's own tooling.
        const mnt = path.join(base, 'ctr-mount');
        fs.mkdirSync(mnt);
        try {
          ctr(daemon.address, ['images', 'mount', '--snapshotter', snapshotter, ref, mnt]);
          trees.push({ who: `containerd (${snapshotter})`, stats: treeStats(mnt) });
        } catch (e) {
          console.log(`  (could not mount containerd's unpacked image: ${(e as Error).message.split('\n')[0]})`);
        } finally {
          try { ctr(daemon.address, ['images', 'unmount', '--rm', mnt]); } catch { unmountAll(mnt); }
        }
      }
    } finally {
      await stopDaemon();
      rm(cdir);
    }

    // c. skopeo copy (download only), then umoci unpack of that layout (download + unpack together).
    const layout = path.join(base, `skopeo-${i}`);
    const sk = await timed('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:bench`], base);
    skopeos.push({ ms: sk.ms, rssMiB: sk.maxRssMiB });
    const bundle = path.join(base, `umoci-${i}`);
    const um = await timed('umoci', ['unpack', '--rootless', '--image', `${layout}:bench`, bundle], base);
    umocis.push({ ms: sk.ms + um.ms, rssMiB: Math.max(sk.maxRssMiB, um.maxRssMiB), rssNote: `skopeo ${sk.maxRssMiB.toFixed(0)}, umoci ${um.maxRssMiB.toFixed(0)}; umoci alone ${secs(um.ms)} s` });
    if (first) trees.push({ who: 'umoci unpack --rootless', stats: treeStats(path.join(bundle, 'rootfs')) });
    rm(bundle);
    rm(layout);
    console.log(`  rep ${i + 1}/${reps}: stowage ${secs(s.ms)} s, ctr ${secs(ctrs.at(-1)!.ms)} s, skopeo ${secs(sk.ms)} s, umoci unpack ${secs(um.ms)} s`);
  }

  // The table.
  const oMed = median(ours.map((r) => r.ms));
  const oRss = median(ours.map((r) => r.rssMiB));
  const rows: Array<[string, Sample[], boolean]> = [
    ['stowage pull (download + unpack)', ours, false],
    [`ctr images pull (unpack, ${snapshotter})`, ctrs, true],
    ['skopeo copy → oci: (download only)', skopeos, true],
    ['skopeo copy + umoci unpack --rootless', umocis, true],
  ];
  const w = 40;
  console.log(`\npull of ${ref.replace(reg.host, 'REGISTRY')}: ${layerCount} layers, ${(gzBytes / 1e6).toFixed(0)} MB gzip / ${(img.tarBytes / 1e6).toFixed(0)} MB tar; `
    + `stores in ${arg('dir') ?? '/dev/shm'}; ${reps} reps, fresh store each; load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log(`${'tool'.padEnd(w)} ${'median s'.padStart(9)} ${'min s'.padStart(7)} ${'MB/s tar'.padStart(9)} ${'peak RSS MiB'.padStart(13)} ${'stowage ÷ peer'.padStart(15)} ${'RSS ÷'.padStart(7)}  notes`);
  for (const [name, xs, peer] of rows) {
    const med = median(xs.map((r) => r.ms));
    const rss = median(xs.map((r) => r.rssMiB));
    const note = [...xs].sort((a, b) => a.ms - b.ms)[Math.floor(xs.length / 2)]?.rssNote ?? '';
    console.log(`${name.padEnd(w)} ${secs(med).padStart(9)} ${secs(min(xs.map((r) => r.ms))).padStart(7)} ${(img.tarBytes / 1e6 / (med / 1000)).toFixed(0).padStart(9)} `
      + `${rss.toFixed(0).padStart(13)} ${(peer ? `${(oMed / med).toFixed(2)}×` : '').padStart(15)} ${(peer ? `${(oRss / rss).toFixed(2)}×` : '').padStart(7)}  ${note}`);
  }
  console.log(`runs (s): stowage ${ours.map((r) => secs(r.ms)).join(', ')}; ctr ${ctrs.map((r) => secs(r.ms)).join(', ')}; `
    + `skopeo ${skopeos.map((r) => secs(r.ms)).join(', ')}; skopeo+umoci ${umocis.map((r) => secs(r.ms)).join(', ')}`);
  console.log(`stowage checkout of the pulled image into a directory (not in the ratios): ${secs(checkouts[0]!.ms)} s, peak RSS ${checkouts[0]!.rssMiB.toFixed(0)} MiB`);

  // Sanity: same trees.
  console.log(`\nsanity: expected ${img.expected.regularFiles} regular files, ${img.expected.regularBytes} bytes (each name counted; hard links share inodes), ${img.expected.symlinks} symlinks`);
  let ok = true;
  for (const t of trees) {
    const s = t.stats;
    const same = s.regularFiles === img.expected.regularFiles && s.regularBytes === img.expected.regularBytes && s.symlinks === img.expected.symlinks;
    ok &&= same;
    console.log(`  ${t.who.padEnd(28)} ${String(s.regularFiles).padStart(7)} files ${String(s.regularBytes).padStart(11)} bytes ${String(s.symlinks).padStart(6)} symlinks ${String(s.dirs).padStart(6)} dirs  ${(s.inodeBytes / 1e6).toFixed(1).padStart(6)} MB in distinct inodes  shape ${s.shape}  ${same ? 'ok' : 'MISMATCH'}`);
  }
  const shapes = new Set(trees.map((t) => t.stats.shape));
  console.log(`  tree shapes (paths, types, sizes, link targets) ${shapes.size === 1 ? 'identical' : 'DIFFER'} across ${trees.length} trees`);
  if (!ok || shapes.size !== 1) process.exitCode = 1;
}

try {
  await main();
} finally {
  await cleanup();
}
