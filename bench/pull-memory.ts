// Pull memory benchmark: peak RSS of `stowage pull` (the built binary, download + unpack) of an image
// of ONE layer, 100 MB and 1 GiB of tar by default, cut from this machine's /usr/lib and served by the
// real docker-registry on loopback. Everything streams, so the peak must not grow with the layer: the
// bigger layer's peak is printed beside the smaller one's, with the wall times (each pull into a fresh
// loop-mounted ext4 when root, tmpfs otherwise). No peer: the figure is ours against its own target
// (≤ 150 MiB, flat across sizes).
//
//   npx tsx bench/pull-memory.ts [--sizes=100,1000] [--reps=2] [--fs=ext4]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt } from '../test/cli/binary.js';
import { pushWithSkopeo } from '../test/harness/images.js';
import { startRegistry, type Registry } from '../test/harness/registry.js';
import { buildBenchImage } from './support/pull-image.js';
import { timed } from './support/pull-peers.js';
import { benchFsKinds, freshFs } from './support/scratch-fs.js';
import { summarise } from './support/summary.js';

const projectRoot = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const sizes = (arg('sizes') ?? '100,1000').split(',').map(Number);
const reps = Number(arg('reps') ?? 2);
const kind = benchFsKinds()[0]!;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  await ensureBuilt();
  const base = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : '/tmp', 'stowage-bench-mem-'));
  let reg: Registry | undefined;
  const tmpdir = process.env.TMPDIR;
  try {
    process.env.TMPDIR = base;
    reg = await startRegistry({ storageDir: path.join(base, 'registry') });
    if (tmpdir === undefined) delete process.env.TMPDIR; else process.env.TMPDIR = tmpdir;
    const results: Array<{ mb: number; tarMB: number; gzMB: number; ms: number[]; rss: number[] }> = [];
    for (const mb of sizes) {
      const layout = path.join(base, `layout-${mb}`);
      const img = await buildBenchImage(layout, { layers: 1, layerBytes: mb * 1e6, tag: 'latest', roots: [['usr/lib']] });
      await pushWithSkopeo(layout, `docker://${reg.host}/bench/one-layer-${mb}:latest`, { tag: 'latest' });
      fs.rmSync(layout, { recursive: true, force: true });
      const r = { mb, tarMB: img.tarBytes / 1e6, gzMB: img.layers[0]!.size / 1e6, ms: [] as number[], rss: [] as number[] };
      for (let i = 0; i < reps; i++) {
        const f = freshFs(kind, 'mem');
        try {
          const t = await timed(path.join(projectRoot, 'bin', 'stowage.js'), ['--root', path.join(f.dir, 'store'), 'pull', '-q', `${reg.host}/bench/one-layer-${mb}:latest`], base, { cwd: projectRoot });
          r.ms.push(t.ms);
          r.rss.push(t.maxRssMiB);
        } finally { f.dispose(); }
      }
      console.log(`one layer, ${r.tarMB.toFixed(0)} MB tar / ${r.gzMB.toFixed(0)} MB gzip on ${kind}: ${r.ms.map((x) => (x / 1000).toFixed(2)).join(', ')} s; peak RSS ${r.rss.map((x) => x.toFixed(0)).join(', ')} MiB`);
      results.push(r);
    }
    for (const r of results) {
      summarise({ operation: `pull peak RSS, one layer of ${r.tarMB.toFixed(0)} MB tar (${r.gzMB.toFixed(0)} MB gzip)`, fs: kind, unit: 's', stowage: median(r.ms) / 1000, stowageRssMiB: median(r.rss), peers: [] });
    }
    if (results.length > 1) {
      const [small, big] = [results[0]!, results[results.length - 1]!];
      console.log(`peak RSS ${median(small.rss).toFixed(0)} MiB at ${small.tarMB.toFixed(0)} MB, ${median(big.rss).toFixed(0)} MiB at ${big.tarMB.toFixed(0)} MB `
        + `(${(median(big.rss) / median(small.rss)).toFixed(2)}× for ${(big.tarMB / small.tarMB).toFixed(1)}× the bytes); target ≤ 150 MiB: ${results.every((r) => median(r.rss) <= 150) ? 'met' : 'NOT met'}`);
    }
  } finally {
    await reg?.stop().catch(() => undefined);
    fs.rmSync(base, { recursive: true, force: true });
  }
}

await main();
