import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContentStore } from '../../src/content/index.js';
import { isStowageError } from '../../src/errors/index.js';
import { RegistryClient } from '../../src/distribution/index.js';
import { UploadStateStore } from '../../src/distribution/upload-state.js';
import { makeRandomImage, skopeo, storeBlobs } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { manifestPut, registryLines } from './log-lines.js';

const MiB = 1024 * 1024;

/**
 * A loopback proxy in front of the real registry that counts the request body bytes each request
 * carried (what the client put on the wire) and injects the request-side faults the harness proxy
 * cannot: a PATCH whose connection drops after N body bytes, either before anything reaches the registry
 * (a request-buffering front end such as nginx's default) or with the partial body forwarded; and a PATCH
 * held open so that the test can kill the pushing process mid-chunk. The Host header is passed through,
 * so the registry's upload Locations point back at the proxy.
 */
interface WireRecord { method: string; path: string; reqBytes: number; status: number; fault?: string }
type WireAction =
  | { kind: 'hold' }
  /** `settled`: requests after the drop wait for it (the registry has finished with the broken one). */
  | { kind: 'drop'; afterBytes: number; forwardPartial: boolean; settled?: () => Promise<unknown> };
interface WireRule { method: string; path: string; skip: number; left: number; action: WireAction }
interface WireProxy {
  host: string;
  records: WireRecord[];
  addFault(r: { method: string; path: string; skip?: number; times?: number; action: WireAction }): void;
  clearFaults(): void;
  /** Resolves when a held request arrives. */
  held(): Promise<void>;
  stop(): Promise<void>;
}

async function startWireProxy(upstream: string): Promise<WireProxy> {
  const up = new URL(upstream);
  const records: WireRecord[] = [];
  const rules: WireRule[] = [];
  let onHeld: (() => void) | undefined;
  let heldOnce = false;
  let gate: Promise<unknown> | undefined;
  const take = (method: string, p: string): WireAction | undefined => {
    const r = rules.find((x) => x.left > 0 && x.method === method && p.includes(x.path));
    if (!r) return undefined;
    if (r.skip > 0) { r.skip--; return undefined; }
    r.left--;
    return r.action;
  };
  const server = http.createServer((req, res) => {
    if (gate) {
      req.pause();
      void gate.then(() => { req.resume(); handle(req, res); });
      return;
    }
    handle(req, res);
  });
  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const rec: WireRecord = { method: req.method ?? '', path: req.url ?? '/', reqBytes: 0, status: 0 };
    records.push(rec);
    const action = take(rec.method, rec.path);
    if (action) rec.fault = action.kind;
    if (action?.kind === 'hold') {
      req.on('data', (c: Buffer) => { rec.reqBytes += c.length; });
      heldOnce = true;
      onHeld?.();
      return; // never answered: the client is killed while waiting
    }
    const out = http.request({ hostname: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      rec.status = upRes.statusCode ?? 0;
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    out.on('error', () => { if (!res.headersSent) res.writeHead(502).end(); else res.destroy(); });
    if (action?.kind === 'drop') {
      req.on('data', (c: Buffer) => {
        if (rec.reqBytes >= action.afterBytes) return;
        const part = c.subarray(0, action.afterBytes - rec.reqBytes);
        rec.reqBytes += part.length;
        const cut = rec.reqBytes >= action.afterBytes;
        const drop = () => {
          if (action.settled) gate = action.settled();
          out.destroy();
          req.socket.destroy();
        };
        if (cut) rec.status = -1;
        // The partial body reaches the registry before the connection goes, as on a real network: the
        // write's callback says it is in the kernel, and a close sends what is queued before the FIN.
        if (action.forwardPartial) out.write(part, cut ? drop : undefined);
        else if (cut) drop();
      });
      return;
    }
    req.on('data', (c: Buffer) => { rec.reqBytes += c.length; });
    req.pipe(out);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    records,
    addFault(r) { rules.push({ method: r.method, path: r.path, skip: r.skip ?? 0, left: r.times ?? 1, action: r.action }); },
    clearFaults() { rules.length = 0; },
    held: () => new Promise<void>((resolve) => { if (heldOnce) resolve(); else onHeld = resolve; }),
    async stop() { server.closeAllConnections(); await new Promise<void>((r) => server.close(() => r())); },
  };
}


const patchBytes = (recs: WireRecord[], repo: string): number =>
  recs.filter((r) => r.method === 'PATCH' && r.path.startsWith(`/v2/${repo}/blobs/uploads/`)).reduce((n, r) => n + r.reqBytes, 0);

const stateFiles = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : []);

/** The blob as the registry serves it, hashed while streaming. */
async function registryDigest(reg: Registry, repo: string, digest: string): Promise<string> {
  const res = await fetch(`${reg.url}/v2/${repo}/blobs/${digest}`);
  expect(res.status).toBe(200);
  const h = createHash('sha256');
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) h.update(c);
  return `sha256:${h.digest('hex')}`;
}

describe('push resumes an interrupted chunked upload across push calls and processes (real docker-registry)', () => {
  let tmp: string;
  let reg: Registry;
  let wire: WireProxy;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    reg = await startRegistry();
    wire = await startWireProxy(reg.url);
  });
  afterAll(async () => {
    await Promise.all([reg?.stop(), wire?.stop()]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a push SIGKILLed mid-chunk in another process is continued by the next push, re-sending only what the registry lacks', async () => {
    const chunk = 4 * MiB;
    const img = await makeRandomImage([40 * MiB]);
    const layer = img.layers[0]!;
    const storeRoot = path.join(tmp, 'kill-store');
    const store = await openContentStore(storeRoot);
    await storeBlobs(store, img);
    const stateDir = path.join(tmp, 'kill-uploads');
    const repo = 'resume-kill';
    // The 4th PATCH is held open (the registry never sees it) and the process is killed while sending it.
    wire.addFault({ method: 'PATCH', path: `/v2/${repo}/blobs/uploads/`, skip: 3, action: { kind: 'hold' } });
    const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'push-resume-child.ts');
    // Not spawnSync: the proxy the child pushes through lives in this process's event loop.
    const proc = spawn(process.execPath, ['--import', 'tsx', child, storeRoot, stateDir, `${wire.host}/${repo}:v1`, JSON.stringify(img.manifest), String(chunk), String(MiB)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    proc.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const first = await Promise.race([wire.held().then(() => 'held' as const), exited.then(() => 'exited' as const)]);
    expect(first, out).toBe('held');
    proc.kill('SIGKILL');
    await exited;
    wire.clearFaults();

    // The killed process left its session: the offset the registry confirmed (3 chunks).
    const files = stateFiles(stateDir);
    expect(files).toHaveLength(1);
    const saved = JSON.parse(fs.readFileSync(path.join(stateDir, files[0]!), 'utf8')) as { offset: number; digest: string; host: string; repository: string };
    expect(saved).toMatchObject({ offset: 3 * chunk, digest: layer.digest, host: wire.host, repository: repo });
    expect(fs.statSync(path.join(stateDir, files[0]!)).mode & 0o777).toBe(0o600);

    const mark = wire.records.length;
    const logMark = (await registryLines(reg, 0, () => true)).length; // earlier lines settled first
    const client = new RegistryClient({ chunkSize: chunk, monolithicThreshold: MiB, credentials: {} });
    const events: string[] = [];
    const r = await client.push(`${wire.host}/${repo}:v1`, store, img.manifest, {
      uploadStateDir: stateDir,
      onProgress: (e) => { if (e.note === 'resumed') events.push(`${e.digest}@${e.current}`); },
    });
    expect(r.blobs.uploaded + r.blobs.exists).toBe(2);
    expect(events).toEqual([`${layer.digest}@${3 * chunk}`]);

    // On the wire: exactly the bytes the registry did not have, not the whole blob.
    const resent = patchBytes(wire.records.slice(mark), repo);
    expect(resent).toBe(layer.size - 3 * chunk);
    const allSent = wire.records.slice(mark).reduce((n, x) => n + x.reqBytes, 0);
    expect(allSent).toBeLessThanOrEqual(layer.size - 3 * chunk + img.config.size + img.manifestBytes.length);
    // The registry's own log: the session was asked about (GET → 204), no new upload started for the layer.
    const lines = await registryLines(reg, logMark, manifestPut(repo));
    expect(lines.some((l) => l.startsWith(`GET /v2/${repo}/blobs/uploads/`) && l.endsWith(' 204'))).toBe(true);
    expect(lines.filter((l) => l.startsWith(`PATCH /v2/${repo}/blobs/uploads/`))).toHaveLength(Math.ceil((layer.size - 3 * chunk) / chunk));
    expect(lines.filter((l) => l.startsWith(`POST /v2/${repo}/blobs/uploads/`)).length).toBeLessThanOrEqual(1); // the config, if the child had not finished it

    expect(await registryDigest(reg, repo, layer.digest)).toBe(layer.digest);
    expect(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/${repo}:v1`])).toBe(img.manifestBytes.toString());
    expect(stateFiles(stateDir)).toHaveLength(0);
    console.log(`[push-resume] killed child: ${layer.size} byte layer, registry held ${3 * chunk}, resume sent ${resent} PATCH bytes (${(resent / layer.size * 100).toFixed(1)}% of the blob)`);
  });

  it('a connection dropped mid-PATCH (before the chunk reached the registry) fails the push; the next push call resumes', async () => {
    const chunk = MiB;
    const img = await makeRandomImage([6 * MiB]);
    const layer = img.layers[0]!;
    const store = await openContentStore(path.join(tmp, 'drop-store'));
    await storeBlobs(store, img);
    const stateDir = path.join(tmp, 'drop-uploads');
    const repo = 'resume-drop';
    // Every PATCH after the 2nd dies 300 KB in, for the whole first call (network gone, retries exhausted).
    wire.addFault({ method: 'PATCH', path: `/v2/${repo}/blobs/uploads/`, skip: 2, times: 50, action: { kind: 'drop', afterBytes: 300_000, forwardPartial: false } });
    const opts = { chunkSize: chunk, monolithicThreshold: 512 * 1024, retry: { attempts: 2, baseDelayMs: 5 }, credentials: {} };
    const e = await new RegistryClient(opts).push(`${wire.host}/${repo}:v1`, store, img.manifest, { uploadStateDir: stateDir }).catch((x: unknown) => x);
    expect(isStowageError(e, 'Unavailable'), String(e)).toBe(true);
    expect(wire.records.some((x) => x.fault === 'drop')).toBe(true);
    const files = stateFiles(stateDir);
    expect(files).toHaveLength(1);
    expect(JSON.parse(fs.readFileSync(path.join(stateDir, files[0]!), 'utf8')).offset).toBe(2 * chunk);

    wire.clearFaults();
    const mark = wire.records.length;
    const logMark = (await registryLines(reg, 0, () => true)).length; // earlier lines settled first
    const r = await new RegistryClient(opts).push(`${wire.host}/${repo}:v1`, store, img.manifest, { uploadStateDir: stateDir });
    expect(r.blobs.uploaded + r.blobs.exists).toBe(2);
    const resent = patchBytes(wire.records.slice(mark), repo);
    expect(resent).toBe(layer.size - 2 * chunk);
    const lines = await registryLines(reg, logMark, manifestPut(repo));
    expect(lines.some((l) => l.startsWith(`GET /v2/${repo}/blobs/uploads/`) && l.endsWith(' 204'))).toBe(true);
    expect(await registryDigest(reg, repo, layer.digest)).toBe(layer.digest);
    expect(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/${repo}:v1`])).toBe(img.manifestBytes.toString());
    expect(stateFiles(stateDir)).toHaveLength(0);
    console.log(`[push-resume] dropped connection: ${layer.size} byte layer, resume sent ${resent} PATCH bytes`);
  });

  it('a partial chunk that did reach the registry: distribution refuses the session (BLOB_UPLOAD_INVALID) and the push starts over cleanly', async () => {
    const chunk = MiB;
    const img = await makeRandomImage([4 * MiB]);
    const layer = img.layers[0]!;
    const store = await openContentStore(path.join(tmp, 'partial-store'));
    await storeBlobs(store, img);
    const stateDir = path.join(tmp, 'partial-uploads');
    const repo = 'resume-partial';
    const logMark = (await registryLines(reg, 0, () => true)).length; // earlier lines settled first
    // The client's next request waits until the registry has answered the broken PATCH (an error, not
    // 202): whether it still knew the session when the retry came would otherwise be a race.
    const broken = (l: string) => l.startsWith(`PATCH /v2/${repo}/blobs/uploads/`) && !l.endsWith(' 202');
    const settled = () => registryLines(reg, logMark, (ls) => ls.some(broken));
    wire.addFault({ method: 'PATCH', path: `/v2/${repo}/blobs/uploads/`, skip: 1, action: { kind: 'drop', afterBytes: 300_000, forwardPartial: true, settled } });
    const mark = wire.records.length;
    const client = new RegistryClient({ chunkSize: chunk, monolithicThreshold: 512 * 1024, retry: { baseDelayMs: 5 }, credentials: {} });
    const notes: string[] = [];
    await client.push(`${wire.host}/${repo}:v1`, store, img.manifest, { uploadStateDir: stateDir, onProgress: (e) => { if (e.note) notes.push(e.note); } });
    const lines = await registryLines(reg, logMark, manifestPut(repo));
    expect(lines.some(broken)).toBe(true);
    expect(lines.some((l) => l.startsWith(`GET /v2/${repo}/blobs/uploads/`) && l.endsWith(' 404'))).toBe(true);
    // Two sessions for the layer (the refused one and the fresh one), plus one for the config.
    expect(lines.filter((l) => l.startsWith(`POST /v2/${repo}/blobs/uploads/`))).toHaveLength(3);
    expect(notes).toContain('retrying');
    expect(patchBytes(wire.records.slice(mark), repo)).toBeGreaterThanOrEqual(layer.size + chunk);
    expect(await registryDigest(reg, repo, layer.digest)).toBe(layer.digest);
    expect(stateFiles(stateDir)).toHaveLength(0);
  });

  it('an unknown (cancelled) or expired saved session is not resumed: the push starts over cleanly', async () => {
    const chunk = MiB;
    const img = await makeRandomImage([3 * MiB]);
    const layer = img.layers[0]!;
    const bytes = img.blobs.get(layer.digest)!;
    const store = await openContentStore(path.join(tmp, 'stale-store'));
    await storeBlobs(store, img);
    const opts = { chunkSize: chunk, monolithicThreshold: 512 * 1024, credentials: {} };

    // A live session holding the first chunk, as a previous push would have left it.
    const startSession = async (repo: string): Promise<string> => {
      const post = await fetch(`http://${wire.host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
      const patch = await fetch(new URL(post.headers.get('location')!, `http://${wire.host}`), {
        method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${chunk - 1}` }, body: bytes.subarray(0, chunk),
      });
      expect(patch.status).toBe(202);
      return new URL(patch.headers.get('location')!, `http://${wire.host}`).toString();
    };
    const saveState = async (dir: string, repo: string, location: string, ageMs: number): Promise<void> => {
      const s = new UploadStateStore(dir, { now: () => Date.now() - ageMs });
      await s.save({ host: wire.host, repository: repo, digest: layer.digest, size: layer.size, location, offset: chunk, minChunk: 0 });
    };

    // 1. Older than 24 h: not even asked about, although the registry still has it.
    {
      const repo = 'stale-expired';
      const dir = path.join(tmp, 'stale-a');
      await saveState(dir, repo, await startSession(repo), 25 * 3600_000);
      const mark = wire.records.length;
      const logMark = (await registryLines(reg, 0, () => true)).length; // earlier lines settled first
      await new RegistryClient(opts).push(`${wire.host}/${repo}:v1`, store, img.manifest, { uploadStateDir: dir });
      const lines = await registryLines(reg, logMark, manifestPut(repo));
      expect(lines.some((l) => l.startsWith(`GET /v2/${repo}/blobs/uploads/`))).toBe(false);
      expect(patchBytes(wire.records.slice(mark), repo)).toBe(layer.size);
      expect(await registryDigest(reg, repo, layer.digest)).toBe(layer.digest);
      expect(stateFiles(dir)).toHaveLength(0);
    }
    // 2. Cancelled on the registry (DELETE): GET says 404 BLOB_UPLOAD_UNKNOWN; a fresh upload follows.
    {
      const repo = 'stale-unknown';
      const dir = path.join(tmp, 'stale-b');
      const location = await startSession(repo);
      expect((await fetch(location, { method: 'DELETE' })).status).toBe(204);
      await saveState(dir, repo, location, 60_000);
      const mark = wire.records.length;
      const logMark = (await registryLines(reg, 0, () => true)).length; // earlier lines settled first
      await new RegistryClient(opts).push(`${wire.host}/${repo}:v1`, store, img.manifest, { uploadStateDir: dir });
      const lines = await registryLines(reg, logMark, manifestPut(repo));
      expect(lines.some((l) => l.startsWith(`GET /v2/${repo}/blobs/uploads/`) && l.endsWith(' 404'))).toBe(true);
      expect(patchBytes(wire.records.slice(mark), repo)).toBe(layer.size);
      expect(await registryDigest(reg, repo, layer.digest)).toBe(layer.digest);
      expect(stateFiles(dir)).toHaveLength(0);
    }
    // 3. A fresh state for the same blob is resumed (the control for 1 and 2).
    {
      const repo = 'stale-control';
      const dir = path.join(tmp, 'stale-c');
      await saveState(dir, repo, await startSession(repo), 60_000);
      const mark = wire.records.length;
      await new RegistryClient(opts).push(`${wire.host}/${repo}:v1`, store, img.manifest, { uploadStateDir: dir });
      expect(patchBytes(wire.records.slice(mark), repo)).toBe(layer.size - chunk);
      expect(await registryDigest(reg, repo, layer.digest)).toBe(layer.digest);
    }
  });

  it('state files: corrupt, for another upload, or expired are discarded; writes are atomic and private', async () => {
    const dir = path.join(tmp, 'unit-states');
    const digest = `sha256:${'a'.repeat(64)}` as const;
    const s = new UploadStateStore(dir);
    expect(await s.load('h:1', 'r', digest, 10)).toEqual({});
    await s.save({ host: 'h:1', repository: 'r', digest, size: 10, location: 'http://h:1/v2/r/blobs/uploads/x', offset: 4, minChunk: 0 });
    expect((await s.load('h:1', 'r', digest, 10)).state).toMatchObject({ offset: 4, location: 'http://h:1/v2/r/blobs/uploads/x' });
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toHaveLength(0);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    // The same key with a different size (the file describes another blob) → discarded.
    expect(await s.load('h:1', 'r', digest, 11)).toEqual({ discarded: 'mismatch' });
    expect(fs.readdirSync(dir)).toHaveLength(0);
    // Another host's record under this key (a copied file) → discarded.
    await s.save({ host: 'other:1', repository: 'r', digest, size: 10, location: 'http://other:1/u', offset: 0, minChunk: 0 });
    fs.renameSync(s.pathOf('other:1', 'r', digest), s.pathOf('h:1', 'r', digest));
    expect(await s.load('h:1', 'r', digest, 10)).toEqual({ discarded: 'mismatch' });
    fs.writeFileSync(s.pathOf('h:1', 'r', digest), '{"version":1,');
    expect(await s.load('h:1', 'r', digest, 10)).toEqual({ discarded: 'corrupt' });
    await new UploadStateStore(dir, { now: () => Date.now() - 25 * 3600_000 }).save({ host: 'h:1', repository: 'r', digest, size: 10, location: 'http://h:1/u', offset: 0, minChunk: 0 });
    expect(await s.load('h:1', 'r', digest, 10)).toEqual({ discarded: 'stale' });
    expect(fs.readdirSync(dir)).toHaveLength(0);
  });
});
