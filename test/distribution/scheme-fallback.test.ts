import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContentStore } from '../../src/content/index.js';
import { isStowageError } from '../../src/errors/index.js';
import { RegistryClient, isLoopback, nodeTransport, type HttpRequest, type Transport } from '../../src/distribution/index.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeTestImage, pushRaw, type TestImage } from '../harness/images.js';
import { skipUnless } from '../harness/skip.js';

/**
 * Docker's insecure-registry behaviour for loopback (and listed insecure) hosts: HTTPS first without
 * certificate checks, plain HTTP when the TLS attempt fails, the choice remembered per host.
 * Real docker-registry processes; the transport hook only records what the real transport was asked.
 */

interface Seen { method: string; url: URL; skipTlsVerify: boolean; auth: boolean }

/** nodeTransport, recording each exchange (and keeping its reportsTlsFailures mark). */
function recording(base: Transport = nodeTransport()): { transport: Transport; seen: Seen[] } {
  const seen: Seen[] = [];
  const send = (req: HttpRequest): ReturnType<Transport> => {
    seen.push({ method: req.method, url: req.url, skipTlsVerify: req.skipTlsVerify === true, auth: req.headers.authorization !== undefined });
    return base(req);
  };
  return { transport: Object.assign(send, { reportsTlsFailures: base.reportsTlsFailures }), seen };
}

const tmpdir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));

describe('loopback registries: HTTPS first, HTTP fallback, remembered per host', () => {
  const storage = tmpdir();
  let tlsReg: Registry;
  let plainReg: Registry;
  let basicTlsReg: Registry;
  let img: TestImage;
  beforeAll(async () => {
    // The TLS and plain registries share one storage: seeded over plain HTTP, read over TLS.
    [tlsReg, plainReg, basicTlsReg] = await Promise.all([
      startRegistry({ tls: true, storageDir: storage }),
      startRegistry({ storageDir: storage }),
      startRegistry({ tls: true, auth: 'basic' }),
    ]);
    img = await makeTestImage({ layers: [{ files: { 'a.txt': 'over the fallback\n' } }, { files: { 'b.txt': 'second layer\n' } }] });
    await pushRaw(plainReg.url, 'app', 'v1', img);
  });
  afterAll(async () => {
    await Promise.all([tlsReg?.stop(), plainReg?.stop(), basicTlsReg?.stop()]);
    fs.rmSync(storage, { recursive: true, force: true });
  });

  it('pulls from a TLS registry on 127.0.0.1 with a self-signed certificate: no CA, no insecure option', async () => {
    expect(isLoopback(tlsReg.host)).toBe(true);
    const { transport, seen } = recording();
    const client = new RegistryClient({ transport, credentials: {} });
    const dir = tmpdir();
    try {
      const store = await openContentStore(dir);
      const r = await client.pull(`${tlsReg.host}/app:v1`, store);
      expect(r.repository.host).toBe(tlsReg.host);
      for (const [digest, bytes] of img.blobs) expect((await store.info(digest)).size).toBe(bytes.length);
      // Every exchange went over unverified HTTPS (loopback), none over HTTP; one probe settled it.
      expect(seen.length).toBeGreaterThan(2);
      expect(seen.every((s) => s.url.protocol === 'https:' && s.skipTlsVerify)).toBe(true);
      expect(client.schemes.probes).toBe(1);
      expect(client.repository(`${tlsReg.host}/app`).scheme).toBe('https');
      expect((await client.resolve(`${tlsReg.host}/app:v1`)).descriptor.digest).toBe(img.manifest.digest);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('pulls from a plain-HTTP registry on 127.0.0.1 with one HTTPS probe per host, also under concurrency; the probe costs one attempt, never a retry', async () => {
    const { transport, seen } = recording();
    const client = new RegistryClient({ transport, credentials: {}, concurrency: 4 });
    const t0 = performance.now();
    const resolved = await Promise.all(Array.from({ length: 5 }, () => client.resolve(`${plainReg.host}/app:v1`)));
    const firstMs = performance.now() - t0;
    expect(resolved.every((r) => r.descriptor.digest === img.manifest.digest)).toBe(true);
    const dir = tmpdir();
    try {
      const store = await openContentStore(dir);
      await client.pull(`${plainReg.host}/app:v1`, store);
      await client.listTags(`${plainReg.host}/app`);
      for (const [digest, bytes] of img.blobs) expect((await store.info(digest)).size).toBe(bytes.length);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const https = seen.filter((s) => s.url.protocol === 'https:');
    expect(https).toHaveLength(1);
    expect(client.schemes.probes).toBe(1);
    expect(seen.filter((s) => s.url.protocol === 'http:').length).toBeGreaterThan(5);
    expect(client.repository(`${plainReg.host}/app`).scheme).toBe('http');

    // Latency: the same five resolves on a transport without TLS reporting (no probe, plain HTTP at once).
    const plain: Transport = (req) => nodeTransport()(req);
    const noProbe = new RegistryClient({ transport: plain, credentials: {} });
    const t1 = performance.now();
    await Promise.all(Array.from({ length: 5 }, () => noProbe.resolve(`${plainReg.host}/app:v1`)));
    const noProbeMs = performance.now() - t1;
    // The cost is the one HTTPS attempt counted above (no retry, no backoff). The times are reported
    // for the record only: wall-clock differences on a shared machine prove nothing.
    console.log(`scheme probe: first resolves ${firstMs.toFixed(1)} ms with the HTTPS probe, ${noProbeMs.toFixed(1)} ms without`);
  });

  it('Basic credentials work on a TLS loopback registry, sent over the settled https origin only', async () => {
    const creds = { [basicTlsReg.host]: { username: basicTlsReg.username, password: basicTlsReg.password } };
    const { transport, seen } = recording();
    const client = new RegistryClient({ transport, credentials: creds });
    const from = new RegistryClient({ credentials: {} });
    const dir = tmpdir();
    try {
      const store = await openContentStore(dir);
      await from.pull(`${plainReg.host}/app:v1`, store);
      await client.push(`${basicTlsReg.host}/app:v1`, store, img.manifest);
      expect((await client.resolve(`${basicTlsReg.host}/app:v1`)).descriptor.digest).toBe(img.manifest.digest);
      expect(seen.some((s) => s.auth)).toBe(true);
      expect(seen.every((s) => s.url.protocol === 'https:')).toBe(true);
      expect(client.schemes.probes).toBe(1);
      // Without credentials the same registry says no.
      const anonymous = new RegistryClient({ credentials: {}, retry: { attempts: 1 } });
      expect(isStowageError(await anonymous.resolve(`${basicTlsReg.host}/app:v1`).catch((x: unknown) => x), 'Unauthorized')).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('login (the /v2/ check) goes over the probed scheme: credentials reach the TLS loopback registry over https', async () => {
    const { transport, seen } = recording();
    const client = new RegistryClient({ transport, credentials: {} });
    await client.checkLogin(basicTlsReg.host, { username: basicTlsReg.username, password: basicTlsReg.password });
    expect(seen.filter((s) => s.auth).length).toBeGreaterThan(0);
    expect(seen.every((s) => s.url.protocol === 'https:')).toBe(true);
    const wrong = new RegistryClient({ credentials: {} });
    const e = await wrong.checkLogin(basicTlsReg.host, { username: basicTlsReg.username, password: 'not-it' }).catch((x: unknown) => x);
    expect(isStowageError(e, 'Unauthorized')).toBe(true);
    // And a plain-HTTP loopback registry settles http for the login check too.
    const plainClient = new RegistryClient({ transport, credentials: {} });
    await plainClient.checkLogin(plainReg.host, { username: 'u', password: 'p' });
    expect(plainClient.repository(`${plainReg.host}/x`).scheme).toBe('http');
  });
});

// A non-loopback address of this machine: not insecure unless listed, so HTTPS with verification only.
const external = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

describe('non-loopback registries: verified HTTPS only, unless listed insecure', () => {
  const it = skipUnless(!!external, 'this machine has no non-loopback IPv4 address');
  let tlsReg: Registry;
  let plainReg: Registry;
  beforeAll(async () => {
    if (!external) return;
    [tlsReg, plainReg] = await Promise.all([startRegistry({ tls: true, listenHost: external! }), startRegistry({ listenHost: external! })]);
  });
  afterAll(async () => { await Promise.all([tlsReg?.stop(), plainReg?.stop()]); });

  it('a self-signed certificate is a typed certificate error, with no HTTP fallback and no unverified TLS', async () => {
    expect(isLoopback(tlsReg.host)).toBe(false);
    const { transport, seen } = recording();
    const client = new RegistryClient({ transport, credentials: {} });
    const e = await client.resolve(`${tlsReg.host}/app:v1`).catch((x: unknown) => x);
    expect(isStowageError(e, 'Unavailable')).toBe(true);
    expect((e as { data: Record<string, unknown> }).data.reason).toBe('tls-certificate');
    expect((e as Error).message).toMatch(/certificate/);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((s) => s.url.protocol === 'https:' && !s.skipTlsVerify)).toBe(true);
    expect(client.schemes.probes).toBe(0);
    // A plain-HTTP registry there is not reached over HTTP either.
    const plainClient = new RegistryClient({ transport, credentials: {}, retry: { attempts: 1 } });
    expect(isStowageError(await plainClient.resolve(`${plainReg.host}/app:v1`).catch((x: unknown) => x), 'Unavailable')).toBe(true);
    expect(seen.some((s) => s.url.protocol === 'http:')).toBe(false);
  });

  it('listed insecure, the same registries work: unverified HTTPS for the TLS one, HTTP fallback for the plain one', async () => {
    const { transport, seen } = recording();
    const client = new RegistryClient({ transport, credentials: {}, insecureRegistries: [tlsReg.host, plainReg.host] });
    for (const reg of [tlsReg, plainReg]) {
      const e = await client.resolve(`${reg.host}/nothing:here`).catch((x: unknown) => x);
      expect(isStowageError(e, 'NotFound')).toBe(true); // reached, and answered
    }
    expect(client.repository(`${tlsReg.host}/x`).scheme).toBe('https');
    expect(client.repository(`${plainReg.host}/x`).scheme).toBe('http');
    expect(client.schemes.probes).toBe(2);
    expect(seen.filter((s) => s.url.protocol === 'https:').every((s) => s.skipTlsVerify)).toBe(true);
  });
});
