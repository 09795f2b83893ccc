import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendSource, openContentStore } from '../../src/content/index.js';
import { isStowageError } from '../../src/errors/index.js';
import { digestOf, MediaType } from '../../src/oci/index.js';
import {
  RegistryClient, apiHost, errorFromResponse, isLoopback, makeRefKey, mountSource, parseChallenges, redactUrl, schemeFor,
  scopeKey, type HttpRequest, type Transport,
} from '../../src/distribution/index.js';
import { response } from './fake-transport.js';


describe('WWW-Authenticate parsing (auth/parse_test.go cases)', () => {
  it('parses Bearer with quoted params, commas inside quotes, escaped quotes', () => {
    expect(parseChallenges('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' } },
    ]);
    expect(parseChallenges('Bearer realm="x\\"y", error="invalid_token"')[0]!.params).toEqual({ realm: 'x"y', error: 'invalid_token' });
  });
  it('parses several challenges in one header and in several headers', () => {
    const c = parseChallenges('Basic realm="reg", Bearer realm="https://t/token",service=s');
    expect(c.map((x) => x.scheme)).toEqual(['basic', 'bearer']);
    expect(c[1]!.params.service).toBe('s');
    expect(parseChallenges(['Basic realm=a', 'BEARER realm=b']).map((x) => [x.scheme, x.params.realm])).toEqual([['basic', 'a'], ['bearer', 'b']]);
    expect(parseChallenges(undefined)).toEqual([]);
  });
});

describe('hosts, scopes, labels', () => {
  it('loopback is plain HTTP, others HTTPS unless insecure', () => {
    for (const h of ['localhost:5000', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000', 'localhost']) expect(isLoopback(h)).toBe(true);
    for (const h of ['example.com', '10.0.0.1:5000', '[fe80::1]:5000', 'localhost.example.com']) expect(isLoopback(h)).toBe(false);
    expect(schemeFor('127.0.0.1:5000')).toBe('http');
    expect(schemeFor('reg.example.com:5000')).toBe('https');
    expect(schemeFor('reg.example.com:5000', ['reg.example.com:5000'])).toBe('http');
    expect(schemeFor('reg.example.com:5000', ['reg.example.com'])).toBe('http');
    expect(schemeFor('reg.example.com:5000', ['other.example.com'])).toBe('https');
    expect(apiHost('docker.io')).toBe('registry-1.docker.io');
    expect(new RegistryClient().repository('alpine')).toEqual({ domain: 'docker.io', host: 'registry-1.docker.io', path: 'library/alpine', scheme: 'https' });
  });
  it('scope keys are sorted and de-duplicated by exact string', () => {
    expect(scopeKey(['repository:b:pull', 'repository:a:pull', 'repository:b:pull'])).toBe('repository:a:pull repository:b:pull');
    expect(scopeKey(['repository:a:pull,push'])).not.toBe(scopeKey(['repository:a:push,pull']));
  });
  it('mount source: same registry, not the target, longest common prefix', () => {
    const k = 'containerd.io/distribution.source.reg.io';
    expect(mountSource({ [k]: 'team/a,other/x,team/sub/b' }, { domain: 'reg.io', path: 'team/sub/c' })).toBe('team/sub/b');
    expect(mountSource({ [k]: 'team/c' }, { domain: 'reg.io', path: 'team/c' })).toBeUndefined();
    expect(mountSource({ 'containerd.io/distribution.source.other.io': 'x' }, { domain: 'reg.io', path: 'y' })).toBeUndefined();
    expect(appendSource('b,a', 'c')).toBe('a,b,c');
    expect(appendSource('a', 'a')).toBe('a');
  });
  it('ingest refs follow containerd (kind-digest)', () => {
    const d = digestOf('x');
    expect(makeRefKey({ mediaType: MediaType.OciLayerGzip, digest: d })).toBe(`layer-${d}`);
    expect(makeRefKey({ mediaType: MediaType.DockerManifestList, digest: d })).toBe(`index-${d}`);
    expect(makeRefKey({ mediaType: MediaType.DockerConfig, digest: d })).toBe(`config-${d}`);
  });
  it('URLs are redacted in errors (no userinfo, no presigned query)', () => {
    expect(redactUrl('https://u:p@s3.example.com/b/k?X-Amz-Signature=secret')).toBe('https://s3.example.com/b/k?[redacted]');
  });
});

describe('registry error mapping', () => {
  const req: HttpRequest = { method: 'GET', url: new URL('http://r/v2/x'), headers: {} };
  const cases: Array<[number, string, string]> = [
    [404, '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}', 'NotFound'],
    [401, '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}', 'Unauthorized'],
    [403, '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}', 'Forbidden'],
    [429, '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}', 'ResourceExhausted'],
    [503, 'upstream down', 'Unavailable'],
    [400, '{"errors":[{"code":"NAME_INVALID"}]}', 'InvalidArgument'],
    [405, '{"errors":[{"code":"UNSUPPORTED"}]}', 'NotImplemented'],
  ];
  for (const [status, body, code] of cases) {
    it(`${status} → ${code}`, async () => {
      const e = await errorFromResponse(response(req, status, {}, body), 'doing x');
      expect(e.code).toBe(code);
      expect(e.message.startsWith('doing x: ')).toBe(true);
    });
  }
});

describe('credential scoping with an in-process fake (faults a real registry cannot produce)', () => {
  const creds = { 'reg.test:5000': { username: 'u', password: 'p' } };

  it('an upload Location on another host gets no Authorization; the registry does', async () => {
    const seen: Array<{ method: string; host: string; auth?: string }> = [];
    const transport: Transport = async (req) => {
      seen.push({ method: req.method, host: req.url.host, auth: req.headers.authorization });
      if (req.url.host === 'reg.test:5000') {
        if (!req.headers.authorization) return response(req, 401, { 'WWW-Authenticate': 'Basic realm="r"' });
        if (req.method === 'HEAD') return response(req, 404);
        if (req.method === 'POST') return response(req, 202, { Location: 'http://uploads.other.test/session/1?sig=abc' });
      }
      if (req.url.host === 'uploads.other.test' && req.method === 'PUT') {
        if (typeof req.body === 'function') for await (const _ of req.body()) { /* drain */ }
        return response(req, 201, { 'Docker-Content-Digest': req.url.searchParams.get('digest')! });
      }
      return response(req, 500);
    };
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    try {
      const store = await openContentStore(tmp);
      const bytes = Buffer.from('blob');
      const desc = { mediaType: MediaType.OciLayer, digest: digestOf(bytes), size: bytes.length };
      const w = await store.writer({ ref: 'x' });
      await w.write(bytes);
      await w.commit(bytes.length, desc.digest);
      const client = new RegistryClient({ transport, credentials: creds, insecureRegistries: ['reg.test:5000'] });
      expect(await client.pushBlob(client.repository('reg.test:5000/app'), store, desc)).toBe('uploaded');
      const put = seen.find((s) => s.method === 'PUT')!;
      expect(put.host).toBe('uploads.other.test');
      expect(put.auth).toBeUndefined();
      expect(seen.filter((s) => s.host === 'reg.test:5000' && s.auth)).not.toHaveLength(0);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('redirects: auth dropped off-host, at most 10 hops', async () => {
    const seen: Array<{ host: string; auth?: string }> = [];
    let hops = 0;
    const transport: Transport = async (req) => {
      seen.push({ host: req.url.host, auth: req.headers.authorization });
      if (req.url.host === 'reg.test:5000' && !req.headers.authorization) return response(req, 401, { 'WWW-Authenticate': 'Basic realm="r"' });
      hops++;
      return response(req, 302, { Location: `http://cdn${hops}.test/next` });
    };
    const client = new RegistryClient({ transport, credentials: creds, insecureRegistries: ['reg.test:5000'], retry: { attempts: 1 } });
    const e = await client.fetchBytes(client.repository('reg.test:5000/app'), { mediaType: MediaType.OciConfig, digest: digestOf('c'), size: 1 }, 10).catch((x: unknown) => x);
    expect(isStowageError(e, 'Unavailable')).toBe(true);
    expect((e as Error).message).toMatch(/too many redirects/);
    expect(seen.filter((s) => s.host.startsWith('cdn')).every((s) => s.auth === undefined)).toBe(true);
    expect(seen.filter((s) => s.host.startsWith('cdn')).length).toBe(10);
  });

  it('schema 1 answers are refused as NotImplemented', async () => {
    const transport: Transport = async (req) => response(req, 200, { 'Content-Type': MediaType.DockerManifestV1Signed, 'Content-Length': '20', 'Docker-Content-Digest': digestOf('x') }, req.method === 'GET' ? '{"schemaVersion":1}' : '');
    const client = new RegistryClient({ transport, credentials: {} });
    const e = await client.resolve('127.0.0.1:1/old:v1').catch((x: unknown) => x);
    expect(isStowageError(e, 'NotImplemented')).toBe(true);
  });

  it('a HEAD without Content-Length is not trusted: GET is hashed instead', async () => {
    const body = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: digestOf('c'), size: 1 }, layers: [] });
    const transport: Transport = async (req) => req.method === 'HEAD'
      ? response(req, 200, { 'Content-Type': MediaType.OciManifest, 'Docker-Content-Digest': digestOf('lies') })
      : response(req, 200, { 'Content-Type': MediaType.OciManifest }, body);
    const client = new RegistryClient({ transport, credentials: {} });
    const r = await client.resolve('127.0.0.1:1/app:v1');
    expect(r.descriptor.digest).toBe(digestOf(body));
    expect(r.descriptor.size).toBe(body.length);
  });

  it('a GET whose Docker-Content-Digest disagrees with the body is DigestMismatch', async () => {
    const body = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: digestOf('c'), size: 1 }, layers: [] });
    const transport: Transport = async (req) => req.method === 'HEAD' ? response(req, 405)
      : response(req, 200, { 'Content-Type': MediaType.OciManifest, 'Docker-Content-Digest': digestOf('other') }, body);
    const client = new RegistryClient({ transport, credentials: {} });
    const e = await client.resolve('127.0.0.1:1/app:v1').catch((x: unknown) => x);
    expect(isStowageError(e, 'DigestMismatch')).toBe(true);
  });
});

describe('foreign layer URLs (CVE-2020-15157)', () => {
  it('are tried first without credentials, even when they challenge; then the registry', async () => {
    const bytes = Buffer.from('foreign layer bytes');
    const desc = { mediaType: MediaType.OciLayerNondistributableGzip, digest: digestOf(bytes), size: bytes.length, urls: ['http://cdn1.test/a', 'http://cdn2.test/b'] };
    const seen: Array<{ host: string; auth?: string }> = [];
    const transport: Transport = async (req) => {
      seen.push({ host: req.url.host, auth: req.headers.authorization });
      if (req.url.host === 'cdn1.test') return response(req, 401, { 'WWW-Authenticate': 'Bearer realm="http://evil.test/token"' });
      if (req.url.host === 'cdn2.test') return response(req, 404);
      if (!req.headers.authorization) return response(req, 401, { 'WWW-Authenticate': 'Basic realm="r"' });
      return response(req, 200, {}, bytes.toString());
    };
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    try {
      const store = await openContentStore(tmp);
      const client = new RegistryClient({ transport, credentials: { 'reg.test:5000': { username: 'u', password: 'p' } }, insecureRegistries: ['reg.test:5000'] });
      // Learn the registry's Basic challenge first, so that credentials are at hand when the foreign URLs are tried.
      await client.fetchBytes(client.repository('reg.test:5000/app'), { ...desc, mediaType: MediaType.OciConfig, urls: [] }, 1024);
      seen.length = 0;
      const r = await client.fetchBlobInto(store, client.repository('reg.test:5000/app'), desc);
      expect(r.status).toBe('fetched');
      expect(seen.map((s) => s.host)).toEqual(['cdn1.test', 'cdn2.test', 'reg.test:5000']);
      expect(seen[2]!.auth).toMatch(/^Basic /);
      expect(seen.filter((s) => s.host !== 'reg.test:5000').every((s) => s.auth === undefined)).toBe(true);
      expect(seen.some((s) => s.host === 'evil.test')).toBe(false);
      expect((await store.info(desc.digest)).size).toBe(bytes.length);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
