/**
 * The Engine API server beside dockerd, same images, same run: the docker CLI 28 against
 * `stowage serve --docker-host` and against a private dockerd 20.10 (Debian's docker.io, overlay2).
 *   - `docker pull` of the benchmark image (bench/support/pull-image.ts) through each, fresh each time;
 *   - `docker images` and `docker image inspect` latency per call (the CLI process included), and the
 *     server alone: the same requests over the socket from this process.
 * Needs root (dockerd). Figures from a shared machine are noisy: compare the two columns of one run.
 *
 *   npx tsx bench/engine.ts [--runs N] [--reps N] [--layers N] [--layer-mb N] [--images N]
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startDockerd, type Dockerd } from '../test/harness/dockerd.js';
import { makeTestImage, pushRaw, pushWithSkopeo } from '../test/harness/images.js';
import { startRegistry, type Registry } from '../test/harness/registry.js';
import { buildBenchImage } from './support/pull-image.js';

const execFileP = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '..');
const BIN = path.join(REPO, 'bin', 'stowage.js');
const DOCKER = '/usr/local/bin/docker';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const RUNS = arg('runs', 15);
const REPS = arg('reps', 3);
const LAYERS = arg('layers', 3);
const LAYER_MB = arg('layer-mb', 20);
const IMAGES = arg('images', 20);

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
const p90 = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * 0.9))]!; };
const ms = (x: number): string => x.toFixed(x < 10 ? 2 : 1);

/**
 * One docker CLI run, timed. Asynchronous on purpose: the registry harness drains the registry's log
 * through this process's event loop, and a blocked loop (spawnSync) would stall the registry.
 */
async function docker(host: string, args: string[]): Promise<{ ms: number; out: string }> {
  const t0 = performance.now();
  try {
    const r = await execFileP(DOCKER, args, { env: { ...process.env, DOCKER_HOST: host }, encoding: 'utf8', maxBuffer: 64 << 20 });
    return { ms: performance.now() - t0, out: r.stdout };
  } catch (e) {
    throw new Error(`docker ${args.join(' ')} against ${host}: ${(e as { stderr?: string }).stderr ?? (e as Error).message}`);
  }
}

function request(socket: string, p: string): Promise<void> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath: socket, path: p, agent: false }, (res) => { res.resume(); res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${p}: ${res.statusCode}`)))); }).on('error', reject);
  });
}

async function apiLatency(socket: string, p: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n + 5; i++) {
    const t0 = performance.now();
    await request(socket, p);
    if (i >= 5) out.push(performance.now() - t0);
  }
  return out;
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) spawnSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'inherit' });
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-engine-'));
  let reg: Registry | undefined;
  let dockerd: Dockerd | undefined;
  let serve: ReturnType<typeof spawn> | undefined;
  try {
    const img = await buildBenchImage(path.join(base, 'layout'), { layers: LAYERS, layerBytes: LAYER_MB * 1_000_000, tag: 'latest' });
    const gz = img.layers.reduce((n, l) => n + l.size, 0);
    console.log(`benchmark image: ${img.layers.length} layers, ${(img.tarBytes / 1e6).toFixed(0)} MB tar, ${(gz / 1e6).toFixed(0)} MB gzip`);
    reg = await startRegistry({ storageDir: path.join(base, 'registry') });
    await pushWithSkopeo(img.layout, `docker://${reg.host}/bench/large:latest`, { tag: 'latest' });
    for (let i = 0; i < IMAGES; i++) {
      await pushRaw(reg.url, `small/img${i}`, 'v1', await makeTestImage({ labels: { n: String(i) }, layers: [{ files: { [`f${i}`]: `file ${i}\n` } }] }));
    }
    const large = `${reg.host}/bench/large:latest`;

    // overlay2, dockerd's usual driver (vfs would copy every layer and slow its pulls down unfairly).
    dockerd = await startDockerd({ storageDriver: 'overlay2' });
    const sock = path.join(base, 'stowage.sock');
    serve = spawn(BIN, ['--root', path.join(base, 'store'), 'serve', '--docker-host', `unix://${sock}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      serve!.stdout!.on('data', (c: Buffer) => { if (c.toString().includes('Serving')) resolve(); });
      serve!.once('exit', (c) => reject(new Error(`stowage serve exited ${c}`)));
    });
    const hosts: Array<[string, string, string]> = [['stowage serve', `unix://${sock}`, sock], ['dockerd 20.10', dockerd.host, dockerd.socket]];

    // 1. docker pull of the benchmark image, fresh each time, interleaved.
    const pulls: Record<string, number[]> = {};
    for (let rep = 0; rep < REPS; rep++) {
      for (const [name, host] of hosts) {
        await docker(host, ['rmi', '-f', large]).catch(() => undefined);
        await docker(host, ['image', 'prune', '-af']);
        (pulls[name] ??= []).push((await docker(host, ['pull', '-q', large])).ms);
      }
    }
    // 2. The same images on both for the listing.
    for (const [, host] of hosts) for (let i = 0; i < IMAGES; i++) await docker(host, ['pull', '-q', `${reg.host}/small/img${i}:v1`]);
    const images: Record<string, number[]> = {};
    const inspect: Record<string, number[]> = {};
    for (let i = 0; i < RUNS; i++) {
      for (const [name, host] of hosts) {
        (images[name] ??= []).push((await docker(host, ['images'])).ms);
        (inspect[name] ??= []).push((await docker(host, ['image', 'inspect', large])).ms);
      }
    }
    const apiList: Record<string, number[]> = {};
    const apiInspect: Record<string, number[]> = {};
    for (const [name, , socket] of hosts) {
      apiList[name] = await apiLatency(socket, '/v1.41/images/json', RUNS * 10);
      apiInspect[name] = await apiLatency(socket, `/v1.41/images/${large}/json`, RUNS * 10);
    }

    const rows: Array<[string, Record<string, number[]>]> = [
      [`docker pull (${(gz / 1e6).toFixed(0)} MB gzip, ${REPS} reps)`, pulls],
      [`docker images (${IMAGES + 1} images, ${RUNS} runs)`, images],
      [`docker image inspect (${RUNS} runs)`, inspect],
      [`GET /images/json, server alone (${RUNS * 10})`, apiList],
      [`GET /images/{name}/json, server alone (${RUNS * 10})`, apiInspect],
    ];
    console.log('\nmedian / p90 wall ms (shared machine; same run, interleaved)');
    console.log(`${'measure'.padEnd(52)}${'stowage serve'.padStart(22)}${'dockerd 20.10'.padStart(22)}`);
    for (const [label, r] of rows) {
      const cell = (name: string): string => `${ms(median(r[name]!))} / ${ms(p90(r[name]!))}`;
      console.log(`${label.padEnd(52)}${cell('stowage serve').padStart(22)}${cell('dockerd 20.10').padStart(22)}`);
    }
  } finally {
    if (serve && serve.exitCode === null) { serve.kill('SIGTERM'); await new Promise((r) => serve!.once('exit', r)); }
    await dockerd?.stop();
    await reg?.stop();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

await main();
