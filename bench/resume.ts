// Resume benchmark: what killed pulls cost in downloads, on a large image.
//
// `stowage pull` of the bench image (5 gzip layers of ~80 MB tar each) through a recording proxy in
// front of the real docker-registry, SIGKILLed each time the registry has served another fifth of the
// image, then run to completion. Printed per kill: what the registry had served, what the store held
// on disk afterwards (committed blobs plus ingest data), and the difference: the bytes in flight
// (socket buffers, the chunk being written) that a kill throws away. Then the total served beyond
// the image's own size, and the bytes the store already held but the re-runs fetched again (0 when
// every resume starts at the end of its ingest).
//
//   npx tsx bench/resume.ts [--layers=5] [--layer-mb=80] [--kills=4]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt } from '../test/cli/binary.js';
import { pushWithSkopeo } from '../test/harness/images.js';
import { startFaultProxy, type ProxyRecord } from '../test/harness/proxy.js';
import { refetchedBytes } from '../test/harness/redownload.js';
import { startRegistry } from '../test/harness/registry.js';
import { buildBenchImage } from './support/pull-image.js';
import { canMakeExt4, freshFs } from './support/scratch-fs.js';

const projectRoot = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const layerCount = Number(arg('layers') ?? 5);
const layerBytes = Number(arg('layer-mb') ?? 80) * 1e6;
const killCount = Number(arg('kills') ?? 4);
const stowageBin = path.join(projectRoot, 'bin', 'stowage.js');
const MB = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
const pct = (n: number, of: number) => `${((100 * n) / of).toFixed(2)}%`;

const blobBytes = (records: ProxyRecord[]) =>
  records.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).reduce((n, r) => n + r.bytesSent, 0);

/** What the store holds of each blob: the whole blob once committed, else its largest ingest. */
function heldByDigest(root: string, sizes: Map<string, number>): Map<string, number> {
  // An ingest directory does not name its digest; the ingest's `ref` file does (`<kind>-<digest>`).
  const held = new Map<string, number>();
  const ingest = path.join(root, 'ingest');
  for (const dir of fs.existsSync(ingest) ? fs.readdirSync(ingest) : []) {
    const ref = path.join(ingest, dir, 'ref');
    const data = path.join(ingest, dir, 'data');
    if (!fs.existsSync(ref) || !fs.existsSync(data)) continue;
    const d = /sha256:[0-9a-f]{64}/.exec(fs.readFileSync(ref, 'utf8'))?.[0];
    if (d) held.set(d, Math.max(held.get(d) ?? 0, fs.statSync(data).size));
  }
  for (const d of sizes.keys()) {
    if (fs.existsSync(path.join(root, 'blobs', 'sha256', d.slice('sha256:'.length)))) held.set(d, sizes.get(d)!);
  }
  return held;
}

async function main(): Promise<void> {
  await ensureBuilt();
  const base = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : '/tmp', 'stowage-bench-resume-'));
  const kind = canMakeExt4() ? 'ext4' : 'tmpfs';
  const scratch = freshFs(kind, 'resume');
  const tmpdir = process.env.TMPDIR;
  process.env.TMPDIR = base;
  const reg = await startRegistry({ storageDir: path.join(base, 'registry') });
  if (tmpdir === undefined) delete process.env.TMPDIR; else process.env.TMPDIR = tmpdir;
  const proxy = await startFaultProxy(reg.url);
  try {
    const img = await buildBenchImage(path.join(base, 'layout'), { layers: layerCount, layerBytes, tag: 'latest' });
    await pushWithSkopeo(img.layout, `docker://${reg.host}/bench/large:latest`, { tag: 'latest' });
    const sizes = new Map(img.layers.map((l) => [l.digest as string, l.size]));
    const imageBytes = img.layers.reduce((n, l) => n + l.size, 0);
    fs.rmSync(img.layout, { recursive: true, force: true });
    const root = path.join(scratch.dir, 'store');
    const ref = `${proxy.host}/bench/large:latest`;
    console.log(`image: ${img.layers.length} layers, ${MB(imageBytes)} gzip; store on ${kind}; ${killCount} kills, one each time another 1/${killCount + 1} of the image was served`);

    let again = 0;
    for (let k = 0; k <= killCount; k++) {
      const from = proxy.requests.length;
      const held = heldByDigest(root, sizes);
      const killAt = k < killCount ? ((k + 1) * imageBytes) / (killCount + 1) : Infinity;
      const child = spawn(stowageBin, ['--root', root, 'pull', '-q', ref], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      let err = '';
      child.stderr!.on('data', (c: Buffer) => { err = (err + c.toString()).slice(-2000); });
      let killed = false;
      const watch = setInterval(() => {
        if (!killed && blobBytes(proxy.requests) >= killAt) {
          killed = true;
          try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
        }
      }, 5);
      const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
      clearInterval(watch);
      const mine = proxy.requests.slice(from);
      again += refetchedBytes(mine, held);
      const served = blobBytes(proxy.requests);
      const onDisk = [...heldByDigest(root, sizes).values()].reduce((a, b) => a + b, 0);
      if (killed) {
        console.log(`kill ${k + 1}: served ${MB(served)} so far, store holds ${MB(onDisk)}: ${MB(served - onDisk)} in flight lost`);
      } else {
        if (code !== 0) throw new Error(`pull exited ${code}: ${err}`);
        console.log(`run ${k + 1} finished${k < killCount ? ' before its kill point' : ''}: served ${MB(served)} in all`);
        if (k < killCount) break;
      }
    }
    const served = blobBytes(proxy.requests);
    console.log(`\nresume after ${killCount} kills of a ${MB(imageBytes)} pull: served ${MB(served)}, ${MB(served - imageBytes)} (${pct(served - imageBytes, imageBytes)}) beyond the image; `
      + `bytes the store already held fetched again: ${again} (${pct(again, imageBytes)})`);
  } finally {
    await proxy.stop();
    await reg.stop();
    scratch.dispose();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

await main();
