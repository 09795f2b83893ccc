// What the client does with what a registry sends back: digests other than sha256, bodies it drops
// (never downloaded whole), a connection dropped in the middle of a document, bad tag lists.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType, digestOf } from '../../src/oci/index.js';
import { RegistryClient, type Transport } from '../../src/distribution/index.js';
import { codeOf } from '../harness/expect.js';
import { manifest, response } from './fake-transport.js';

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

describe('tag lists', () => {
  it('an invalid or oversized tag list is a typed error, not a SyntaxError or a silent empty list', async () => {
    const transport: Transport = async (req) => response(req, 200, { 'content-type': 'application/json' }, '{"name":"app","tags":["a",');
    const client = new RegistryClient({ transport, credentials: {} });
    expect(await codeOf(client.listTags('reg.test/app'))).toBe('InvalidArgument');
  });
});
