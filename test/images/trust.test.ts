// Nothing trusted without checking: media types by role, compression from the media type (the magic
// bytes only a cross-check), descriptor sizes of local copies, index platform vs config. Each refusal is
// a typed error, and the store checks clean after it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage, type Stowage } from '../../src/index.js';
import { isStowageError, type StowageError } from '../../src/errors/index.js';
import {
  MediaType, digestOf, layerCompression, mediaTypeRole, requireMediaType, type Descriptor,
} from '../../src/oci/index.js';
import { makeTestImage, makeTestIndex, pushRaw, tarOf, type TestImage } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';

let registry: Registry;
let work: string;
let n = 0;
const stores: Stowage[] = [];
async function store(): Promise<Stowage> {
  const s = await openStowage({ root: path.join(work, `store-${n++}`) });
  stores.push(s);
  return s;
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-trust-'));
  registry = await startRegistry();
});
afterAll(async () => {
  for (const s of stores) await s.close();
  await registry?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

/** The image with its manifest rewritten by `edit` (new manifest digest; blobs added as given). */
function remanifest(img: TestImage, edit: (m: { config: Descriptor; layers: Descriptor[] }) => void, blobs: Buffer[] = []): TestImage {
  const doc = JSON.parse(img.manifestBytes.toString()) as { config: Descriptor; layers: Descriptor[] };
  edit(doc);
  const manifestBytes = Buffer.from(JSON.stringify(doc));
  const manifest = { ...img.manifest, digest: digestOf(manifestBytes), size: manifestBytes.length };
  const all = new Map(img.blobs);
  all.delete(img.manifest.digest);
  all.set(manifest.digest, manifestBytes);
  for (const b of blobs) all.set(digestOf(b), b);
  return { ...img, manifest, manifestBytes, config: doc.config, layers: doc.layers, blobs: all };
}

async function pullError(img: TestImage | Awaited<ReturnType<typeof makeTestIndex>>, repo: string): Promise<{ err: StowageError; s: Stowage }> {
  await pushRaw(registry.url, repo, '1', img);
  const s = await store();
  let err: unknown;
  try { await s.pull(`${registry.host}/${repo}:1`); } catch (e) { err = e; }
  expect(err, 'the pull must fail').toBeDefined();
  return { err: err as StowageError, s };
}

describe('media types by role', () => {
  it('knows each role\'s types and takes the compression from the layer type', () => {
    expect(mediaTypeRole(MediaType.OciIndex)).toBe('index');
    expect(mediaTypeRole(MediaType.DockerManifestList)).toBe('index');
    expect(mediaTypeRole(MediaType.DockerManifest)).toBe('manifest');
    expect(mediaTypeRole(MediaType.OciConfig)).toBe('config');
    expect(mediaTypeRole(MediaType.OciLayerZstd)).toBe('layer');
    expect(mediaTypeRole(MediaType.DockerLayerForeignGzip)).toBe('nondistributable-layer');
    expect(mediaTypeRole(MediaType.OciLayerNondistributableGzip)).toBe('nondistributable-layer');
    expect(mediaTypeRole('application/vnd.in-toto+json')).toBe('attestation');
    expect(mediaTypeRole('application/vnd.oci.image.layer.v1.tar+lz4')).toBeUndefined();
    expect(mediaTypeRole('application/octet-stream')).toBeUndefined();
    expect([MediaType.OciLayer, MediaType.OciLayerGzip, MediaType.OciLayerZstd, MediaType.DockerLayerGzip, MediaType.DockerLayer].map(layerCompression))
      .toEqual(['none', 'gzip', 'zstd', 'gzip', 'detect']);
    let err: unknown;
    try { requireMediaType(MediaType.OciLayerGzip, ['config'], 'config of m'); } catch (e) { err = e; }
    expect(isStowageError(err, 'NotImplemented')).toBe(true);
    expect((err as StowageError).data).toEqual({ mediaType: MediaType.OciLayerGzip, role: 'config' });
  });

  it('refuses a layer whose media type is unknown at unpack, naming the type; the store checks clean after', async () => {
    const img = await makeTestImage({ layers: [{ files: { a: 'a' } }, { files: { b: 'b' } }] });
    const odd = 'application/vnd.oci.image.layer.v1.tar+lz4';
    const { err, s } = await pullError(remanifest(img, (m) => { m.layers[1]!.mediaType = odd; }), 'trust/unknown-layer');
    expect(err.code).toBe('NotImplemented');
    expect(err.data).toMatchObject({ mediaType: odd, digest: img.layers[1]!.digest });
    expect(err.message).toContain(odd);
    expect(await s.images()).toEqual([]);
    expect((await s.check()).ok).toBe(true);
  });

  it('refuses a config whose media type is not a config type, before fetching it', async () => {
    const img = await makeTestImage({ layers: [{ files: { a: 'a' } }] });
    const helm = 'application/vnd.cncf.helm.config.v1+json';
    const { err, s } = await pullError(remanifest(img, (m) => { m.config.mediaType = helm; }), 'trust/helm');
    expect(err.code).toBe('NotImplemented');
    expect(err.data).toMatchObject({ mediaType: helm, role: 'config' });
    expect(registry.requestLines().some((l) => l.includes(`/trust/helm/blobs/${img.config.digest}`))).toBe(false);
    expect((await s.check()).ok).toBe(true);
  });
});

describe('compression: the media type says, the magic bytes cross-check', () => {
  const plainTar = async () => tarOf({ 'f.txt': 'plain\n' });

  it('a gzip-typed layer holding a plain tar is refused (compression-mismatch)', async () => {
    const img = await makeTestImage({ layers: [{ files: { 'f.txt': 'plain\n' }, compression: 'none' }] });
    const { err, s } = await pullError(remanifest(img, (m) => { m.layers[0]!.mediaType = MediaType.OciLayerGzip; }), 'trust/gzip-liar');
    expect(err.code).toBe('InvalidArgument');
    expect(err.data).toMatchObject({ reason: 'compression-mismatch', declared: 'gzip', detected: 'none' });
    expect((await s.check()).ok).toBe(true);
  });

  it('an uncompressed-typed OCI layer holding gzip is refused', async () => {
    const img = await makeTestImage({ layers: [{ files: { 'f.txt': 'gz\n' } }] });
    const { err } = await pullError(remanifest(img, (m) => { m.layers[0]!.mediaType = MediaType.OciLayer; }), 'trust/tar-liar');
    expect(err.data).toMatchObject({ reason: 'compression-mismatch', declared: 'none', detected: 'gzip' });
  });

  it('docker\'s plain rootfs.diff.tar type is sniffed, as docker and containerd do (tools wrote gzip under it)', async () => {
    const raw = await plainTar();
    const gz = zlib.gzipSync(raw);
    const img = await makeTestImage({ layers: [{ files: { 'f.txt': 'plain\n' } }], format: 'docker' });
    const fixed = remanifest(img, (m) => { m.layers[0] = { mediaType: MediaType.DockerLayer, digest: digestOf(gz), size: gz.length }; }, [gz]);
    await pushRaw(registry.url, 'trust/docker-tar', '1', fixed);
    const s = await store();
    await s.pull(`${registry.host}/trust/docker-tar:1`);
    const out = path.join(work, 'docker-tar-out');
    await s.checkout(`${registry.host}/trust/docker-tar:1`, out);
    expect(fs.readFileSync(path.join(out, 'f.txt'), 'utf8')).toBe('plain\n');
  });
});

describe('sizes, diffIDs and platforms', () => {
  it('a local blob is held to the descriptor\'s size', async () => {
    const img = await makeTestImage({ layers: [{ files: { a: 'a' } }] });
    await pushRaw(registry.url, 'trust/size', '1', img);
    const s = await store();
    await s.pull(`${registry.host}/trust/size:1`);
    // The same config digest, with a size that lies: the registry path would refuse it on the wire.
    const liar = remanifest(img, (m) => { m.config.size += 7; });
    await pushRaw(registry.url, 'trust/size', '2', liar).catch(() => undefined);
    let err: unknown;
    try { await s.pull(`${registry.host}/trust/size:2`); } catch (e) { err = e; }
    expect(isStowageError(err, 'SizeMismatch')).toBe(true);
    expect((err as StowageError).data).toMatchObject({ digest: img.config.digest, size: img.config.size, expected: img.config.size + 7 });
    expect((await s.check()).ok).toBe(true);
  });

  it('a layer whose bytes do not hash to the config\'s diffID is refused and leaves no snapshot', async () => {
    const img = await makeTestImage({ layers: [{ files: { a: 'a' } }] });
    const other = await makeTestImage({ layers: [{ files: { a: 'b' } }] });
    const cfg = JSON.parse(img.configBytes.toString());
    cfg.rootfs.diff_ids = other.diffIds;
    const configBytes = Buffer.from(JSON.stringify(cfg));
    const bad = remanifest(img, (m) => { m.config = { ...m.config, digest: digestOf(configBytes), size: configBytes.length }; }, [configBytes]);
    const { err, s } = await pullError(bad, 'trust/diffid');
    expect(err.code).toBe('DigestMismatch');
    expect(err.message).toContain('wrong diff id');
    const report = await s.check();
    expect(report.ok).toBe(true);
  });

  it('an index entry whose config describes another platform is refused', async () => {
    const arm = await makeTestImage({ layers: [{ files: { arch: 'arm64' } }], platform: { os: 'linux', architecture: 'arm64' } });
    const lying = { ...arm, manifest: { ...arm.manifest, platform: { os: 'linux', architecture: 'amd64' } } };
    const { err } = await pullError(await makeTestIndex([lying]), 'trust/platform');
    expect(err.code).toBe('InvalidArgument');
    expect(err.data).toMatchObject({ digest: arm.manifest.digest, indexPlatform: { os: 'linux', architecture: 'amd64' }, configPlatform: { os: 'linux', architecture: 'arm64' } });
  });
});
