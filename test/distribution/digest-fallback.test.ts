/**
 * containerd's FetchByDigest fallback, against a real docker-registry holding manifests ONLY as blobs
 * (their bytes uploaded with POST + PUT, never PUT as manifests). Resolving or fetching BY DIGEST tries
 * /v2/<name>/manifests/<digest> and, only after a 404 there, /v2/<name>/blobs/<digest> (which answers
 * application/octet-stream): the bytes are verified against the digest and the media type is read from
 * the JSON. Tags never fall back.
 *
 * distribution 2.8 itself still finds such blobs through its manifests endpoint (it also searches the
 * repository's `_layers` links, a 2.1.0 compatibility path), so the 404 that registries keeping manifests
 * and blobs apart give there is produced by the harness proxy in front of the real registry; the blob
 * endpoint answering is the real registry.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContentStore, readBlob } from '../../src/content/index.js';
import { RegistryClient } from '../../src/distribution/index.js';
import { MediaType, digestOf, type Descriptor } from '../../src/oci/index.js';
import { makeTestImage, makeTestIndex, pushRaw, type TestImage, type TestIndex } from '../harness/images.js';
import { startFaultProxy, type FaultProxy } from '../harness/proxy.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { registryLines } from './log-lines.js';
import { codeOf } from '../harness/expect.js';

const plain = (d: Descriptor): Descriptor => ({ mediaType: d.mediaType, digest: d.digest, size: d.size });

/** A monolithic blob upload (POST, then PUT ?digest=): the registry stores the bytes as a plain blob. */
async function uploadBlob(registryUrl: string, repo: string, bytes: Buffer): Promise<void> {
  const start = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`upload start: ${start.status}`);
  const loc = new URL(start.headers.get('location')!, registryUrl);
  loc.searchParams.set('digest', digestOf(bytes));
  const put = await fetch(loc, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
  if (put.status !== 201) throw new Error(`upload: ${put.status} ${await put.text()}`);
}

/** Every blob of an image, its manifest included, as plain blobs only. */
async function pushAsBlobsOnly(registryUrl: string, repo: string, img: TestImage): Promise<void> {
  for (const bytes of img.blobs.values()) await uploadBlob(registryUrl, repo, bytes);
}

describe('digest references fall back to the blob endpoint (containerd FetchByDigest)', () => {
  let tmp: string;
  let reg: Registry;
  let proxy: FaultProxy;
  let oci: TestImage;
  let docker: TestImage;
  let index: TestIndex;
  let normal: TestImage;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    oci = await makeTestImage({ layers: [{ files: { 'a.txt': 'blob-only oci\n' } }, { files: { 'b.txt': 'second layer\n' } }] });
    docker = await makeTestImage({ format: 'docker', layers: [{ files: { 'd.txt': 'blob-only docker\n' } }] });
    const amd = await makeTestImage({ layers: [{ files: { arch: 'amd64\n' } }], platform: { os: 'linux', architecture: 'amd64' } });
    index = await makeTestIndex([amd]);
    normal = await makeTestImage({ layers: [{ files: { 'n.txt': 'a normal manifest\n' } }] });
    await pushAsBlobsOnly(reg.url, 'blobonly', oci);
    await pushAsBlobsOnly(reg.url, 'blobonly', docker);
    await uploadBlob(reg.url, 'blobonly', index.indexBytes);
    await pushRaw(reg.url, 'normal', 'v1', normal);
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const MANIFEST_UNKNOWN = JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] });
  /** The blob-only repository's manifests endpoint answers 404, as a registry without the `_layers` lookup does. */
  const manifestsUnknown = (): void => {
    proxy.clearFaults();
    for (const method of ['HEAD', 'GET']) {
      proxy.addFault({ method, path: /^\/v2\/blobonly\/manifests\//, times: 1000, fault: { kind: 'status', status: 404, body: MANIFEST_UNKNOWN } });
    }
  };
  /** Proxy requests since `mark`, as `METHOD path status`. */
  const since = (mark: number) => proxy.requests.slice(mark).map((r) => `${r.method} ${r.path} ${r.status}`);

  it('the registry holds these manifests only as blobs (octet-stream); its own manifests endpoint still finds them, so no fallback is taken', async () => {
    const b = await fetch(`${reg.url}/v2/blobonly/blobs/${oci.manifest.digest}`);
    expect(b.status).toBe(200);
    expect(b.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await b.arrayBuffer()).equals(oci.manifestBytes)).toBe(true);
    proxy.clearFaults();
    const mark = proxy.requests.length;
    const r = await new RegistryClient().resolve(`${proxy.host}/blobonly@${oci.manifest.digest}`);
    expect(r.descriptor).toEqual(plain(oci.manifest));
    expect(since(mark)).toEqual([`HEAD /v2/blobonly/manifests/${oci.manifest.digest} 200`]);
  });

  it('resolving repo@digest: 404 on manifests, then the blob, with the media type read from the JSON', async () => {
    manifestsUnknown();
    const client = new RegistryClient();
    const mark = proxy.requests.length;
    const r = await client.resolve(`${proxy.host}/blobonly@${oci.manifest.digest}`);
    expect(r.descriptor).toEqual({ mediaType: MediaType.OciManifest, digest: oci.manifest.digest, size: oci.manifest.size });
    expect(since(mark)).toEqual([
      `HEAD /v2/blobonly/manifests/${oci.manifest.digest} 404`,
      `GET /v2/blobonly/blobs/${oci.manifest.digest} 200`,
    ]);
    const d = await client.resolve(`${proxy.host}/blobonly@${docker.manifest.digest}`);
    expect(d.descriptor).toEqual({ mediaType: MediaType.DockerManifest, digest: docker.manifest.digest, size: docker.manifest.size });
    const i = await client.resolve(`${proxy.host}/blobonly@${index.index.digest}`);
    expect(i.descriptor).toEqual({ mediaType: MediaType.OciIndex, digest: index.index.digest, size: index.index.size });
  });

  it('fetching a manifest by descriptor falls back too, and a whole pull by digest completes', async () => {
    manifestsUnknown();
    const client = new RegistryClient(); // a fresh client: nothing remembered from a resolve
    const repo = client.repository(`${proxy.host}/blobonly`);
    const mark = proxy.requests.length;
    const { bytes, parsed } = await client.fetchManifest(repo, oci.manifest);
    expect(bytes.equals(oci.manifestBytes)).toBe(true);
    expect(parsed.kind).toBe('manifest');
    expect(since(mark)).toEqual([
      `GET /v2/blobonly/manifests/${oci.manifest.digest} 404`,
      `GET /v2/blobonly/blobs/${oci.manifest.digest} 200`,
    ]);

    const store = await openContentStore(fs.mkdtempSync(path.join(tmp, 'store-')));
    const r = await new RegistryClient().pull(`${proxy.host}/blobonly@${oci.manifest.digest}`, store);
    expect(r.root).toMatchObject(plain(oci.manifest));
    for (const [digest, b] of oci.blobs) {
      expect((await readBlob(store, { digest, size: b.length }, 1 << 20)).equals(b)).toBe(true);
    }
  });

  it('tags never fall back; a digest found nowhere is NotFound', async () => {
    manifestsUnknown();
    const client = new RegistryClient();
    let mark = proxy.requests.length;
    expect(await codeOf(client.resolve(`${proxy.host}/blobonly:latest`))).toBe('NotFound');
    expect(since(mark).length).toBeGreaterThan(0);
    expect(since(mark).some((l) => l.includes('/blobs/'))).toBe(false);
    mark = proxy.requests.length;
    const nowhere = `sha256:${'1'.repeat(64)}`;
    expect(await codeOf(client.resolve(`${proxy.host}/blobonly@${nowhere}`))).toBe('NotFound');
    expect(since(mark)).toEqual([
      `HEAD /v2/blobonly/manifests/${nowhere} 404`,
      `GET /v2/blobonly/blobs/${nowhere} 404`,
    ]);
    expect(await codeOf(client.fetchManifest(client.repository(`${proxy.host}/blobonly`), { mediaType: MediaType.OciManifest, digest: nowhere as `sha256:${string}`, size: 10 }))).toBe('NotFound');
  });

  it('a manifest the manifests endpoint serves never touches the blob endpoint', async () => {
    const client = new RegistryClient();
    const mark = (await registryLines(reg, 0, () => true)).length; // earlier lines settled first
    const r = await client.resolve(`${reg.host}/normal@${normal.manifest.digest}`);
    const normalLines = (lines: string[]) => lines.filter((l) => l.includes('/v2/normal/'));
    const head = await registryLines(reg, mark, (lines) => normalLines(lines).length > 0);
    expect(normalLines(head)).toEqual([`HEAD /v2/normal/manifests/${normal.manifest.digest} HTTP/1.1 200`]);
    expect(r.descriptor).toEqual(plain(normal.manifest));
    await new RegistryClient().fetchManifest(r.repository, normal.manifest);
    const all = await registryLines(reg, mark, (lines) => lines.some((l) => l.startsWith(`GET /v2/normal/manifests/${normal.manifest.digest} `)));
    expect(normalLines(all).some((l) => l.includes('/blobs/'))).toBe(false);
  });

  it('the blob\'s bytes are verified against the digest (a flipped byte is DigestMismatch)', async () => {
    manifestsUnknown();
    const client = new RegistryClient({ retry: { baseDelayMs: 2, maxDelayMs: 5 } });
    proxy.addFault({ method: 'GET', path: `/blobs/${oci.manifest.digest}`, fault: { kind: 'flip', at: 5 }, times: 2 });
    expect(await codeOf(client.resolve(`${proxy.host}/blobonly@${oci.manifest.digest}`))).toBe('DigestMismatch');
    expect(await codeOf(client.fetchManifest(client.repository(`${proxy.host}/blobonly`), oci.manifest))).toBe('DigestMismatch');
    expect((await client.resolve(`${proxy.host}/blobonly@${oci.manifest.digest}`)).descriptor.digest).toBe(oci.manifest.digest);
    proxy.clearFaults();
  });
});
