/**
 * Runs the image-service conformance suite (suite.ts) against Stowage, on images pushed by skopeo to a
 * real docker-registry on loopback; then the checks that are about Stowage's own storage model (GC
 * labels, leases, resume) and the peer comparisons with skopeo and umoci.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage, type Stowage } from '../../src/index.js';
import { openMetadata } from '../../src/metadata/index.js';
import { chainID } from '../../src/snapshots/index.js';
import { assertSameTree } from '../../src/testing/index.js';
import { makeTestImage, makeTestIndex, pushWithSkopeo, skopeo, writeOciLayout as writeHarnessLayout } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { filesFor, findIdPrefixCollision, writeOciLayout } from './gen.js';
import { imageServiceSuite, type Fixtures, type SuiteEnv } from './suite.js';

let registry: Registry;
let work: string;
let fixtures: Fixtures;
const stores: string[] = [];
let counter = 0;

function tmp(): string {
  const d = path.join(work, `t${counter++}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

async function push(layoutDir: string, repoTag: string, opts: { tag?: string; all?: boolean } = {}): Promise<void> {
  await pushWithSkopeo(layoutDir, `docker://${repoTag}`, { tag: opts.tag ?? 'latest', ...(opts.all ? { all: true } : {}) });
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-images-'));
  registry = await startRegistry();
  const base = filesFor('base');
  const a = await writeOciLayout(path.join(work, 'fx-a'), [{
    layers: [base, filesFor('a')], emptyLayers: 1, labels: { tier: 'web', 'com.example.version': '1' }, created: '2024-01-01T00:00:00Z',
  }], 'v1');
  const b = await writeOciLayout(path.join(work, 'fx-b'), [{
    layers: [base, filesFor('b1'), filesFor('b2')], labels: { tier: 'db' }, created: '2024-02-01T00:00:00Z',
  }], 'v2');
  const c = await writeOciLayout(path.join(work, 'fx-c'), [{ layers: [filesFor('c')], labels: { tier: 'web' }, created: '2024-03-01T00:00:00Z' }], '1');
  const multi = await writeOciLayout(path.join(work, 'fx-multi'), [
    { architecture: 'amd64', layers: [[{ path: 'arch.txt', content: 'amd64\n' }]], created: '2024-04-01T00:00:00Z' },
    { architecture: 'arm64', layers: [[{ path: 'arch.txt', content: 'arm64\n' }]], created: '2024-04-01T00:00:00Z' },
  ], 'latest');
  const [x, y] = await findIdPrefixCollision(4);
  const ambX = await writeOciLayout(path.join(work, 'fx-x'), [x], 'x');
  const ambY = await writeOciLayout(path.join(work, 'fx-y'), [y], 'y');
  // An index with BuildKit-style attestation manifests (harness generator).
  const attAmd = await makeTestImage({ layers: [{ files: { 'arch.txt': 'amd64\n' } }], platform: { os: 'linux', architecture: 'amd64' } });
  const attArm = await makeTestImage({ layers: [{ files: { 'arch.txt': 'arm64\n' } }], platform: { os: 'linux', architecture: 'arm64' } });
  const attIndex = await makeTestIndex([attAmd, attArm], { attestations: true });
  const attDir = writeHarnessLayout(path.join(work, 'fx-att'), attIndex, 'latest');
  const attest = {
    dir: attDir, target: attIndex.index,
    manifests: [attAmd, attArm].map((m) => ({
      manifest: m.manifest, config: m.config, layers: m.layers, diffIds: m.diffIds,
      platform: { os: m.manifest.platform!.os, architecture: m.manifest.platform!.architecture },
    })),
  };
  fixtures = { a, b, c, multi, amb: [ambX, ambY], attest };
  const h = registry.host;
  await Promise.all([
    push(a.dir, `${h}/app:v1`, { tag: 'v1' }),
    push(b.dir, `${h}/app:v2`, { tag: 'v2' }),
    push(c.dir, `${h}/other:1`, { tag: '1' }),
    push(multi.dir, `${h}/multi:latest`, { all: true }),
    push(ambX.dir, `${h}/amb:x`, { tag: 'x' }),
    push(ambY.dir, `${h}/amb:y`, { tag: 'y' }),
    push(attDir, `${h}/attest:latest`, { all: true }),
  ]);
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function env(): SuiteEnv {
  return {
    host: registry.host,
    fixtures,
    push,
    tmp,
    async open() {
      const root = path.join(tmp(), 'store');
      stores.push(root);
      return openStowage({ root });
    },
  };
}

imageServiceSuite('Stowage image service', env);

describe('Stowage storage model', () => {
  let s: Stowage;
  let root: string;
  const ref = (n: string) => `${registry.host}/${n}`;

  beforeAll(async () => {
    root = path.join(tmp(), 'store');
    s = await openStowage({ root });
  });
  afterAll(async () => { await s.close(); });

  it('a pull records containerd\'s GC graph: child labels, uncompressed, snapshot ref, distribution source; no lease left', async () => {
    await s.pull(ref('app:v2'));
    const md = openMetadata(root);
    try {
      const m = fixtures.b.manifests[0]!;
      const ml = md.content.labels(m.manifest.digest as `sha256:${string}`);
      expect(ml['containerd.io/gc.ref.content.config']).toBe(m.config.digest);
      m.layers.forEach((l, i) => expect(ml[`containerd.io/gc.ref.content.l.${i}`]).toBe(l.digest));
      const diffs = m.diffIds as `sha256:${string}`[];
      let chain: `${string}:${string}` | undefined;
      for (const d of diffs) chain = chainID(chain, d);
      const cl = md.content.labels(m.config.digest as `sha256:${string}`);
      expect(cl['containerd.io/gc.ref.snapshot.overlay']).toBe(chain);
      m.layers.forEach((l, i) => expect(md.content.labels(l.digest as `sha256:${string}`)['containerd.io/uncompressed']).toBe(diffs[i]));
      for (const d of [m.manifest.digest, m.config.digest, ...m.layers.map((l) => l.digest)]) {
        expect(md.content.labels(d as `sha256:${string}`)[`containerd.io/distribution.source.${registry.host}`]).toBe('app');
      }
      expect(md.leases.list()).toEqual([]);
      expect(md.images.get(ref('app:v2')).target.digest).toBe(fixtures.b.target.digest);
    } finally { md.close(); }
  });

  it('an index pull labels the index with the fetched platform manifest only', async () => {
    await s.pull(ref('multi:latest'), { platform: 'linux/arm64' });
    const md = openMetadata(root);
    try {
      const arm = fixtures.multi.manifests.find((x) => x.platform.architecture === 'arm64')!;
      const il = md.content.labels(fixtures.multi.target.digest as `sha256:${string}`);
      expect(il['containerd.io/gc.ref.content.m.0']).toBe(arm.manifest.digest);
      expect(il['containerd.io/gc.ref.content.m.1']).toBeUndefined();
    } finally { md.close(); }
    // The other platform joins later, with all platforms.
    const r = await s.pull(ref('multi:latest'), { all: true });
    expect(r.updated).toBe(true);
    expect((await s.inspect(ref('multi:latest'), { platform: 'linux/amd64' })).Architecture).toBe('amd64');
    expect((await s.gc()).blobsRemoved).toBe(0);
  });

  it('pulling a second platform of an index keeps the first', async () => {
    const s2 = await openStowage({ root: path.join(tmp(), 'store') });
    try {
      await s2.pull(ref('multi:latest'), { platform: 'linux/amd64' });
      const r = await s2.pull(ref('multi:latest'), { platform: 'linux/arm64' });
      expect(r.updated).toBe(true);
      await s2.gc();
      expect((await s2.inspect(ref('multi:latest'), { platform: 'linux/amd64' })).Architecture).toBe('amd64');
      expect((await s2.inspect(ref('multi:latest'), { platform: 'linux/arm64' })).Architecture).toBe('arm64');
      expect((await s2.check()).ok).toBe(true);
    } finally { await s2.close(); }
  });

  it('an interrupted pull resumes from the partial ingest', async () => {
    const big = await writeOciLayout(path.join(tmp(), 'big'), [{
      layers: [[{ path: 'big.bin', content: randomBytes(4 << 20) }]],
    }], 'big');
    await push(big.dir, ref('big:1'), { tag: 'big' });
    const ctrl = new AbortController();
    let seen = 0;
    await expect(s.pull(ref('big:1'), {
      signal: ctrl.signal,
      onProgress: (e) => { if (e.status === 'Downloading' && (e.progressDetail?.current ?? 0) > 0 && ++seen === 1) ctrl.abort(); },
    })).rejects.toMatchObject({ code: 'Aborted' });
    const resumed: number[] = [];
    const r = await s.pull(ref('big:1'), { onProgress: (e) => { if (e.status === 'Downloading') resumed.push(e.progressDetail?.current ?? 0); } });
    expect(r.id).toBe(big.target.digest);
    // The second pull started from what the first one had written.
    expect(resumed[0]).toBeGreaterThan(0);
    const dir = path.join(tmp(), 'co');
    await s.checkout(ref('big:1'), dir);
    expect(fs.statSync(path.join(dir, 'big.bin')).size).toBe(4 << 20);
  });

  it('the first layer is unpacked while it downloads (Extracting before Download complete)', async () => {
    const big = await writeOciLayout(path.join(tmp(), 'big2'), [{ layers: [[{ path: 'big.bin', content: randomBytes(4 << 20) }], filesFor('small')] }], 'big');
    await push(big.dir, ref('stream:1'), { tag: 'big' });
    const s2 = await openStowage({ root: path.join(tmp(), 'store') });
    try {
      const events: string[] = [];
      const id = big.manifests[0]!.layers[0]!.digest.slice(7, 19);
      await s2.pull(ref('stream:1'), { onProgress: (e) => { if (e.id === id) events.push(e.status!); } });
      const firstExtract = events.indexOf('Extracting');
      expect(firstExtract).toBeGreaterThan(0);
      expect(firstExtract).toBeLessThan(events.indexOf('Download complete'));
      expect(events[events.length - 1]).toBe('Pull complete');
      const dir = path.join(tmp(), 'co');
      await s2.checkout(ref('stream:1'), dir);
      expect(fs.statSync(path.join(dir, 'big.bin')).size).toBe(4 << 20);
      expect((await s2.check()).ok).toBe(true);
    } finally { await s2.close(); }
  });

  it('rmi collects what only the deleted image used (blobs and snapshot directories)', async () => {
    await s.pull(ref('app:v1'));
    await s.pull(ref('app:v2'));
    const only = fixtures.b.manifests[0]!.layers[2]!.digest.slice(7);
    const shared = fixtures.b.manifests[0]!.layers[0]!.digest.slice(7);
    expect(fs.existsSync(path.join(root, 'blobs', 'sha256', only))).toBe(true);
    const dirsBefore = fs.readdirSync(path.join(root, 'snapshots')).length;
    await s.delete(ref('app:v2'));
    expect(fs.existsSync(path.join(root, 'blobs', 'sha256', only))).toBe(false);
    expect(fs.existsSync(path.join(root, 'blobs', 'sha256', shared))).toBe(true);
    expect(fs.readdirSync(path.join(root, 'snapshots')).length).toBeLessThan(dirsBefore);
    expect((await s.gc()).blobsRemoved).toBe(0);
  });

  it('builder parents: hidden intermediates, children, history ids along the chain, prune of parents on delete', async () => {
    const root2 = path.join(tmp(), 'store');
    const s2 = await openStowage({ root: root2 });
    try {
      await s2.pull(ref('app:v1'));
      await s2.pull(ref('app:v2'));
      const a = fixtures.a.target.digest;
      const b = fixtures.b.target.digest;
      // Make app:v2 a classic-builder child of app:v1, and app:v1 an unnamed intermediate.
      const md = openMetadata(root2);
      try {
        const rb = md.images.get(ref('app:v2'));
        md.images.update({ name: rb.name, labels: { 'org.mobyproject.image.parent': a } }, 'labels');
        const ra = md.images.get(ref('app:v1'));
        md.images.create({ name: `dangling@${a}`, target: ra.target });
        md.images.delete(ra.name);
      } finally { md.close(); }
      expect((await s2.images()).map((i) => i.Id)).toEqual([b]);
      expect((await s2.images({ all: true })).map((i) => i.Id).sort()).toEqual([a, b].sort());
      expect((await s2.images())[0]!.ParentId).toBe(a);
      expect(await s2.children(a)).toEqual([b]);
      expect((await s2.inspect(b)).Parent).toBe(a);
      const h = await s2.history(b);
      expect(h.map((r) => r.Id)).toEqual([b, a, '<missing>']);
      expect(h[1]!.Tags).toBeNull();
      expect(await s2.delete(ref('app:v2'))).toEqual([{ Untagged: ref('app:v2') }, { Deleted: b }, { Deleted: a }]);
      expect(await s2.images({ all: true })).toEqual([]);
    } finally { await s2.close(); }
  });

  it('check reports a corrupt blob', async () => {
    const root2 = path.join(tmp(), 'store');
    const s2 = await openStowage({ root: root2 });
    try {
      await s2.pull(ref('other:1'));
      expect((await s2.check()).ok).toBe(true);
      const cfg = fixtures.c.manifests[0]!.config.digest.slice(7);
      const file = path.join(root2, 'blobs', 'sha256', cfg);
      fs.chmodSync(file, 0o644);
      fs.writeFileSync(file, '{"corrupt":true}');
      const r = await s2.check();
      expect(r.ok).toBe(false);
      expect(r.problems.map((p) => p.kind)).toContain('digest-mismatch');
      expect(r.problems.find((p) => p.kind === 'digest-mismatch')!.subject).toContain(cfg);
      // Repair drops the corrupt blob; a pull puts it back.
      await s2.check({ repair: true });
      await s2.pull(ref('other:1'));
      expect((await s2.check()).ok).toBe(true);
    } finally { await s2.close(); }
  });
});

describe('Stowage pull details', () => {
  const ref = (n: string) => `${registry.host}/${n}`;

  it('allTags pulls every tag of a repository', async () => {
    const s = await openStowage({ root: path.join(tmp(), 'store') });
    try {
      await push(fixtures.c.dir, ref('tags:one'), { tag: '1' });
      await push(fixtures.a.dir, ref('tags:two'), { tag: 'v1' });
      const statuses: string[] = [];
      await s.pull(ref('tags'), { allTags: true, onProgress: (e) => { if (e.status?.startsWith('Status:')) statuses.push(e.status); } });
      const names = (await s.images()).flatMap((i) => i.RepoTags).sort();
      expect(names).toEqual([ref('tags:one'), ref('tags:two')]);
      expect(statuses).toEqual([`Status: Downloaded newer image for ${ref('tags')}`, `Status: Downloaded newer image for ${ref('tags')}`]);
    } finally { await s.close(); }
  });

  it('a registry with Basic auth: refused without credentials, pulled with them', async () => {
    const auth = await startRegistry({ auth: 'basic', storageDir: registry.storageDir });
    const s = await openStowage({ root: path.join(tmp(), 'store') });
    try {
      const name = `${auth.host}/other:1`;
      const cfg = path.join(tmp(), 'docker-config');
      fs.mkdirSync(cfg);
      const saved = process.env.DOCKER_CONFIG;
      process.env.DOCKER_CONFIG = cfg;
      try {
        await expect(s.pull(name)).rejects.toMatchObject({ code: expect.stringMatching(/NotFound|Unauthorized/) });
        const r = await s.pull(name, { credentials: { username: auth.username, password: auth.password } });
        expect(r.id).toBe(fixtures.c.target.digest);
      } finally {
        if (saved === undefined) delete process.env.DOCKER_CONFIG; else process.env.DOCKER_CONFIG = saved;
      }
    } finally {
      await s.close();
      await auth.stop();
    }
  });

  it('an image whose layer does not match its diff_id is refused (DigestMismatch) and leaves no record nor lease', async () => {
    const bad = await writeOciLayout(path.join(tmp(), 'bad'), [{ layers: [filesFor('bad1'), filesFor('bad2')], badDiffId: true }], 'bad');
    await push(bad.dir, ref('bad:1'), { tag: 'bad' });
    const root = path.join(tmp(), 'store');
    const s = await openStowage({ root });
    try {
      await expect(s.pull(ref('bad:1'))).rejects.toMatchObject({ code: 'DigestMismatch', message: expect.stringContaining('wrong diff id') });
      await expect(s.inspect(ref('bad:1'))).rejects.toMatchObject({ code: 'NotFound' });
      const md = openMetadata(root);
      try { expect(md.leases.list()).toEqual([]); } finally { md.close(); }
      // What it left behind is garbage.
      await s.gc();
      expect(await s.images({ all: true })).toEqual([]);
    } finally { await s.close(); }
  });

  it('two handles on one root pull the same image at once', async () => {
    const root = path.join(tmp(), 'store');
    const [s1, s2] = await Promise.all([openStowage({ root }), openStowage({ root })]);
    try {
      const [r1, r2] = await Promise.all([s1.pull(ref('app:v2')), s2.pull(ref('app:v2'))]);
      expect(r1.id).toBe(fixtures.b.target.digest);
      expect(r2.id).toBe(fixtures.b.target.digest);
      expect((await s1.check()).ok).toBe(true);
      const dir = path.join(tmp(), 'co');
      await s2.checkout(ref('app:v2'), dir);
      expect(fs.readdirSync(dir).sort()).toEqual(['d-b1', 'd-b2', 'd-base']);
    } finally { await s1.close(); await s2.close(); }
  });

  it('GC and prune running in another handle during a pull never take what the pull needs', async () => {
    const root = path.join(tmp(), 'store');
    const [s1, s2] = await Promise.all([openStowage({ root }), openStowage({ root })]);
    try {
      let pulling = true;
      let prunedImages = 0;
      const collector = (async () => {
        let runs = 0;
        while (pulling) {
          await s2.gc();
          // Any error of the prune fails the test: a prune racing pulls must neither break nor be refused.
          const pruned = await s2.prune({ filters: { dangling: ['false'] } });
          prunedImages += pruned.ImagesDeleted?.length ?? 0;
          runs++;
          await new Promise((r) => setTimeout(r, 5));
        }
        return runs;
      })();
      const ids = [];
      for (const n of ['app:v1', 'app:v2', 'other:1', 'multi:latest']) ids.push((await s1.pull(ref(n))).id);
      pulling = false;
      expect(await collector).toBeGreaterThan(0);
      // Prune may have removed the finished images meanwhile (they were unused); whatever is listed is whole.
      const listed = await s1.images({ all: true });
      for (const img of listed) {
        const dir = path.join(tmp(), 'co');
        await s1.checkout(img.Id, dir);
        expect(fs.readdirSync(dir).length).toBeGreaterThan(0);
      }
      console.log(`gc/prune during pulls: ${prunedImages} image records pruned, ${listed.length} left and checked out`);
      expect((await s1.check()).ok).toBe(true);
      // And a pull with no collector around gives complete images.
      await s1.pull(ref('app:v2'));
      const dir = path.join(tmp(), 'co2');
      await s1.checkout(ref('app:v2'), dir);
      expect(fs.readdirSync(dir).sort()).toEqual(['d-b1', 'd-b2', 'd-base']);
    } finally { await s1.close(); await s2.close(); }
  });

  it('prune refuses while another live process holds the prune lock, and takes over a dead one\'s', async () => {
    const root = path.join(tmp(), 'store');
    const s = await openStowage({ root });
    const { spawn } = await import('node:child_process');
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      fs.writeFileSync(path.join(root, 'prune.lock'), `${child.pid} ${Date.now()} x`);
      await expect(s.prune()).rejects.toMatchObject({ code: 'Conflict', message: 'a prune operation is already running' });
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      expect(await s.prune()).toEqual({ ImagesDeleted: null, SpaceReclaimed: 0 });
      expect(fs.existsSync(path.join(root, 'prune.lock'))).toBe(false);
    } finally {
      child.kill('SIGKILL');
      await s.close();
    }
  });

  it('a zero-layer image is a real image: pulled, inspected, checked out, used by a container', async () => {
    const empty = await writeOciLayout(path.join(tmp(), 'empty'), [{ layers: [] }], 'e');
    await push(empty.dir, ref('empty:1'), { tag: 'e' });
    const s = await openStowage({ root: path.join(tmp(), 'store') });
    try {
      expect((await s.pull(ref('empty:1'))).id).toBe(empty.target.digest);
      const i = await s.inspect(ref('empty:1'));
      expect(i.RootFS).toEqual({ Type: 'layers' });
      const img = await s.getImage(ref('empty:1'));
      expect(await img.manifest!.isPseudoImage()).toBe(false);
      const dir = path.join(tmp(), 'co');
      await s.checkout(ref('empty:1'), dir);
      expect(fs.readdirSync(dir)).toEqual([]);
      const c = await s.createLayer(undefined, ref('empty:1'));
      expect((await s.mounts(c.id))[0]!.type).toBe('bind');
      await s.releaseLayer(c.id);
      expect(await s.history(ref('empty:1'))).toEqual([]);
    } finally { await s.close(); }
  });

  it('Docker schema 2 images (docker media types) pull and push like OCI ones', async () => {
    // skopeo converts the OCI fixture to Docker schema 2 on the way in (new digests).
    await pushWithSkopeo(fixtures.a.dir, `docker://${ref('v2s2:1')}`, { tag: 'v1', format: 'v2s2' });
    const remote = JSON.parse(await skopeo(['inspect', '--tls-verify=false', `docker://${ref('v2s2:1')}`])) as { Digest: string };
    const s = await openStowage({ root: path.join(tmp(), 'store') });
    try {
      const r = await s.pull(ref('v2s2:1'));
      expect(r.id).toBe(remote.Digest);
      expect(r.target.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
      expect((await s.inspect(ref('v2s2:1'))).RootFS.Layers).toEqual(fixtures.a.manifests[0]!.diffIds);
      const co = path.join(tmp(), 'co');
      await s.checkout(ref('v2s2:1'), co);
      expect(fs.readdirSync(co).sort()).toEqual(['d-a', 'd-base']);
      await s.tag(ref('v2s2:1'), ref('v2s2-copy:1'));
      const [p] = await s.push(ref('v2s2-copy:1'));
      expect(p!.digest).toBe(remote.Digest);
    } finally { await s.close(); }
  });

  it('zstd and uncompressed layers unpack and record their uncompressed digest', async () => {
    const img = await writeOciLayout(path.join(tmp(), 'zstd'), [{ layers: [filesFor('z')], compression: 'zstd' }, { layers: [filesFor('n')], compression: 'none', architecture: 'arm64' }], 'z');
    await push(img.dir, ref('zstd:1'), { tag: 'z', all: true });
    const root = path.join(tmp(), 'store');
    const s = await openStowage({ root });
    try {
      await s.pull(ref('zstd:1'), { all: true });
      const md = openMetadata(root);
      try {
        for (const m of img.manifests) {
          expect(md.content.labels(m.layers[0]!.digest as `sha256:${string}`)['containerd.io/uncompressed']).toBe(m.diffIds[0]);
        }
      } finally { md.close(); }
      const co = path.join(tmp(), 'co');
      await s.checkout(ref('zstd:1'), co, { platform: 'linux/amd64' });
      expect(fs.readdirSync(co)).toEqual(['d-z']);
    } finally { await s.close(); }
  });

  it('events accept docker timestamp strings', async () => {
    const s = await openStowage({ root: path.join(tmp(), 'store') });
    try {
      await s.pull(ref('other:1'));
      const got = [];
      for await (const e of s.events({ since: '10m', until: '0s' })) got.push(e.Action);
      expect(got).toEqual(['pull']);
      await expect((async () => { for await (const _ of s.events({ since: 'yesterday' })) { /* none */ } })()).rejects.toMatchObject({ code: 'InvalidArgument' });
    } finally { await s.close(); }
  });
});

describe('peers: skopeo and umoci see the same image', () => {
  it('IDs, digests and config match skopeo\'s copy; checkout equals umoci unpack', async () => {
    const root = path.join(tmp(), 'store');
    const s = await openStowage({ root });
    try {
      const name = `${registry.host}/app:v2`;
      const pulled = await s.pull(name);
      const oci = path.join(tmp(), 'oci');
      await skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${name}`, `oci:${oci}:v2`]);
      const index = JSON.parse(fs.readFileSync(path.join(oci, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
      expect(index.manifests[0]!.digest).toBe(pulled.id);
      const manifest = JSON.parse(fs.readFileSync(path.join(oci, 'blobs', 'sha256', pulled.id.slice(7)), 'utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
      const inspect = await s.inspect(name);
      const config = JSON.parse(fs.readFileSync(path.join(oci, 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8')) as { rootfs: { diff_ids: string[] }; config: { Labels: Record<string, string> } };
      expect(inspect.RootFS.Layers).toEqual(config.rootfs.diff_ids);
      expect(inspect.Config.Labels).toEqual(config.config.Labels);
      const img = await s.getImage(name);
      expect(img.manifest!.descriptor.digest).toBe(pulled.id);
      expect((await img.manifest!.readConfig()).rootfs.diff_ids).toEqual(config.rootfs.diff_ids);
      const remote = JSON.parse(await skopeo(['inspect', '--tls-verify=false', `docker://${name}`])) as { Digest: string; Layers: string[] };
      expect(remote.Digest).toBe(pulled.id);
      expect(remote.Layers).toEqual(manifest.layers.map((l) => l.digest));

      const bundle = path.join(tmp(), 'bundle');
      execFileSync('umoci', ['unpack', '--image', `${oci}:v2`, bundle], { stdio: 'ignore' });
      const mine = path.join(tmp(), 'checkout');
      await s.checkout(name, mine);
      assertSameTree(mine, path.join(bundle, 'rootfs'), { directoryModes: true });
    } finally { await s.close(); }
  });
});
