import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openContentStore, readBlob, type ContentStore } from '../../src/content/index.js';
import { isStowageError } from '../../src/errors/index.js';
import { RegistryClient, fetchBlobInto, makeRefKey } from '../../src/distribution/index.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { startFaultProxy, type FaultProxy } from '../harness/proxy.js';
import { makeRandomImage, pushWithSkopeo, writeOciLayout, type TestImage } from '../harness/images.js';
import { codeOf } from '../harness/expect.js';

const MiB = 1024 * 1024;

describe('transfer faults through a loopback proxy in front of a real registry', () => {
  let tmp: string;
  let reg: Registry;
  let tokenReg: Registry;
  let proxy: FaultProxy;
  let tokenProxy: FaultProxy;
  let img: TestImage;
  let big: TestImage['layers'][number];
  let store: ContentStore;
  let storeRoot: string;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    [reg, tokenReg] = await Promise.all([startRegistry(), startRegistry({ auth: 'token' })]);
    [proxy, tokenProxy] = await Promise.all([startFaultProxy(reg.url), startFaultProxy(tokenReg.url)]);
    img = await makeRandomImage([4 * MiB, 200_000]);
    big = img.layers[0]!;
    const dir = writeOciLayout(path.join(tmp, 'layout'), img, 'v1');
    await pushWithSkopeo(dir, `docker://${reg.host}/faulty:v1`, { tag: 'v1' });
    await pushWithSkopeo(dir, `docker://${tokenReg.host}/faulty:v1`, { tag: 'v1', creds: tokenReg });
  });
  afterAll(async () => {
    await Promise.all([reg?.stop(), tokenReg?.stop(), proxy?.stop(), tokenProxy?.stop()]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  beforeEach(async () => {
    proxy.clearFaults();
    tokenProxy.clearFaults();
    storeRoot = fs.mkdtempSync(path.join(tmp, 'store-'));
    store = await openContentStore(storeRoot);
  });

  const client = () => new RegistryClient({ retry: { baseDelayMs: 5, maxDelayMs: 50 } });
  const bigPath = (p: FaultProxy) => p.bytesSentFor(big.digest);

  it('a connection dropped mid-blob resumes with Range, re-downloading little', async () => {
    proxy.addFault({ method: 'GET', path: big.digest, fault: { kind: 'drop', afterBytes: 3 * MiB } });
    const before = bigPath(proxy);
    const r = await client().pull(`${proxy.host}/faulty:v1`, store);
    expect(r.stats.rangeIgnored).toBe(0);
    const sent = bigPath(proxy) - before;
    expect(sent - big.size).toBeLessThan(64 * 1024); // only what was in flight is fetched twice
    const ranged = proxy.requests.filter((q) => q.path.includes(big.digest) && q.range);
    expect(ranged).toHaveLength(1);
    expect(ranged[0]!.range).toBe(`bytes=${3 * MiB}-`);
    expect((await readBlob(store, big, 1 << 30)).equals(img.blobs.get(big.digest)!)).toBe(true);
  });

  it('resumes a partial ingest left by a killed process', async () => {
    const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'kill-mid-ingest.ts');
    // Not spawnSync: the proxy the child downloads through lives in this process's event loop.
    const proc = spawn(process.execPath, ['--import', 'tsx', child, storeRoot, `${proxy.host}/faulty`, JSON.stringify(big)], { stdio: 'ignore' });
    const signal = await new Promise((resolve) => proc.on('exit', (_code, sig) => resolve(sig)));
    expect(signal).toBe('SIGKILL');
    const left = (await store.status(makeRefKey(big))).offset;
    expect(left).toBeGreaterThanOrEqual(big.size / 2);
    expect(left).toBeLessThan(big.size);
    const r = await fetchBlobInto(client(), client().repository(`${proxy.host}/faulty`), store, big);
    expect(r.resumedFrom).toBe(left);
    expect(r.bytesDownloaded).toBe(big.size - left);
    expect((await readBlob(store, big, 1 << 30)).equals(img.blobs.get(big.digest)!)).toBe(true);
  });

  it('a flipped byte is DigestMismatch: nothing committed, the ingest dropped', async () => {
    proxy.addFault({ method: 'GET', path: big.digest, fault: { kind: 'flip', at: 1234 } });
    expect(await codeOf(client().pull(`${proxy.host}/faulty:v1`, store))).toBe('DigestMismatch');
    expect(await codeOf(store.info(big.digest))).toBe('NotFound');
    expect(await store.listStatuses()).toEqual([]);
    // Nothing of the image is visible as a parent without its children.
    expect(await codeOf(store.info(img.manifest.digest))).toBe('NotFound');
    // The next pull starts clean and succeeds.
    await client().pull(`${proxy.host}/faulty:v1`, store);
    expect((await store.info(big.digest)).size).toBe(big.size);
  });

  it('a 5xx burst and a 429 with Retry-After are retried', async () => {
    proxy.addFault({ method: 'GET', path: big.digest, times: 3, fault: { kind: 'status', status: 503 } });
    proxy.addFault({ path: '/manifests/', times: 1, fault: { kind: 'status', status: 429, headers: { 'Retry-After': '0' } } });
    const before = proxy.requests.length;
    await client().pull(`${proxy.host}/faulty:v1`, store);
    const hits = proxy.requests.slice(before).filter((q) => q.fault === 'status');
    expect(hits).toHaveLength(4);
    expect((await store.info(big.digest)).size).toBe(big.size);
  });

  it('a lasting 5xx ends as Unavailable after the configured attempts', async () => {
    proxy.addFault({ method: 'GET', path: big.digest, times: 100, fault: { kind: 'status', status: 502 } });
    const c = new RegistryClient({ retry: { baseDelayMs: 2, maxDelayMs: 5, attempts: 3 } });
    const before = proxy.requests.length;
    expect(await codeOf(c.pull(`${proxy.host}/faulty:v1`, store))).toBe('Unavailable');
    expect(proxy.requests.slice(before).filter((q) => q.fault === 'status')).toHaveLength(3);
  });

  it('a redirect to another host is followed without credentials, presigned query intact', async () => {
    tokenProxy.addFault({ method: 'GET', path: big.digest, fault: { kind: 'redirect' } });
    const c = new RegistryClient({ credentials: { [tokenProxy.host]: { username: tokenReg.username, password: tokenReg.password } }, retry: { baseDelayMs: 5 } });
    await c.pull(`${tokenProxy.host}/faulty:v1`, store);
    expect((await store.info(big.digest)).size).toBe(big.size);
    const stored = tokenProxy.storage.requests;
    expect(stored).toHaveLength(1);
    expect(stored[0]!.authorization).toBeUndefined();
    expect(stored[0]!.cookie).toBeUndefined();
    expect(stored[0]!.rawQuery).toBe(tokenProxy.presignedQuery);
    // The registry itself did get a bearer token.
    expect(tokenProxy.requests.find((q) => q.path.includes(big.digest))!.authorization).toMatch(/^Bearer /);
  });

  it('an oversized manifest is refused (HEAD size, and a GET body cut at the cap)', async () => {
    proxy.addFault({ path: '/manifests/v1', fault: { kind: 'oversize', bytes: 5 * MiB } });
    expect(await codeOf(client().resolve(`${proxy.host}/faulty:v1`))).toBe('ResourceExhausted');
    proxy.addFault({ method: 'HEAD', path: '/manifests/v1', fault: { kind: 'status', status: 405 } });
    proxy.addFault({ method: 'GET', path: '/manifests/v1', fault: { kind: 'oversize', bytes: 64 * MiB } });
    expect(await codeOf(client().resolve(`${proxy.host}/faulty:v1`))).toBe('ResourceExhausted');
    expect(proxy.requests.at(-1)!.fault).toBe('oversize');
  });

  it('HEAD 405 falls back to GET, hashing the body', async () => {
    proxy.addFault({ method: 'HEAD', path: '/manifests/v1', fault: { kind: 'status', status: 405 } });
    const r = await client().resolve(`${proxy.host}/faulty:v1`);
    expect(r.descriptor.digest).toBe(img.manifest.digest);
  });

  it('a server that ignores Range: restart from 0 (reported), or a typed error when asked', async () => {
    const half = 1 * MiB;
    const w = await store.writer({ ref: makeRefKey(big), desc: { digest: big.digest, size: big.size } });
    await w.write(img.blobs.get(big.digest)!.subarray(0, half));
    await w.close();
    proxy.addFault({ method: 'GET', path: big.digest, fault: { kind: 'ignoreRange' } });
    const failing = await fetchBlobInto(client(), client().repository(`${proxy.host}/faulty`), store, big, { onRangeIgnored: 'fail' }).catch((e: unknown) => e);
    expect(isStowageError(failing, 'FailedPrecondition')).toBe(true);
    expect((failing as { data: Record<string, unknown> }).data.reason).toBe('range-ignored');
    proxy.addFault({ method: 'GET', path: big.digest, fault: { kind: 'ignoreRange' } });
    const notes: string[] = [];
    const r = await fetchBlobInto(client(), client().repository(`${proxy.host}/faulty`), store, big, { onProgress: (e) => { if (e.note) notes.push(e.note); } });
    expect(r.rangeIgnored).toBe(true);
    expect(r.resumedFrom).toBe(half);
    expect(notes).toContain('range-ignored');
    expect((await readBlob(store, big, 1 << 30)).equals(img.blobs.get(big.digest)!)).toBe(true);
  });

  it('a blob longer than its descriptor is cut off (SizeMismatch), not stored', async () => {
    const repo = client().repository(`${proxy.host}/faulty`);
    const lie = { ...big, size: big.size - 100 };
    expect(await codeOf(fetchBlobInto(client(), repo, store, lie))).toBe('SizeMismatch');
    expect(await codeOf(store.info(big.digest))).toBe('NotFound');
  });

  it('abort stops a download and keeps the ingest for later', async () => {
    const repo = client().repository(`${proxy.host}/faulty`);
    const ac = new AbortController();
    // Abort as soon as the first megabyte is on disk (of four).
    const onProgress = (e: { phase: string; current: number }) => { if (e.phase === 'downloading' && e.current > 0) ac.abort(); };
    expect(await codeOf(fetchBlobInto(client(), repo, store, big, { signal: ac.signal, onProgress }))).toBe('Aborted');
    expect(await codeOf(store.info(big.digest))).toBe('NotFound');
    // The ingest is kept, partway...
    const kept = (await store.listStatuses()).filter((st) => st.expected === big.digest);
    expect(kept).toHaveLength(1);
    expect(kept[0]!.offset).toBeGreaterThan(0);
    expect(kept[0]!.offset).toBeLessThan(big.size);
    // ...and the next fetch continues from it.
    const r = await fetchBlobInto(client(), repo, store, big);
    expect(r.resumedFrom).toBe(kept[0]!.offset);
    expect(r.bytesDownloaded).toBe(big.size - kept[0]!.offset);
    expect((await readBlob(store, big, 1 << 30)).equals(img.blobs.get(big.digest)!)).toBe(true);
  });
});
