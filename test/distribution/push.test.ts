import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContentStore, writeBlob, type ContentStore } from '../../src/content/index.js';
import { isStowageError } from '../../src/errors/index.js';
import { RegistryClient, type Transport } from '../../src/distribution/index.js';
import { MediaType, digestOf, type Descriptor } from '../../src/oci/index.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { manifestPut, registryLines } from './log-lines.js';
import { startFaultProxy, type FaultProxy } from '../harness/proxy.js';
import { makeRandomImage, makeTestImage, makeTestIndex, pushWithSkopeo, skopeo, storeBlobs, writeOciLayout, type TestImage, type TestIndex } from '../harness/images.js';
import { codeOf } from '../harness/expect.js';
import { manifest, response } from './fake-transport.js';


describe('push to a real docker-registry', () => {
  let tmp: string;
  let anon: Registry;
  let basic: Registry;
  let token: Registry;
  let proxy: FaultProxy;
  let img: TestImage;
  let index: TestIndex;
  let store: ContentStore;
  const labelsOf = (s: ContentStore) => async (d: Descriptor) => (await s.info(d.digest)).labels;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    [anon, basic, token] = await Promise.all([startRegistry(), startRegistry({ auth: 'basic' }), startRegistry({ auth: 'token' })]);
    proxy = await startFaultProxy(anon.url);
    img = await makeTestImage({ layers: [{ files: { 'a.txt': 'first layer\n' } }, { files: { 'b.bin': Buffer.alloc(100_000, 7) } }] });
    const arm = await makeTestImage({ layers: [{ files: { arch: 'arm64\n' } }], platform: { os: 'linux', architecture: 'arm64' } });
    index = await makeTestIndex([img, arm]);
    store = await openContentStore(path.join(tmp, 'store'));
    await storeBlobs(store, index);
  });
  afterAll(async () => {
    await Promise.all([anon?.stop(), basic?.stop(), token?.stop(), proxy?.stop()]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('pushes an image by tag; skopeo and the registry API read back the same bytes (us → skopeo interop)', async () => {
    const client = new RegistryClient();
    const r = await client.push(`${anon.host}/pushed:v1`, store, img.manifest);
    expect(r.blobs.uploaded).toBe(img.layers.length + 1);
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${anon.host}/pushed:v1`]);
    expect(raw).toBe(img.manifestBytes.toString());
    const api = await fetch(`${anon.url}/v2/pushed/manifests/v1`, { headers: { accept: img.manifest.mediaType } });
    expect(api.headers.get('docker-content-digest')).toBe(img.manifest.digest);
    expect(Buffer.from(await api.arrayBuffer()).equals(img.manifestBytes)).toBe(true);
    const out = path.join(tmp, 'skopeo-out');
    await skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${anon.host}/pushed:v1`, `oci:${out}:v1`]);
    const layerFile = path.join(out, 'blobs', 'sha256', img.layers[1]!.digest.slice(7));
    expect(fs.readFileSync(layerFile).equals(img.blobs.get(img.layers[1]!.digest)!)).toBe(true);
    // A second push finds everything there.
    const again = await client.push(`${anon.host}/pushed:v1`, store, img.manifest);
    expect(again.blobs.exists).toBe(img.layers.length + 1);
  });

  it('pushes an index with its manifests; by digest too', async () => {
    const client = new RegistryClient();
    await client.push(`${anon.host}/multi:all`, store, index.index);
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${anon.host}/multi:all`]);
    expect(raw).toBe(index.indexBytes.toString());
    await client.push(`${anon.host}/multi@${index.index.digest}`, store, index.index);
    const res = await fetch(`${anon.url}/v2/multi/manifests/${index.images[1]!.manifest.digest}`, { headers: { accept: index.images[1]!.manifest.mediaType } });
    expect(res.status).toBe(200);
    expect(await codeOf(client.push(`${anon.host}/multi@${img.manifest.digest}`, store, index.index))).toBe('InvalidArgument');
    // An index whose other platform is not local: a clear NotFound naming it.
    const partial = await openContentStore(path.join(tmp, 'partial'));
    await client.pull(`${anon.host}/multi:all`, partial, { platform: { match: (p) => p.architecture === 'amd64', rank: () => 0 } });
    const e = await client.push(`${anon.host}/multi:partial`, partial, index.index).catch((x: unknown) => x);
    expect(isStowageError(e, 'NotFound')).toBe(true);
    expect((e as Error).message).toMatch(/linux\/arm64.*not in the local store/);
  });

  it('mounts blobs across repositories when distribution.source labels name one (201)', async () => {
    const client = new RegistryClient();
    const pulled = await openContentStore(path.join(tmp, 'pulled'));
    await client.pull(`${anon.host}/pushed:v1`, pulled);
    const r = await client.push(`${anon.host}/other/copy:v1`, pulled, img.manifest, { labelsOf: labelsOf(pulled) });
    expect(r.blobs.mounted).toBe(img.layers.length + 1);
    expect(r.blobs.uploaded).toBe(0);
    const mounts = (await registryLines(anon, 0, manifestPut('other/copy'))).filter((l) => l.startsWith('POST /v2/other/copy/blobs/uploads/?') && l.includes('mount=') && l.includes('from=pushed'));
    expect(mounts).toHaveLength(img.layers.length + 1);
    expect(mounts.every((l) => l.endsWith(' 201'))).toBe(true);
    // A source on another registry is not used for a mount.
    const b = new RegistryClient({ credentials: { [basic.host]: { username: basic.username, password: basic.password } } });
    const rb = await b.push(`${basic.host}/copy:v1`, pulled, img.manifest, { labelsOf: labelsOf(pulled) });
    expect(rb.blobs.uploaded).toBe(img.layers.length + 1);
    expect((await registryLines(basic, 0, manifestPut('copy'))).some((l) => l.includes('mount='))).toBe(false);
  });

  it('a mount the registry cannot do (the source lacks the blob) continues as the 202 upload it started', async () => {
    const fresh = await makeTestImage({ layers: [{ files: { 'only-here.txt': 'never pushed anywhere\n' } }] });
    const s = await openContentStore(path.join(tmp, 'mount-miss'));
    await storeBlobs(s, fresh);
    const client = new RegistryClient();
    const key = `containerd.io/distribution.source.${anon.host}`;
    const r = await client.push(`${anon.host}/target:v1`, s, fresh.manifest, { labelsOf: () => ({ [key]: 'nowhere/repo' }) });
    expect(r.blobs).toEqual({ exists: 0, mounted: 0, uploaded: 2 });
    const targetLines = await registryLines(anon, 0, manifestPut('target'));
    const lines = targetLines.filter((l) => l.startsWith('POST /v2/target/blobs/uploads/?') && l.includes('from=nowhere'));
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.endsWith(' 202'))).toBe(true);
    // No second POST: the upload session the mount attempt opened was used.
    expect(targetLines.filter((l) => l.startsWith('POST /v2/target/blobs/uploads/ '))).toHaveLength(0);
  });

  it('token auth: push asks for pull,push scope', async () => {
    const client = new RegistryClient({ credentials: { [token.host]: { username: token.username, password: token.password } } });
    await client.push(`${token.host}/secure:v1`, store, img.manifest);
    expect(token.tokenServer!.requests.some((q) => q.scopes.includes('repository:secure:pull,push'))).toBe(true);
    const anonClient = new RegistryClient({ credentials: async () => undefined });
    expect(await codeOf(anonClient.push(`${token.host}/secure:v2`, store, img.manifest))).toBe('Unauthorized');
  });

  it('large blobs go in PATCH chunks; a failed chunk resumes from the registry\'s Range', async () => {
    const big = await makeRandomImage([1_500_000]);
    const s = await openContentStore(path.join(tmp, 'big-store'));
    await storeBlobs(s, big);
    const client = new RegistryClient({ monolithicThreshold: 256 * 1024, chunkSize: 400 * 1024, retry: { baseDelayMs: 5 } });
    // The third PATCH fails once: the client asks GET <location> where the upload stands and continues.
    proxy.addFault({ method: 'PATCH', path: '/blobs/uploads/', skip: 2, fault: { kind: 'status', status: 503 } });
    const r = await client.push(`${proxy.host}/chunky:v1`, s, big.manifest);
    expect(r.blobs.uploaded).toBe(2);
    const chunkyLines = await registryLines(anon, 0, manifestPut('chunky'));
    const patches = chunkyLines.filter((l) => l.startsWith('PATCH /v2/chunky/blobs/uploads/'));
    expect(patches.length).toBe(Math.ceil(big.layers[0]!.size / (400 * 1024)));
    expect(chunkyLines.some((l) => l.startsWith('GET /v2/chunky/blobs/uploads/') && l.endsWith(' 204'))).toBe(true);
    const blob = await fetch(`${anon.url}/v2/chunky/blobs/${big.layers[0]!.digest}`);
    expect(Buffer.from(await blob.arrayBuffer()).equals(big.blobs.get(big.layers[0]!.digest)!)).toBe(true);
    expect(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${anon.host}/chunky:v1`])).toBe(big.manifestBytes.toString());
  });

  it('round trip: skopeo pushes, we pull, we push elsewhere, skopeo reads it back', async () => {
    const dir = writeOciLayout(path.join(tmp, 'rt'), img, 'rt');
    await pushWithSkopeo(dir, `docker://${anon.host}/rt:rt`, { tag: 'rt' });
    const client = new RegistryClient({ credentials: { [basic.host]: { username: basic.username, password: basic.password } } });
    const s = await openContentStore(path.join(tmp, 'rt-store'));
    const pulled = await client.pull(`${anon.host}/rt:rt`, s);
    expect(pulled.root.digest).toBe(img.manifest.digest);
    await client.push(`${basic.host}/rt:rt`, s, pulled.root);
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', `${basic.username}:${basic.password}`, `docker://${basic.host}/rt:rt`]);
    expect(raw).toBe(img.manifestBytes.toString());
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
