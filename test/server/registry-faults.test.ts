/**
 * Faults of the push side: a client dropping mid-upload (what arrived is kept; the upload continues),
 * a corrupted upload (refused, nothing stored), concurrent pushes of the same blob, a server killed
 * mid-upload and started again on the same store (the session resumes), and a graceful stop with a
 * request in flight (it finishes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../src/oci/index.js';
import { makeTestImage, pushWithSkopeo, writeOciLayout } from '../harness/images.js';
import { startStowageRegistry, type StowageRegistry } from '../harness/stowage-registry.js';

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-faults-')); });
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

/** Resolves with the first log line that matches, now or later. */
function logLine(reg: StowageRegistry, pattern: RegExp, waiters: Array<(l: string) => void>): Promise<string> {
  const seen = reg.log.find((l) => pattern.test(l));
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve) => { waiters.push((l) => { if (pattern.test(l)) resolve(l); }); });
}

async function startSession(url: string, repo: string): Promise<string> {
  const r = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(r.status).toBe(202);
  return new URL(r.headers.get('location')!, url).pathname;
}

/** Sends a PATCH that announces `announced` bytes, writes `sent`, then drops the connection. */
function droppedPatch(url: string, location: string, announced: number, sent: Buffer): Promise<void> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname, () => {
      sock.write(`PATCH ${location} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${announced}\r\n\r\n`);
      sock.write(sent, () => { sock.destroy(); resolve(); });
    });
    sock.on('error', reject);
  });
}

describe('upload faults', () => {
  let reg: StowageRegistry;
  const waiters: Array<(l: string) => void> = [];
  beforeAll(async () => { reg = await startStowageRegistry({ log: (l) => { for (const w of waiters) w(l); } }); });
  afterAll(async () => { await reg?.stop(); });

  it('a client dropping mid-upload: the bytes that arrived are kept and the upload continues from there', async () => {
    const data = randomBytes(256 * 1024);
    const location = await startSession(reg.url, 'faults/drop');
    const first = data.subarray(0, 100_000);
    await droppedPatch(reg.url, location, data.length, first);
    await logLine(reg, new RegExp(`"PATCH ${location} `), waiters);
    const status = await fetch(`${reg.url}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${first.length - 1}`);
    const rest = await fetch(`${reg.url}${location}`, {
      method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': `${first.length}-${data.length - 1}` }, body: data.subarray(first.length),
    });
    expect(rest.status).toBe(202);
    const done = await fetch(`${reg.url}${location}?digest=${digestOf(data)}`, { method: 'PUT' });
    expect(done.status).toBe(201);
    const back = await fetch(`${reg.url}/v2/faults/drop/blobs/${digestOf(data)}`);
    expect(Buffer.from(await back.arrayBuffer()).equals(data)).toBe(true);
  });

  it('a corrupted upload is refused with DIGEST_INVALID and nothing is stored', async () => {
    const data = randomBytes(64 * 1024);
    const claimed = digestOf(Buffer.concat([data, Buffer.from('x')]));
    const location = await startSession(reg.url, 'faults/corrupt');
    const put = await fetch(`${reg.url}${location}?digest=${claimed}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: data });
    expect(put.status).toBe(400);
    expect(((await put.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('DIGEST_INVALID');
    for (const d of [claimed, digestOf(data)]) expect((await fetch(`${reg.url}/v2/faults/corrupt/blobs/${d}`, { method: 'HEAD' })).status).toBe(404);
    expect((await fetch(`${reg.url}${location}`)).status).toBe(404);
    expect(await reg.store.check()).toMatchObject({ ok: true });
  });

  it('concurrent pushes of the same blob all succeed and store it once, intact', async () => {
    const data = randomBytes(512 * 1024);
    const digest = digestOf(data);
    const results = await Promise.all([0, 1, 2, 3, 4, 5].map(async (i) => {
      const location = await startSession(reg.url, `faults/same${i % 2}`);
      const r = await fetch(`${reg.url}${location}?digest=${digest}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: data });
      return r.status;
    }));
    expect(results).toEqual([201, 201, 201, 201, 201, 201]);
    expect(fs.readFileSync(path.join(reg.root, 'blobs', 'sha256', digest.slice(7))).equals(data)).toBe(true);
    // Two whole images pushed at once with skopeo, sharing their layers.
    const image = await makeTestImage({ layers: [{ files: { 'shared': randomBytes(200_000) } }] });
    const layout = writeOciLayout(path.join(tmp, 'same-layout'), image, 'v1');
    await Promise.all(['a', 'b'].map((r) => pushWithSkopeo(layout, `docker://${reg.host}/faults/concurrent-${r}:1`, { tag: 'v1' })));
    for (const r of ['a', 'b']) expect((await reg.store.resolveImage(`${reg.host}/faults/concurrent-${r}:1`)).target.digest).toBe(image.manifest.digest);
  });

  it('a session cancelled with DELETE is gone with its bytes; a last chunk may come with the closing PUT', async () => {
    const data = randomBytes(100_000);
    const cancelled = await startSession(reg.url, 'faults/cancel');
    expect((await fetch(`${reg.url}${cancelled}`, { method: 'PATCH', body: data.subarray(0, 50_000) })).status).toBe(202);
    expect((await fetch(`${reg.url}${cancelled}`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${reg.url}${cancelled}`)).status).toBe(404);
    expect((await fetch(`${reg.url}${cancelled}`, { method: 'DELETE' })).status).toBe(404);
    const check = await reg.store.check();
    expect(check.problems).toEqual([]);

    const location = await startSession(reg.url, 'faults/cancel');
    expect((await fetch(`${reg.url}${location}`, { method: 'PATCH', headers: { 'content-range': '0-49999' }, body: data.subarray(0, 50_000) })).status).toBe(202);
    const wrong = await fetch(`${reg.url}${location}?digest=${digestOf(data)}`, { method: 'PUT', headers: { 'content-range': '40000-99999' }, body: data.subarray(40_000) });
    expect(wrong.status).toBe(416);
    expect(wrong.headers.get('range')).toBe('0-49999');
    const put = await fetch(`${reg.url}${location}?digest=${digestOf(data)}`, { method: 'PUT', headers: { 'content-range': '50000-99999' }, body: data.subarray(50_000) });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(digestOf(data));
  });

  it('a client leaving in the middle of a blob download costs the server nothing', async () => {
    const data = randomBytes(16 << 20);
    const location = await startSession(reg.url, 'faults/leave');
    expect((await fetch(`${reg.url}${location}?digest=${digestOf(data)}`, { method: 'PUT', body: data })).status).toBe(201);
    const ctrl = new AbortController();
    const res = await fetch(`${reg.url}/v2/faults/leave/blobs/${digestOf(data)}`, { signal: ctrl.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ctrl.abort();
    await logLine(reg, new RegExp(`"GET /v2/faults/leave/blobs/${digestOf(data)} `), waiters);
    const again = await fetch(`${reg.url}/v2/faults/leave/blobs/${digestOf(data)}`);
    expect(Buffer.from(await again.arrayBuffer()).equals(data)).toBe(true);
  });

  it('a graceful stop lets a request in flight finish', async () => {
    const other = await startStowageRegistry();
    const data = randomBytes(8 << 20);
    const location = await startSession(other.url, 'faults/stop');
    expect((await fetch(`${other.url}${location}?digest=${digestOf(data)}`, { method: 'PUT', body: data })).status).toBe(201);
    const res = await fetch(`${other.url}/v2/faults/stop/blobs/${digestOf(data)}`);
    expect(res.status).toBe(200);
    const closed = other.server.close();
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.equals(data)).toBe(true);
    await closed;
    await expect(fetch(`${other.url}/v2/`)).rejects.toThrow();
    await other.stop();
  });
});

describe('a killed server', () => {
  const children: ChildProcess[] = [];
  afterAll(() => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); });

  function serve(root: string): Promise<{ child: ChildProcess; url: string }> {
    const child = spawn(process.execPath, ['bin/stowage.js', '--root', root, 'serve', '--registry', '127.0.0.1:0', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    return new Promise((resolve, reject) => {
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /Serving registry at (http:\/\/\S+)/.exec(out);
        if (m) resolve({ child, url: m[1]! });
      });
      child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
    });
  }

  it('resumes an acknowledged upload after SIGKILL and a restart on the same store', async () => {
    const root = path.join(tmp, 'killed-root');
    const data = randomBytes(3 << 20);
    const first = await serve(root);
    const location = await startSession(first.url, 'faults/killed');
    const half = 1 << 20;
    const p1 = await fetch(`${first.url}${location}`, {
      method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${half - 1}` }, body: data.subarray(0, half),
    });
    expect(p1.status).toBe(202);
    const died = new Promise((r) => first.child.once('exit', r));
    first.child.kill('SIGKILL');
    await died;

    const second = await serve(root);
    const status = await fetch(`${second.url}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${half - 1}`);
    const p2 = await fetch(`${second.url}${location}`, {
      method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': `${half}-${data.length - 1}` }, body: data.subarray(half),
    });
    expect(p2.status).toBe(202);
    expect((await fetch(`${second.url}${location}?digest=${digestOf(data)}`, { method: 'PUT' })).status).toBe(201);
    const back = await fetch(`${second.url}/v2/faults/killed/blobs/${digestOf(data)}`);
    expect(Buffer.from(await back.arrayBuffer()).equals(data)).toBe(true);
    const gone = new Promise((r) => second.child.once('exit', r));
    second.child.kill('SIGTERM');
    expect(await gone).toBe(0);
  });
});
