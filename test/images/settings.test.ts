/**
 * Service settings and plumbing: transfer limits that change while transfers run (the scheduler, then
 * real pulls and pushes against the registry), StorageDriver, LayerStoreStatus, DistributionServices,
 * GetRepository, Map and LayerDiskUsage.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransferLimit, runLimited } from '../../src/distribution/index.js';
import { openStowage, type Stowage } from '../../src/images/index.js';
import { digestOf, MediaType, type Descriptor } from '../../src/oci/index.js';
import { makeRandomImage, makeTestImage, pushRaw, type TestIndex } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';

describe('live transfer limits', () => {
  it('a raised limit starts waiting items at once; a lowered one lets running items finish without new starts', async () => {
    const limit = new TransferLimit(1);
    const gates: Array<() => void> = [];
    let active = 0;
    let maxActive = 0;
    const started: number[] = [];
    const done = runLimited([0, 1, 2, 3, 4, 5], limit, (i) => new Promise<void>((resolve) => {
      started.push(i);
      active++;
      maxActive = Math.max(maxActive, active);
      gates[i] = () => { active--; resolve(); };
    }));
    expect(started).toEqual([0]);
    limit.set(3);
    expect(started).toEqual([0, 1, 2]);
    limit.set(1);
    gates[0]!();
    await Promise.resolve(); await Promise.resolve();
    expect(started).toEqual([0, 1, 2]); // two still running: over the lowered limit, nothing new starts
    gates[1]!(); gates[2]!();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1, 2, 3]);
    expect(active).toBe(1);
    for (const i of [3, 4, 5]) {
      await new Promise((r) => setImmediate(r));
      expect(started.at(-1)).toBe(i); // one at a time now
      gates[i]!();
    }
    await done;
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(maxActive).toBe(3);
    expect(() => limit.set(0)).toThrow(/positive integer/);
  });
});

describe('service settings and plumbing', () => {
  let registry: Registry;
  let store: Stowage;
  let work: string;

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-settings-'));
    registry = await startRegistry();
    store = await openStowage({ root: path.join(work, 'store'), concurrency: 2 });
    await pushRaw(registry.url, 'settings/app', 'v1', await makeRandomImage([200_000, 150_000, 100_000, 50_000]));
  });

  afterAll(async () => {
    await store?.close();
    await registry?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('updateConfig changes the limits pull and push use, 0 leaving one unchanged; a pull under limit 1 never overlaps downloads', async () => {
    expect(store.serviceSettings()).toEqual({ maxConcurrentDownloads: 2, maxConcurrentUploads: 2 });
    store.updateConfig({ maxConcurrentDownloads: 1, maxConcurrentUploads: 0 });
    expect(store.serviceSettings()).toEqual({ maxConcurrentDownloads: 1, maxConcurrentUploads: 2 });
    expect(store.distributionServices().downloads.value).toBe(1);
    expect(() => store.updateConfig({ maxConcurrentUploads: -1 })).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));

    const inFlight = new Set<string>();
    let most = 0;
    await store.pull(`${registry.host}/settings/app:v1`, {
      onProgress: (m) => {
        if (!m.id) return;
        if (m.status === 'Downloading') { inFlight.add(m.id); most = Math.max(most, inFlight.size); }
        if (m.status === 'Download complete') inFlight.delete(m.id);
      },
    });
    expect(most).toBe(1);

    store.updateConfig({ maxConcurrentUploads: 4 });
    await store.tag(`${registry.host}/settings/app:v1`, `${registry.host}/settings/copy:v1`);
    const pushed = await store.push(`${registry.host}/settings/copy:v1`);
    expect(pushed).toHaveLength(1);
  });

  it('StorageDriver, LayerStoreStatus, Map, LayerDiskUsage and GetRepository', async () => {
    expect(store.storageDriver()).toBe('overlayfs');
    const status = store.layerStoreStatus();
    expect(status[0]).toEqual(['driver-type', 'io.containerd.snapshotter.v1']);
    expect(status.find(([k]) => k === 'Backing Filesystem')?.[1]).toMatch(/.+/);
    const map = await store.imagesMap();
    const id = (await store.getImage(`${registry.host}/settings/app:v1`)).id;
    expect(map.get(id)?.rootfs.diff_ids).toHaveLength(4);
    expect(await store.layerDiskUsage()).toBeGreaterThanOrEqual(500_000);
    const repo = await store.getRepository(`${registry.host}/settings/app`);
    expect(await repo.listTags()).toEqual(['v1']);
  });

  it('ImageAttestations: the in-toto statements of the chosen platform, filtered by predicate type', async () => {
    const img = await makeTestImage({ layers: [{ files: { a: 'a' } }], platform: { os: 'linux', architecture: process.arch === 'arm64' ? 'arm64' : 'amd64' } });
    const blobs = new Map(img.blobs);
    const statement = (type: string) => Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v0.1', predicateType: type, subject: [{ digest: { sha256: img.manifest.digest.slice(7) } }], predicate: {} }));
    const sbom = statement('https://spdx.dev/Document');
    const prov = statement('https://slsa.dev/provenance/v0.2');
    const layer = (b: Buffer, annotated?: string): Descriptor => ({ mediaType: 'application/vnd.in-toto+json', digest: digestOf(b), size: b.length, ...(annotated ? { annotations: { 'in-toto.io/predicate-type': annotated } } : {}) });
    // As BuildKit writes them: the config lists the statement blobs as diff IDs.
    const cfg = Buffer.from(JSON.stringify({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [digestOf(sbom), digestOf(prov)] } }));
    const cfgDesc: Descriptor = { mediaType: MediaType.OciConfig, digest: digestOf(cfg), size: cfg.length };
    const attBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: cfgDesc, layers: [layer(sbom, 'https://spdx.dev/Document'), layer(prov)] }));
    const att: Descriptor = {
      mediaType: MediaType.OciManifest, digest: digestOf(attBytes), size: attBytes.length, platform: { os: 'unknown', architecture: 'unknown' },
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': img.manifest.digest },
    };
    for (const b of [sbom, prov, cfg, attBytes]) blobs.set(digestOf(b), b);
    const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [img.manifest, att] }));
    blobs.set(digestOf(indexBytes), indexBytes);
    const index: TestIndex = { index: { mediaType: MediaType.OciIndex, digest: digestOf(indexBytes), size: indexBytes.length }, indexBytes, images: [img, { manifest: att, manifestBytes: attBytes } as never], blobs };
    await pushRaw(registry.url, 'settings/attested', 'v1', index);
    const ref = `${registry.host}/settings/attested:v1`;
    await store.pull(ref, { all: true });
    const all = await store.attestations(ref);
    expect(all.map((a) => a.PredicateType)).toEqual(['https://spdx.dev/Document', 'https://slsa.dev/provenance/v0.2']);
    const only = await store.attestations(ref, { predicateTypes: ['https://slsa.dev/provenance/v0.2'], includeStatement: true });
    expect(only).toHaveLength(1);
    expect(only[0]!.Statement).toMatchObject({ predicateType: 'https://slsa.dev/provenance/v0.2' });
    expect(await store.attestations(`${registry.host}/settings/app:v1`)).toEqual([]);
  });

  it('PerformWithBaseFS gives the image tree of a container and releases it; LogImageEvent appends an event', async () => {
    const c = await store.createLayer(undefined, `${registry.host}/settings/app:v1`);
    let seen = '';
    const n = await store.performWithBaseFs(c.id, async (dir) => { seen = dir; return fs.readdirSync(dir).sort(); });
    expect(n).toEqual(['data-0.bin', 'data-1.bin', 'data-2.bin', 'data-3.bin']);
    expect(fs.existsSync(seen)).toBe(false);
    await store.releaseLayer(c.id);
    const since = new Date(Date.now() - 1000);
    await store.logImageEvent(`${registry.host}/settings/app:v1`, 'settings/app:v1', 'tag');
    const got = [];
    for await (const e of store.events({ since, filters: { event: ['tag'] } })) got.push(e.Actor.Attributes.name);
    expect(got).toContain('settings/app:v1');
  });
});
