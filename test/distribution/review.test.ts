import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContentStore, writeBlob } from '../../src/content/index.js';
import { AbortedError, isStowageError } from '../../src/errors/index.js';
import { MediaType, digestOf } from '../../src/oci/index.js';
import { RegistryClient, dockerConfigCredentials, runLimited, type HttpRequest, type HttpResponse, type Transport } from '../../src/distribution/index.js';
import { codeOf } from '../harness/expect.js';

/** Defects found in review: each test failed before its fix. */

function response(req: HttpRequest, status: number, headers: Record<string, string> = {}, body: Buffer | string = ''): HttpResponse {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  return { status, headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])), body: Readable.from(b.length ? [b] : []), url: req.url };
}

const manifest = Buffer.from(JSON.stringify({
  schemaVersion: 2, mediaType: MediaType.OciManifest,
  config: { mediaType: MediaType.OciConfig, digest: digestOf('{}'), size: 2 }, layers: [],
}));

describe('token fetches shared by concurrent requests', () => {
  it('one caller aborting does not abort the token fetch another caller waits on', async () => {
    let tokenRequests = 0;
    let releaseToken!: () => void;
    const tokenGate = new Promise<void>((r) => { releaseToken = r; });
    let tokenSeen!: () => void;
    const tokenStarted = new Promise<void>((r) => { tokenSeen = r; });
    const anonymous: string[] = [];
    const transport: Transport = async (req) => {
      if (req.url.host === 'auth.test') {
        tokenRequests++;
        tokenSeen();
        await new Promise<void>((resolve, reject) => {
          if (req.signal?.aborted) { reject(new AbortedError('request aborted')); return; }
          req.signal?.addEventListener('abort', () => reject(new AbortedError('request aborted')), { once: true });
          void tokenGate.then(resolve);
        });
        return response(req, 200, { 'content-type': 'application/json' }, JSON.stringify({ token: 'tok' }));
      }
      if (req.headers.authorization !== 'Bearer tok') {
        anonymous.push(req.method);
        return response(req, 401, { 'www-authenticate': 'Bearer realm="https://auth.test/token",service="reg.test"' });
      }
      return response(req, 200, {
        'content-type': MediaType.OciManifest, 'docker-content-digest': digestOf(manifest), 'content-length': String(manifest.length),
      });
    };
    const client = new RegistryClient({ transport, credentials: {} });
    const ac = new AbortController();
    const a = client.resolve('reg.test/app:v1', { signal: ac.signal });
    const aCode = codeOf(a);
    await tokenStarted;
    const b = client.resolve('reg.test/app:v1');
    // b (whose host is now known to want Bearer) joins the same scope's token fetch: joining takes no
    // I/O, so it is done once the promise jobs queued so far have run (a macrotask later).
    await new Promise((r) => setImmediate(r));
    ac.abort();
    expect(await aCode).toBe('Aborted');
    releaseToken();
    const rb = await b;
    expect(rb.descriptor.digest).toBe(digestOf(manifest));
    expect(anonymous).toHaveLength(1);
    // One token fetch, shared: a's abort did not cancel it (else b would have started a second).
    expect(tokenRequests).toBe(1);
  });

  it('when every waiter is gone the shared fetch is aborted, and the next caller starts afresh', async () => {
    let tokenRequests = 0;
    let aborted = 0;
    const transport: Transport = async (req) => {
      if (req.url.host === 'auth.test') {
        tokenRequests++;
        if (tokenRequests === 1) {
          await new Promise<void>((_resolve, reject) => {
            req.signal?.addEventListener('abort', () => { aborted++; reject(new AbortedError('request aborted')); }, { once: true });
          });
        }
        return response(req, 200, { 'content-type': 'application/json' }, JSON.stringify({ token: 'tok' }));
      }
      if (req.headers.authorization !== 'Bearer tok') return response(req, 401, { 'www-authenticate': 'Bearer realm="https://auth.test/token",service="reg.test"' });
      return response(req, 200, { 'content-type': MediaType.OciManifest, 'docker-content-digest': digestOf(manifest), 'content-length': String(manifest.length) });
    };
    const client = new RegistryClient({ transport, credentials: {} });
    const ac = new AbortController();
    const a = codeOf(client.resolve('reg.test/app:v1', { signal: ac.signal }));
    while (tokenRequests === 0) await new Promise((r) => setImmediate(r));
    ac.abort();
    expect(await a).toBe('Aborted');
    expect(aborted).toBe(1); // no socket left waiting on the token server
    expect((await client.resolve('reg.test/app:v1')).descriptor.digest).toBe(digestOf(manifest));
    expect(tokenRequests).toBe(2);
  });
});

describe('digests other than sha256', () => {
  it('resolving name@sha512:… by GET hashes the body with sha512', async () => {
    const d512 = digestOf(manifest, 'sha512');
    const transport: Transport = async (req) => {
      if (req.method === 'HEAD') return response(req, 405);
      return response(req, 200, { 'content-type': MediaType.OciManifest }, manifest);
    };
    const client = new RegistryClient({ transport, credentials: {} });
    const r = await client.resolve(`reg.test/app@${d512}`);
    expect(r.descriptor).toEqual({ mediaType: MediaType.OciManifest, digest: d512, size: manifest.length });
  });
});

describe('bodies we drop are not downloaded whole', () => {
  const total = 64 * 1024 * 1024;
  let server: http.Server;
  let host: string;
  const written: number[] = [];
  const closed: Array<Promise<void>> = [];
  const digest = digestOf('not served');

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url?.includes('/manifests/')) { res.writeHead(404).end(); return; }
      // An "oversized manifest" blob: 64 MiB announced, sent as fast as the client reads it.
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      const i = written.push(0) - 1;
      closed.push(new Promise<void>((resolve) => {
        const chunk = Buffer.alloc(64 * 1024);
        const pump = (): void => {
          while (written[i]! < total && !res.destroyed) {
            written[i]! += chunk.length;
            if (!res.write(chunk)) { res.once('drain', pump); return; }
          }
          if (written[i]! >= total) res.end();
        };
        res.on('close', () => resolve());
        pump();
      }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('an oversized manifest blob is refused and its connection closed, not drained', async () => {
    const client = new RegistryClient({ credentials: {} });
    expect(await codeOf(client.resolve(`${host}/app@${digest}`))).toBe('ResourceExhausted');
    // The server sees its connection closed (a client that merely stopped reading would hang here)...
    await closed[0];
    // ...long before the 64 MiB were sent.
    expect(written[0]).toBeLessThan(16 * 1024 * 1024);
  });
});

describe('an upload PUT whose answer was lost', () => {
  it('is resent by the retry loop, finds its session gone, and checks the blob instead of failing', async () => {
    const bytes = Buffer.from('a small layer');
    const desc = { mediaType: MediaType.OciLayer, digest: digestOf(bytes), size: bytes.length };
    let stored = false;
    const puts: number[] = [];
    const transport: Transport = async (req) => {
      const p = req.url.pathname;
      if (req.method === 'HEAD' && p === `/v2/app/blobs/${desc.digest}`) return response(req, stored ? 200 : 404);
      if (req.method === 'POST' && p === '/v2/app/blobs/uploads/') return response(req, 202, { location: '/v2/app/blobs/uploads/u1?_state=s' });
      if (req.method === 'PUT' && p === '/v2/app/blobs/uploads/u1') {
        if (typeof req.body === 'function') for await (const _ of req.body()) { /* the registry reads it all */ }
        puts.push(puts.length);
        if (!stored) {
          stored = true; // committed, but the connection drops before the 201 arrives
          throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        }
        return response(req, 404, { 'content-type': 'application/json' }, JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_UNKNOWN', message: 'blob upload unknown to registry' }] }));
      }
      return response(req, 500);
    };
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    try {
      const store = await openContentStore(tmp);
      await writeBlob(store, 'x', bytes, desc);
      const client = new RegistryClient({ transport, credentials: {}, retry: { baseDelayMs: 1, maxDelayMs: 5 } });
      expect(await client.pushBlob(client.repository('127.0.0.1:9/app'), store, desc)).toBe('uploaded');
      expect(puts).toHaveLength(2);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('push error words', () => {
  it('a push refused with 401 says unauthorized, not "pull access denied"', async () => {
    const bytes = Buffer.from('layer');
    const desc = { mediaType: MediaType.OciLayer, digest: digestOf(bytes), size: bytes.length };
    const transport: Transport = async (req) => response(req, 401, { 'www-authenticate': 'Basic realm="r"', 'content-type': 'application/json' },
      JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    try {
      const store = await openContentStore(tmp);
      await writeBlob(store, 'x', bytes, desc);
      const client = new RegistryClient({ transport, credentials: {} });
      const repo = client.repository('127.0.0.1:9/app');
      for (const op of [() => client.pushBlob(repo, store, desc), () => client.pushManifest(repo, manifest, MediaType.OciManifest, 'v1')]) {
        let err: unknown;
        try { await op(); } catch (e) { err = e; }
        expect(isStowageError(err, 'Unauthorized')).toBe(true);
        expect((err as Error).message).not.toMatch(/pull access denied/);
        expect((err as Error).message).toMatch(/unauthorized: authentication required/);
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('an upload Location without a scheme gets the registry\'s scheme (and, same host, its credentials)', async () => {
    const bytes = Buffer.from('blob');
    const desc = { mediaType: MediaType.OciLayer, digest: digestOf(bytes), size: bytes.length };
    const seen: Array<{ method: string; url: string; auth?: string }> = [];
    const transport: Transport = async (req) => {
      seen.push({ method: req.method, url: req.url.toString(), auth: req.headers.authorization });
      if (!req.headers.authorization) return response(req, 401, { 'www-authenticate': 'Basic realm="r"' });
      if (req.method === 'HEAD') return response(req, 404);
      if (req.method === 'POST') return response(req, 202, { location: 'reg.test:5000/v2/app/blobs/uploads/u1?_state=s' });
      if (req.method === 'PUT' && req.url.protocol === 'http:' && req.url.host === 'reg.test:5000') {
        if (typeof req.body === 'function') for await (const _ of req.body()) { /* drain */ }
        return response(req, 201, { 'docker-content-digest': desc.digest });
      }
      return response(req, 500);
    };
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    try {
      const store = await openContentStore(tmp);
      await writeBlob(store, 'x', bytes, desc);
      const client = new RegistryClient({ transport, credentials: { 'reg.test:5000': { username: 'u', password: 'p' } }, insecureRegistries: ['reg.test:5000'] });
      expect(await client.pushBlob(client.repository('reg.test:5000/app'), store, desc)).toBe('uploaded');
      const put = seen.filter((x) => x.method === 'PUT').at(-1)!;
      expect(put.url).toBe(`http://reg.test:5000/v2/app/blobs/uploads/u1?_state=s&digest=${encodeURIComponent(desc.digest)}`);
      expect(put.auth).toMatch(/^Basic /);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('token GET fallback', () => {
  it('names the account, as docker does, next to Basic credentials', async () => {
    const tokenGets: URL[] = [];
    const transport: Transport = async (req) => {
      if (req.url.host === 'auth.test') {
        if (req.method === 'POST') return response(req, 404);
        tokenGets.push(req.url);
        return response(req, 200, { 'content-type': 'application/json' }, JSON.stringify({ token: 'tok' }));
      }
      if (req.headers.authorization !== 'Bearer tok') return response(req, 401, { 'www-authenticate': 'Bearer realm="https://auth.test/token",service="reg.test"' });
      return response(req, 200, { 'content-type': MediaType.OciManifest, 'docker-content-digest': digestOf(manifest), 'content-length': String(manifest.length) });
    };
    const client = new RegistryClient({ transport, credentials: { 'reg.test': { username: 'alice', password: 'pw' } } });
    await client.resolve('reg.test/app:v1');
    expect(tokenGets).toHaveLength(1);
    expect(tokenGets[0]!.searchParams.get('account')).toBe('alice');
    expect(tokenGets[0]!.searchParams.getAll('scope')).toEqual(['repository:app:pull']);
    expect(tokenGets[0]!.searchParams.get('service')).toBe('reg.test');
  });
});

describe('runLimited', () => {
  it('a limit that is not a positive number (NaN from a bad option, 0, 2.5) still runs every item', async () => {
    for (const limit of [Number.NaN, 0, -1, 2.5]) {
      const seen: number[] = [];
      await runLimited([1, 2, 3], limit, async (n) => { seen.push(n); });
      expect(seen.sort()).toEqual([1, 2, 3]);
    }
    expect(new RegistryClient({ concurrency: Number.NaN, credentials: {} }).concurrency).toBe(3);
  });

  it('a failure aborts the siblings still running instead of waiting for them to finish', async () => {
    const started: string[] = [];
    let siblingAborted = false;
    const run = runLimited(['bad', 'slow', 'never'], 2, async (item, signal) => {
      started.push(item);
      if (item === 'bad') { await new Promise((r) => setTimeout(r, 10)); throw new Error('layer failed'); }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 10_000);
        signal?.addEventListener('abort', () => { siblingAborted = true; clearTimeout(timer); resolve(); }, { once: true });
      });
    });
    await expect(run).rejects.toThrow('layer failed');
    expect(siblingAborted).toBe(true);
    // Ended by the abort, not by its 10 s timer (which would leave siblingAborted false).
    expect(started).toEqual(['bad', 'slow']);
  });
});

describe('a connection dropped in the middle of a small document', () => {
  it('fetchBytes retries it (and any failure is a typed error, never a bare socket error)', async () => {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, pad: 'x'.repeat(4000) }));
    const desc = { mediaType: MediaType.OciConfig, digest: digestOf(config), size: config.length };
    let requests = 0;
    const server = http.createServer((req, res) => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(config.length) });
      if (requests === 1) { res.write(config.subarray(0, 1000)); setTimeout(() => res.socket?.destroy(), 20); return; }
      res.end(config);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const client = new RegistryClient({ credentials: {}, retry: { baseDelayMs: 1, maxDelayMs: 5 } });
      const repo = client.repository(`127.0.0.1:${(server.address() as AddressInfo).port}/app`);
      const got = await client.fetchBytes(repo, desc, 1 << 20);
      expect(got.equals(config)).toBe(true);
      expect(requests).toBe(2);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('credential lookups', () => {
  it('a failed lookup (a credential helper that failed once) is not remembered for the client\'s life', async () => {
    let lookups = 0;
    const credentials = async (): Promise<{ username: string; password: string }> => {
      lookups++;
      if (lookups === 1) throw new Error('docker-credential-x: keychain locked');
      return { username: 'u', password: 'p' };
    };
    const transport: Transport = async (req) => {
      if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}`) return response(req, 401, { 'www-authenticate': 'Basic realm="r"' });
      return response(req, 200, { 'content-type': MediaType.OciManifest, 'docker-content-digest': digestOf(manifest), 'content-length': String(manifest.length) });
    };
    const client = new RegistryClient({ transport, credentials });
    await expect(client.resolve('reg.test/app:v1')).rejects.toThrow(/keychain locked/);
    expect((await client.resolve('reg.test/app:v1')).descriptor.digest).toBe(digestOf(manifest));
  });
});

describe('tag lists', () => {
  it('an invalid or oversized tag list is a typed error, not a SyntaxError or a silent empty list', async () => {
    const transport: Transport = async (req) => response(req, 200, { 'content-type': 'application/json' }, '{"name":"app","tags":["a",');
    const client = new RegistryClient({ transport, credentials: {} });
    expect(await codeOf(client.listTags('reg.test/app'))).toBe('InvalidArgument');
  });
});

describe('credential helpers', () => {
  it('a helper that exits without reading its input is an error, not an uncaught EPIPE that kills the process', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'docker-credential-quits'), '#!/bin/sh\nexit 3\n', { mode: 0o755 });
    fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify({ credsStore: 'quits' }));
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown): void => { uncaught.push(e); };
    process.on('uncaughtException', onUncaught);
    const savedPath = process.env.PATH;
    process.env.PATH = `${bin}:${savedPath}`;
    try {
      const source = dockerConfigCredentials(tmp);
      for (let i = 0; i < 30; i++) expect(await codeOf(source('reg.example.com'))).toBe('Unknown');
      await new Promise((r) => setTimeout(r, 50));
      expect(uncaught).toEqual([]);
    } finally {
      process.env.PATH = savedPath;
      process.off('uncaughtException', onUncaught);
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
