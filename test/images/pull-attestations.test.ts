/**
 * Pull of an index whose BuildKit attestation's only layer is raw in-toto JSON (as on every Docker Hub
 * official image): kept, never unpacked as a tar; and the errors for a missing tag of that repository or
 * a missing repository, worded as docker words them. A real docker-registry.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage } from '../../src/index.js';
import { openMetadata } from '../../src/metadata/index.js';
import { MediaType, digestOf, type Descriptor } from '../../src/oci/index.js';
import { makeTestImage, pushRaw, type TestIndex } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';

let reg: Registry;
let work: string;
let index: TestIndex;
let stores = 0;
const ref = (n: string) => `${reg.host}/${n}`;
const newRoot = () => path.join(work, `store-${stores++}`);

/** An index of one image plus a BuildKit attestation manifest whose only layer is raw in-toto JSON. */
async function indexWithInTotoAttestation(): Promise<TestIndex> {
  const img = await makeTestImage({ layers: [{ files: { 'arch.txt': 'amd64\n' } }], platform: { os: 'linux', architecture: 'amd64' } });
  const blobs = new Map(img.blobs);
  const add = (bytes: Buffer, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor => {
    const d: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.length, ...extra };
    blobs.set(d.digest, bytes);
    return d;
  };
  const statement = add(Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v0.1', predicateType: 'https://spdx.dev/Document', subject: [] })),
    'application/vnd.in-toto+json', { annotations: { 'in-toto.io/predicate-type': 'https://spdx.dev/Document' } });
  const config = add(Buffer.from(JSON.stringify({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [statement.digest] } })), MediaType.OciConfig);
  const attestation = add(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [statement] })), MediaType.OciManifest, {
    platform: { os: 'unknown', architecture: 'unknown' },
    annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': img.manifest.digest },
  });
  const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [img.manifest, attestation] }));
  const desc = add(indexBytes, MediaType.OciIndex);
  return { index: desc, indexBytes, images: [img], blobs };
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-pull-attestations-'));
  reg = await startRegistry();
  index = await indexWithInTotoAttestation();
  await pushRaw(reg.url, 'att', 'latest', index);
});

afterAll(async () => {
  await reg?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('pull of every platform', () => {
  it('keeps attestation manifests with in-toto layers without unpacking them; a second pull is up to date', async () => {
    const root = newRoot();
    const s = await openStowage({ root });
    try {
      const r = await s.pull(ref('att:latest'), { all: true });
      expect(r.id).toBe(index.index.digest);
      const [img] = await s.images({ manifests: true });
      expect(img!.Manifests!.map((m) => [m.Kind, m.Available])).toEqual([['image', true], ['attestation', true]]);
      expect((await s.inspect(ref('att:latest'))).Architecture).toBe('amd64');
      const dir = path.join(work, 'co');
      await s.checkout(ref('att:latest'), dir);
      expect(fs.readFileSync(path.join(dir, 'arch.txt'), 'utf8')).toBe('amd64\n');
      expect((await s.check()).ok).toBe(true);
      // The attestation's blobs are kept by the image (not by a leftover lease), also through a GC.
      await s.gc();
      expect((await s.images({ manifests: true }))[0]!.Manifests!.every((m) => m.Available)).toBe(true);
      const statuses: string[] = [];
      const again = await s.pull(ref('att:latest'), { all: true, onProgress: (m) => { if (m.status) statuses.push(m.status); } });
      expect(again.updated).toBe(false);
      expect(statuses.at(-1)).toBe(`Status: Image is up to date for ${ref('att:latest')}`);
    } finally { await s.close(); }
    const md = openMetadata(root);
    try { expect(md.leases.list()).toEqual([]); } finally { md.close(); }
  });
});

describe('pull errors', () => {
  it('a missing tag of an existing repository is "manifest … not found", a missing repository "pull access denied"', async () => {
    const s = await openStowage({ root: newRoot() });
    try {
      await expect(s.pull(ref('att:nope'))).rejects.toMatchObject({
        code: 'NotFound', message: `manifest for ${ref('att')}:nope not found: manifest unknown: manifest unknown`,
      });
      const d = `sha256:${'0'.repeat(64)}`;
      await expect(s.pull(`${ref('att')}@${d}`)).rejects.toMatchObject({
        code: 'NotFound', message: `manifest for ${ref('att')}@${d} not found: manifest unknown: manifest unknown`,
      });
      await expect(s.pull(ref('nothing-here:1'))).rejects.toMatchObject({
        code: 'NotFound', message: `pull access denied for ${ref('nothing-here')}, repository does not exist or may require 'docker login'`,
      });
    } finally { await s.close(); }
  });
});
