// Pull benchmark: `stowage pull` (download + unpack into snapshots, through the built binary) of a
// large image (5 gzip layers of ~80 MB tar each, cut from this machine's files) served by the real
// docker-registry on loopback, against, in the same run:
//   - containerd 1.6's `ctr images pull` (private daemon, unpacks into the overlayfs snapshotter),
//   - GNU `gzip -dc | tar -x` of the same layer blobs, all layers at once, no network (the issue's floor),
//   - the same work as a pull done by native tools, all layers at once: `curl` each blob from the
//     registry, keep it and check its sha256 as it arrives, and `gzip -dc | tar -x` it, hashing the tar
//     (the diffID) on the way: what gzip|tar leaves out (download, two digests, the kept blob), priced,
//   - `node`'s own `fs.cpSync` of the checked-out tree beside `cp -a` (what copying costs from Node),
//     and a plain copier in Node on both cores (bench/support/node-copy.mjs: no store, no layers),
//   - `skopeo copy docker://… oci:DIR` (download only), and skopeo + `umoci unpack --rootless`;
// and `stowage checkout` (copy, and --hardlink) against `cp -a` / `cp -al` of the same tree.
// Every tool writes into a file system of its own per repetition (bench/support/scratch-fs.ts): a
// fresh loop-mounted ext4 when root (the first column: where users keep their stores), then tmpfs.
// Medians and minimums of wall time, peak RSS (/usr/bin/time -v for the clients, VmHWM for the
// containerd daemon), CPU time (user + system; the daemon's from /proc) and the cores it kept busy
// (CPU ÷ wall: a tool may spend no more CPU and still take longer, by leaving a core idle), ratios
// stowage ÷ peer. Sanity: the trees of stowage, umoci and containerd have
// the same files and bytes.
//
//   npx tsx bench/pull.ts [--reps=3] [--fs=ext4,tmpfs] [--layers=5] [--layer-mb=80] [--snapshotter=overlayfs]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt } from '../test/cli/binary.js';
import { pushWithSkopeo } from '../test/harness/images.js';
import { startRegistry, type Registry } from '../test/harness/registry.js';
import { buildBenchImage, treeStats, type TreeStats } from './support/pull-image.js';
import { ctr, processCpuS, startContainerd, timed, unmountAll, type Containerd, type Timed } from './support/pull-peers.js';
import { benchFsKinds, freshFs, type FsKind, type ScratchFs } from './support/scratch-fs.js';
import { summarise } from './support/summary.js';

const projectRoot = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

const reps = Number(arg('reps') ?? 3);
const layerCount = Number(arg('layers') ?? 5);
const layerBytes = Number(arg('layer-mb') ?? 80) * 1e6;
const snapshotter = arg('snapshotter') ?? 'overlayfs';
const stowageBin = path.join(projectRoot, 'bin', 'stowage.js');

interface Sample { ms: number; rssMiB: number; rssNote?: string; cpuS?: number }
/** The environment without NODE_EXTRA_CA_CERTS, which the stowage launcher keeps from Node's start. */
function bareNodeEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}
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

function stowage(root: string, args: string[], scratch: string): Promise<Timed> {
  return timed(stowageBin, ['--root', root, ...args], scratch, { cwd: projectRoot });
}

/** The samples of one file-system kind. */
interface Column {
  kind: FsKind;
  ours: Sample[]; ctrs: Sample[]; tars: Sample[]; skopeos: Sample[]; umocis: Sample[];
  checkouts: Sample[]; cps: Sample[]; hardlinks: Sample[]; cpls: Sample[]; sameWork: Sample[]; nodeCps: Sample[];
  /** The floors of a checkout from Node: cp -a / cp -al of the tree as two halves at once (both cores), and `node -e 0`. */
  cpHalves: Sample[]; cplHalves: Sample[]; nodeStarts: Sample[];
  /** A plain copier of the tree in Node, on both cores (bench/support/node-copy.mjs). */
  nodeCopies: Sample[];
}

/**
 * The tree's entries split in two groups of about equal file counts, for two cp's at once: the level
 * below the single-child chain at the top (here usr/: bin, lib, share). `dir` is that level, relative.
 */
function halves(tree: string): { dir: string; groups: [string[], string[]] } {
  let dir = '';
  let names = fs.readdirSync(tree);
  while (names.length === 1 && fs.lstatSync(path.join(tree, dir, names[0]!)).isDirectory()) {
    dir = path.join(dir, names[0]!);
    names = fs.readdirSync(path.join(tree, dir));
  }
  const count = (p: string): number => {
    const st = fs.lstatSync(p);
    return st.isDirectory() ? 1 + fs.readdirSync(p).reduce((n, c) => n + count(path.join(p, c)), 0) : 1;
  };
  const sized = names.map((n) => ({ n, files: count(path.join(tree, dir, n)) })).sort((a, b) => b.files - a.files);
  const groups: [string[], string[]] = [[], []];
  const totals = [0, 0];
  for (const { n, files } of sized) {
    const g = totals[0]! <= totals[1]! ? 0 : 1;
    groups[g]!.push(n);
    totals[g] = totals[g]! + files;
  }
  return { dir, groups };
}

/**
 * Writes back what the last tool left dirty on the file system, so that each copy below starts alike
 * (four trees of 400 MB are copied in a row; without it, each paid for the writeback of the ones before).
 */
function settle(dir: string): void {
  spawnSync('sync', ['-f', dir], { stdio: 'ignore' });
}

/** `cp flags` of the tree's two halves into `to`, both at once. */
function cpHalvesScript(flags: string, tree: string, to: string): string {
  const { dir, groups } = halves(tree);
  const src = (n: string) => JSON.stringify(path.join(tree, dir, n));
  const dst = JSON.stringify(path.join(to, dir));
  const cps = groups.filter((g) => g.length > 0).map((g) => `cp ${flags} ${g.map(src).join(' ')} ${dst}/ &`);
  return [`mkdir -p ${dst}`, ...cps, 'wait'].join('\n');
}

async function main(): Promise<void> {
  await ensureBuilt();
  const kinds = benchFsKinds();
  // The image, the registry and its storage live on tmpfs: they are the source, read by every tool alike.
  const base = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : '/tmp', 'stowage-bench-pull-'));
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
  // The layer blobs, kept for the GNU tar floor (the layout itself goes: the registry holds the image).
  const blobs = path.join(base, 'blobs');
  fs.mkdirSync(blobs);
  const layerFiles = img.layers.map((l, i) => {
    const to = path.join(blobs, `layer-${i}.tar.gz`);
    fs.renameSync(path.join(img.layout, 'blobs', 'sha256', l.digest.slice('sha256:'.length)), to);
    return to;
  });
  fs.rmSync(img.layout, { recursive: true, force: true });
  console.log(`pushed once to docker-registry ${reg.host} in ${secs(performance.now() - t0)} s`);
  // Writes back what building and pushing the image left dirty before the first timed tool runs: in two
  // runs, the first pull (always stowage's) took 2.81 and 4.82 s against 2.05-2.64 s for the others.
  spawnSync('sync', { stdio: 'ignore' });
  const ref = `${reg.host}/bench/large:latest`;
  const trees: Array<{ who: string; stats: TreeStats }> = [];
  const columns: Column[] = [];

  for (const kind of kinds) {
    const col: Column = {
      kind, ours: [], ctrs: [], tars: [], skopeos: [], umocis: [], checkouts: [], cps: [], hardlinks: [], cpls: [], sameWork: [], nodeCps: [],
      cpHalves: [], cplHalves: [], nodeStarts: [], nodeCopies: [],
    };
    columns.push(col);
    // Interleaved repetitions (ours, ctr, tar, skopeo+umoci): machine noise spreads over every tool alike.
    for (let i = 0; i < reps; i++) {
      const first = i === 0 && kind === kinds[0];
      const scratchFs = (label: string): ScratchFs => {
        const f = freshFs(kind, label);
        cleanups.push(() => f.dispose());
        return f;
      };

      // a. stowage pull (download + unpack into snapshots); then checkouts beside the store, and the
      //    same trees copied by cp, on the same file system.
      {
        const f = scratchFs('stowage');
        const root = path.join(f.dir, 'store');
        const s = await stowage(root, ['pull', '-q', ref], base);
        col.ours.push({ ms: s.ms, rssMiB: s.maxRssMiB, cpuS: s.cpuS });
        const out = path.join(f.dir, 'checkout');
        settle(f.dir);
        const c = await stowage(root, ['checkout', ref, out], base);
        col.checkouts.push({ ms: c.ms, rssMiB: c.maxRssMiB, cpuS: c.cpuS });
        if (first) trees.push({ who: 'stowage checkout', stats: treeStats(out) });
        settle(f.dir);
        const cp = await timed('cp', ['-a', out, path.join(f.dir, 'cp-a')], base);
        col.cps.push({ ms: cp.ms, rssMiB: cp.maxRssMiB, cpuS: cp.cpuS });
        settle(f.dir);
        const h = await stowage(root, ['checkout', '--hardlink', ref, path.join(f.dir, 'hardlink')], base);
        col.hardlinks.push({ ms: h.ms, rssMiB: h.maxRssMiB, cpuS: h.cpuS });
        settle(f.dir);
        const cpl = await timed('cp', ['-al', out, path.join(f.dir, 'cp-al')], base);
        col.cpls.push({ ms: cpl.ms, rssMiB: cpl.maxRssMiB, cpuS: cpl.cpuS });
        settle(f.dir);
        const ncp = await timed(process.execPath, ['-e', 'require("fs").cpSync(process.argv[1], process.argv[2], { recursive: true, preserveTimestamps: true, verbatimSymlinks: true })', out, path.join(f.dir, 'node-cp')], base);
        col.nodeCps.push({ ms: ncp.ms, rssMiB: ncp.maxRssMiB, cpuS: ncp.cpuS });
        settle(f.dir);
        const plain = path.join(f.dir, 'node-copy');
        const nc = await timed(process.execPath, [path.join(projectRoot, 'bench', 'support', 'node-copy.mjs'), out, plain], base, { env: bareNodeEnv() });
        col.nodeCopies.push({ ms: nc.ms, rssMiB: nc.maxRssMiB, cpuS: nc.cpuS });
        if (first) trees.push({ who: 'plain Node copier', stats: treeStats(plain) });
        settle(f.dir);
        const cph = await timed('sh', ['-ec', cpHalvesScript('-a', out, path.join(f.dir, 'cp-a-halves'))], base);
        col.cpHalves.push({ ms: cph.ms, rssMiB: cph.maxRssMiB, cpuS: cph.cpuS });
        settle(f.dir);
        const cplh = await timed('sh', ['-ec', cpHalvesScript('-al', out, path.join(f.dir, 'cp-al-halves'))], base);
        col.cplHalves.push({ ms: cplh.ms, rssMiB: cplh.maxRssMiB, cpuS: cplh.cpuS });
        // Node's start as the stowage launcher has it: without parsing NODE_EXTRA_CA_CERTS (bin/stowage.js).
        const n0 = await timed(process.execPath, ['-e', '0'], base, { env: bareNodeEnv() });
        col.nodeStarts.push({ ms: n0.ms, rssMiB: n0.maxRssMiB, cpuS: n0.cpuS });
        f.dispose();
      }

      // b. containerd: a fresh daemon and store per rep (its VmHWM is then this pull's peak).
      {
        const f = scratchFs('containerd');
        const cdir = path.join(f.dir, 'containerd');
        let daemon: Containerd | undefined;
        const stopDaemon = async () => { await daemon?.stop(); daemon = undefined; };
        cleanups.push(stopDaemon);
        try {
          daemon = await startContainerd(cdir);
          const baseline = daemon.peakRssMiB();
          const daemonCpu0 = processCpuS(daemon.pid);
          const c = await timed('ctr', ['--address', daemon.address, '-n', 'bench', 'images', 'pull', '--plain-http', '--snapshotter', snapshotter, ref], base);
          const dRss = daemon.peakRssMiB();
          col.ctrs.push({ ms: c.ms, rssMiB: c.maxRssMiB + dRss, cpuS: c.cpuS + processCpuS(daemon.pid) - daemonCpu0, rssNote: `ctr ${c.maxRssMiB.toFixed(0)} + containerd ${dRss.toFixed(0)} (idle ${baseline.toFixed(0)})` });
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
          f.dispose();
        }
      }

      // c. GNU gzip | tar, every layer at once into a directory of its own (as an overlay store lays
      //    layers out), from local files: the floor for decompress + write, with no network at all.
      {
        const f = scratchFs('tar');
        const script = layerFiles.map((file, n) => `mkdir ${f.dir}/${n} && gzip -dc ${file} | tar -x -C ${f.dir}/${n} &`).join('\n') + '\nwait';
        const t = await timed('sh', ['-ec', script], base);
        col.tars.push({ ms: t.ms, rssMiB: t.maxRssMiB, cpuS: t.cpuS });
        f.dispose();
      }

      // c2. the same work as a pull, by native tools (see the header), every layer at once.
      {
        const f = scratchFs('same-work');
        const url = (d: string) => `http://${reg!.host}/v2/bench/large/blobs/${d}`;
        const script = `mkdir ${f.dir}/blobs\n` + img.layers.map((l, n) => `( mkdir ${f.dir}/${n} && curl -sf ${url(l.digest)} `
          + `| tee ${f.dir}/blobs/${n} >(sha256sum >${f.dir}/blobs/${n}.sha) | gzip -dc | tee >(sha256sum >${f.dir}/${n}.diffid) | tar -x -C ${f.dir}/${n} ) &`).join('\n') + '\nwait';
        const t = await timed('bash', ['-ec', script], base);
        col.sameWork.push({ ms: t.ms, rssMiB: t.maxRssMiB, cpuS: t.cpuS });
        img.layers.forEach((l, n) => {
          const got = fs.readFileSync(`${f.dir}/blobs/${n}.sha`, 'utf8').split(' ')[0];
          if (`sha256:${got}` !== l.digest) throw new Error(`same-work row: layer ${n} fetched with sha256 ${got}, expected ${l.digest}`);
        });
        f.dispose();
      }

      // d. skopeo copy (download only), then umoci unpack of that layout (download + unpack together).
      {
        const f = scratchFs('umoci');
        const layout = path.join(f.dir, 'layout');
        const sk = await timed('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:bench`], base);
        col.skopeos.push({ ms: sk.ms, rssMiB: sk.maxRssMiB, cpuS: sk.cpuS });
        const bundle = path.join(f.dir, 'bundle');
        const um = await timed('umoci', ['unpack', '--rootless', '--image', `${layout}:bench`, bundle], base);
        col.umocis.push({ ms: sk.ms + um.ms, rssMiB: Math.max(sk.maxRssMiB, um.maxRssMiB), cpuS: sk.cpuS + um.cpuS, rssNote: `skopeo ${sk.maxRssMiB.toFixed(0)}, umoci ${um.maxRssMiB.toFixed(0)}; umoci alone ${secs(um.ms)} s` });
        if (first) trees.push({ who: 'umoci unpack --rootless', stats: treeStats(path.join(bundle, 'rootfs')) });
        f.dispose();
      }
      console.log(`  ${kind} rep ${i + 1}/${reps}: stowage ${secs(col.ours.at(-1)!.ms)} s, ctr ${secs(col.ctrs.at(-1)!.ms)} s, gzip|tar ${secs(col.tars.at(-1)!.ms)} s, same work natively ${secs(col.sameWork.at(-1)!.ms)} s, `
        + `skopeo ${secs(col.skopeos.at(-1)!.ms)} s, skopeo+umoci ${secs(col.umocis.at(-1)!.ms)} s; checkout ${secs(col.checkouts.at(-1)!.ms)} s vs cp -a ${secs(col.cps.at(-1)!.ms)} s, `
        + `node fs.cpSync ${secs(col.nodeCps.at(-1)!.ms)} s, plain Node copier ${secs(col.nodeCopies.at(-1)!.ms)} s, --hardlink ${secs(col.hardlinks.at(-1)!.ms)} s vs cp -al ${secs(col.cpls.at(-1)!.ms)} s`);
    }
  }

  // The tables, one per file system.
  const fsName = (k: FsKind) => (k === 'ext4' ? 'ext4 (fresh loop mount per tool per rep)' : 'tmpfs (/dev/shm)');
  const w = 44;
  for (const col of columns) {
    const oMed = median(col.ours.map((r) => r.ms));
    const oRss = median(col.ours.map((r) => r.rssMiB));
    const rows: Array<[string, Sample[], boolean]> = [
      ['stowage pull (download + unpack)', col.ours, false],
      [`ctr images pull (unpack, ${snapshotter})`, col.ctrs, true],
      ['gzip -dc | tar -x, layers at once, no network', col.tars, true],
      ['curl | tee blob, sha256 | gzip -dc | sha256, tar', col.sameWork, true],
      ['skopeo copy → oci: (download only)', col.skopeos, true],
      ['skopeo copy + umoci unpack --rootless', col.umocis, true],
    ];
    console.log(`\npull of ${ref.replace(reg.host, 'REGISTRY')}: ${layerCount} layers, ${(gzBytes / 1e6).toFixed(0)} MB gzip / ${(img.tarBytes / 1e6).toFixed(0)} MB tar; `
      + `${fsName(col.kind)}; ${reps} reps; load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    // CPU s: user + system of the command and its children (ctr: and the daemon's, from /proc); cores:
    // CPU s ÷ wall, how much of the machine the tool kept busy (2.00 = both cores all the time).
    console.log(`${'tool'.padEnd(w)} ${'median s'.padStart(9)} ${'min s'.padStart(7)} ${'MB/s tar'.padStart(9)} ${'CPU s'.padStart(6)} ${'cores'.padStart(6)} ${'peak RSS MiB'.padStart(13)} ${'stowage ÷ peer'.padStart(15)} ${'RSS ÷'.padStart(7)}  notes`);
    for (const [name, xs, peer] of rows) {
      const med = median(xs.map((r) => r.ms));
      const rss = median(xs.map((r) => r.rssMiB));
      const cpus = xs.filter((r) => r.cpuS !== undefined).map((r) => r.cpuS!);
      const cores = xs.filter((r) => r.cpuS !== undefined).map((r) => r.cpuS! / (r.ms / 1000));
      const note = [...xs].sort((a, b) => a.ms - b.ms)[Math.floor(xs.length / 2)]?.rssNote ?? '';
      console.log(`${name.padEnd(w)} ${secs(med).padStart(9)} ${secs(min(xs.map((r) => r.ms))).padStart(7)} ${(img.tarBytes / 1e6 / (med / 1000)).toFixed(0).padStart(9)} `
        + `${(cpus.length ? median(cpus).toFixed(2) : '').padStart(6)} ${(cores.length ? median(cores).toFixed(2) : '').padStart(6)} `
        + `${rss.toFixed(0).padStart(13)} ${(peer ? `${(oMed / med).toFixed(2)}×` : '').padStart(15)} ${(peer ? `${(oRss / rss).toFixed(2)}×` : '').padStart(7)}  ${note}`);
    }
    const pairs: Array<[string, Sample[], Sample[]]> = [['stowage checkout vs cp -a', col.checkouts, col.cps], ['node fs.cpSync vs cp -a', col.nodeCps, col.cps],
      ['stowage checkout vs node fs.cpSync', col.checkouts, col.nodeCps], ['stowage checkout --hardlink vs cp -al', col.hardlinks, col.cpls]];
    for (const [name, ours, theirs] of pairs) {
      const a = median(ours.map((r) => r.ms));
      const b = median(theirs.map((r) => r.ms));
      console.log(`${name.padEnd(w)} ${secs(a).padStart(9)} vs ${secs(b)} s  → ${(a / b).toFixed(2)}×`);
    }
    // What a checkout from Node cannot beat: Node's own start, plus the kernel's work spread over both
    // cores (the two halves copied at once by cp); and a plain copier in Node on both cores, which pays
    // Node's cost per call too. Printed beside cp alone.
    const ms = (xs: Sample[]) => median(xs.map((r) => r.ms));
    const floors: Array<[string, number, Sample[]]> = [
      ['floor: node -e 0 + cp -a, 2 halves at once', ms(col.nodeStarts) + ms(col.cpHalves), col.cps],
      ['floor: node -e 0 + cp -al, 2 halves at once', ms(col.nodeStarts) + ms(col.cplHalves), col.cpls],
      ['plain Node copier, 2 threads (node-copy.mjs)', ms(col.nodeCopies), col.cps],
    ];
    console.log(`(node -e 0 without NODE_EXTRA_CA_CERTS ${secs(ms(col.nodeStarts))} s; cp -a in 2 halves at once ${secs(ms(col.cpHalves))} s; cp -al in 2 halves at once ${secs(ms(col.cplHalves))} s)`);
    for (const [name, floor, peer] of floors) console.log(`${name.padEnd(w)} ${secs(floor).padStart(9)} vs ${secs(ms(peer))} s  → ${(floor / ms(peer)).toFixed(2)}× of the peer`);
    console.log(`runs (s): stowage ${col.ours.map((r) => secs(r.ms)).join(', ')}; ctr ${col.ctrs.map((r) => secs(r.ms)).join(', ')}; gzip|tar ${col.tars.map((r) => secs(r.ms)).join(', ')}; same work natively ${col.sameWork.map((r) => secs(r.ms)).join(', ')}; `
      + `skopeo ${col.skopeos.map((r) => secs(r.ms)).join(', ')}; skopeo+umoci ${col.umocis.map((r) => secs(r.ms)).join(', ')}`);

    const med = (xs: Sample[]) => median(xs.map((r) => r.ms)) / 1000;
    const rssOf = (xs: Sample[]) => median(xs.map((r) => r.rssMiB));
    const op = `pull + unpack, ${layerCount} layers ${(gzBytes / 1e6).toFixed(0)} MB gz`;
    summarise({
      operation: op, fs: col.kind, unit: 's', stowage: med(col.ours), stowageRssMiB: rssOf(col.ours),
      peers: [
        { peer: 'ctr images pull', value: med(col.ctrs), rssMiB: rssOf(col.ctrs) },
        { peer: 'gzip -dc | tar -x (parallel)', value: med(col.tars), rssMiB: rssOf(col.tars) },
        { peer: 'same work by curl, sha256sum, gzip, tar', value: med(col.sameWork), rssMiB: rssOf(col.sameWork) },
        { peer: 'skopeo copy + umoci unpack', value: med(col.umocis), rssMiB: rssOf(col.umocis) },
      ],
      targets: { 'ctr images pull': 0.4, 'gzip -dc | tar -x (parallel)': 1.15 },
    });
    summarise({ operation: 'checkout (copy)', fs: col.kind, unit: 's', stowage: med(col.checkouts), stowageRssMiB: rssOf(col.checkouts), peers: [{ peer: 'cp -a', value: med(col.cps), rssMiB: rssOf(col.cps) }, { peer: 'node fs.cpSync', value: med(col.nodeCps), rssMiB: rssOf(col.nodeCps) }, { peer: 'plain Node copier (node-copy.mjs)', value: med(col.nodeCopies), rssMiB: rssOf(col.nodeCopies) }], targets: { 'cp -a': 1.0 } });
    summarise({ operation: 'checkout --hardlink', fs: col.kind, unit: 's', stowage: med(col.hardlinks), stowageRssMiB: rssOf(col.hardlinks), peers: [{ peer: 'cp -al', value: med(col.cpls), rssMiB: rssOf(col.cpls) }], targets: { 'cp -al': 1.0 } });
  }

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
