/**
 * The registry server with real clients as peers: skopeo copies to it and from it (digests kept),
 * containerd's `ctr pull`, a stowage pull into another root; and the server's own promises that those
 * clients lean on: names (bare and qualified, precedence), Accept negotiation without conversion, Range,
 * tag and catalog pagination.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage } from '../../src/images/index.js';
import { digestOf } from '../../src/oci/index.js';
import { startContainerd, type Containerd } from '../../bench/support/pull-peers.js';
import { makeTestImage, makeTestIndex, pushRaw, pushWithSkopeo, skopeo, writeOciLayout, type TestImage } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { startStowageRegistry, type StowageRegistry } from '../harness/stowage-registry.js';

const execFileP = promisify(execFile);
/** ctr, asynchronously: the server answering it runs in this very process. */
async function ctr(address: string, args: string[]): Promise<string> {
  return (await execFileP('ctr', ['--address', address, '-n', 'test', ...args], { maxBuffer: 16 << 20 })).stdout;
}
let tmp: string;
let served: StowageRegistry;
let oci: TestImage;
let docker: TestImage;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-peers-'));
  served = await startStowageRegistry();
  oci = await makeTestImage({ layers: [{ files: { 'etc/hello': 'hello from oci\n' } }, { files: { 'usr/share/a': 'a\n', 'usr/share/b': 'b\n' } }] });
  docker = await makeTestImage({ format: 'docker', layers: [{ files: { 'etc/hello': 'hello from docker\n' } }] });
});
afterAll(async () => {
  await served?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('real clients', () => {
  it('skopeo copies an image to the server: it becomes an image of the store under the server\'s name, digests kept', async () => {
    const layout = writeOciLayout(path.join(tmp, 'push-layout'), oci, 'v1');
    await pushWithSkopeo(layout, `docker://${served.host}/fixtures/app:1`, { tag: 'v1' });
    const rec = await served.store.resolveImage(`${served.host}/fixtures/app:1`);
    expect(rec.target.digest).toBe(oci.manifest.digest);
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${served.host}/fixtures/app:1`]);
    expect(digestOf(raw)).toBe(oci.manifest.digest);
  });

  it('skopeo copies it back out with every blob and the same digests', async () => {
    const out = path.join(tmp, 'pulled-layout');
    await skopeo(['copy', '--quiet', '--src-tls-verify=false', '--preserve-digests', `docker://${served.host}/fixtures/app:1`, `oci:${out}:got`]);
    const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    expect(index.manifests[0]!.digest).toBe(oci.manifest.digest);
    for (const [d, bytes] of oci.blobs) {
      expect(fs.readFileSync(path.join(out, 'blobs', 'sha256', d.slice(7))).equals(bytes)).toBe(true);
    }
  });

  it('containerd\'s ctr pull takes it (and unpacks it)', async () => {
    let cd: Containerd | undefined;
    try {
      cd = await startContainerd(path.join(tmp, 'containerd'));
      await ctr(cd.address, ['images', 'pull', '--plain-http', `${served.host}/fixtures/app:1`]);
      const list = await ctr(cd.address, ['images', 'ls']);
      expect(list).toContain(`${served.host}/fixtures/app:1`);
      expect(list).toContain(oci.manifest.digest);
    } finally {
      await cd?.stop();
    }
  });

  it('a stowage pull into another root gets the same image and files', async () => {
    const other = await openStowage({ root: path.join(tmp, 'other-root') });
    try {
      const r = await other.pull(`${served.host}/fixtures/app:1`);
      expect(r.id).toBe(oci.manifest.digest);
      const dir = path.join(tmp, 'checkout');
      await other.checkout(`${served.host}/fixtures/app:1`, dir);
      expect(fs.readFileSync(path.join(dir, 'etc/hello'), 'utf8')).toBe('hello from oci\n');
      expect(fs.readFileSync(path.join(dir, 'usr/share/b'), 'utf8')).toBe('b\n');
    } finally {
      await other.close();
    }
  });

  it('a multi-platform index pushed with skopeo --all is pulled back per platform, children kept by the index', async () => {
    const amd = await makeTestImage({ layers: [{ files: { 'arch': 'amd64\n' } }], platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await makeTestImage({ layers: [{ files: { 'arch': 'arm64\n' } }], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const index = await makeTestIndex([amd, arm]);
    await pushWithSkopeo(writeOciLayout(path.join(tmp, 'index-layout'), index, 'multi'), `docker://${served.host}/fixtures/multi:1`, { tag: 'multi', all: true });
    expect((await served.store.resolveImage(`${served.host}/fixtures/multi:1`)).target.digest).toBe(index.index.digest);
    const other = await openStowage({ root: path.join(tmp, 'multi-root') });
    try {
      for (const [platform, img] of [['linux/amd64', amd], ['linux/arm64/v8', arm]] as const) {
        await other.pull(`${served.host}/fixtures/multi:1`, { platform });
        const got = await other.getImage(`${served.host}/fixtures/multi:1`, { platform });
        expect(got.manifest?.descriptor.digest).toBe(img.manifest.digest);
      }
    } finally {
      await other.close();
    }
  });

  it('the stowage CLI\'s serve command serves a store until SIGTERM, then stops cleanly', async () => {
    const root = path.join(tmp, 'cli-root');
    const child = (await import('node:child_process')).spawn(process.execPath, ['bin/stowage.js', '--root', root, 'serve', '--registry', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', () => { const m = /Serving registry at (http:\/\/\S+)/.exec(out); if (m) resolve(m[1]!); });
      child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
    });
    expect((await fetch(`${url}/v2/`)).status).toBe(200);
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('Stopping');
  });
});

describe('names, negotiation, ranges, pagination', () => {
  let upstream: Registry;
  beforeAll(async () => {
    upstream = await startRegistry();
    await pushRaw(upstream.url, 'fixtures/app', '1', docker);
    await pushRaw(upstream.url, 'fixtures/docker', 'v2', docker);
    // The served store also holds an image pulled from another registry, under the same path and tag.
    await served.store.pull(`${upstream.host}/fixtures/app:1`);
    await served.store.pull(`${upstream.host}/fixtures/docker:v2`);
  });
  afterAll(async () => { await upstream?.stop(); });

  const get = (p: string, headers: Record<string, string> = {}) => fetch(`${served.url}${p}`, { headers });

  it('a path two registries hold is the server\'s own image; the qualified name reaches the other', async () => {
    const bare = await get('/v2/fixtures/app/manifests/1');
    expect(bare.headers.get('docker-content-digest')).toBe(oci.manifest.digest);
    const qualified = await get(`/v2/${upstream.host.replace(':', '-')}/fixtures/app/manifests/1`);
    expect(qualified.status).toBe(200);
    expect(qualified.headers.get('docker-content-digest')).toBe(docker.manifest.digest);
    const mine = await get(`/v2/${served.host.replace(':', '-')}/fixtures/app/manifests/1`);
    expect(mine.headers.get('docker-content-digest')).toBe(oci.manifest.digest);
  });

  it('Accept: the stored bytes and type when accepted, 404 MANIFEST_UNKNOWN otherwise (never converted)', async () => {
    const schema2 = 'application/vnd.docker.distribution.manifest.v2+json';
    const d = await get('/v2/fixtures/docker/manifests/v2', { accept: schema2 });
    expect(d.status).toBe(200);
    expect(d.headers.get('content-type')).toBe(schema2);
    expect(Buffer.from(await d.arrayBuffer()).equals(docker.manifestBytes)).toBe(true);
    const o = await get('/v2/fixtures/app/manifests/1', { accept: schema2 });
    expect(o.status).toBe(404);
    expect(((await o.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('MANIFEST_UNKNOWN');
    const head = await fetch(`${served.url}/v2/fixtures/app/manifests/1`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(oci.manifestBytes.length);
    expect(head.headers.get('content-type')).toBe('application/vnd.oci.image.manifest.v1+json');
  });

  it('blob Range: 206 with the bytes asked for, 416 past the end', async () => {
    const layer = oci.layers[1]!;
    const bytes = oci.blobs.get(layer.digest)!;
    const part = await get(`/v2/fixtures/app/blobs/${layer.digest}`, { range: 'bytes=10-99' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 10-99/${bytes.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(10, 100))).toBe(true);
    const tail = await get(`/v2/fixtures/app/blobs/${layer.digest}`, { range: 'bytes=-5' });
    expect(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(bytes.length - 5))).toBe(true);
    const past = await get(`/v2/fixtures/app/blobs/${layer.digest}`, { range: `bytes=${bytes.length}-` });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${bytes.length}`);
  });

  it('tags and catalog page with n/last and a Link to the next page', async () => {
    for (const t of ['a', 'b', 'c', 'd', 'e']) await served.store.tag(`${served.host}/fixtures/app:1`, `${served.host}/paged:${t}`);
    const seen: string[] = [];
    let next: string | undefined = '/v2/paged/tags/list?n=2';
    while (next) {
      const r = await get(next);
      expect(r.status).toBe(200);
      const body = (await r.json()) as { tags: string[] };
      expect(body.tags.length).toBeLessThanOrEqual(2);
      seen.push(...body.tags);
      next = /<([^>]+)>;\s*rel="next"/.exec(r.headers.get('link') ?? '')?.[1];
    }
    expect(seen).toEqual(['a', 'b', 'c', 'd', 'e']);
    const cat = (await (await get('/v2/_catalog')).json()) as { repositories: string[] };
    expect(cat.repositories).toEqual(expect.arrayContaining(['fixtures/app', 'fixtures/docker', 'paged', `${upstream.host.replace(':', '-')}/fixtures/app`]));
    const unknown = await get('/v2/nothing/here/tags/list');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('NAME_UNKNOWN');
  });

  it('a manifest whose blobs are missing is refused with MANIFEST_BLOB_UNKNOWN and nothing is recorded', async () => {
    const lonely = await makeTestImage({ layers: [{ files: { 'x': 'never uploaded\n' } }] });
    const r = await fetch(`${served.url}/v2/fixtures/lonely/manifests/1`, {
      method: 'PUT', headers: { 'content-type': lonely.manifest.mediaType }, body: lonely.manifestBytes,
    });
    expect(r.status).toBe(400);
    const body = (await r.json()) as { errors: Array<{ code: string; detail: { digest: string } }> };
    expect(body.errors[0]!.code).toBe('MANIFEST_BLOB_UNKNOWN');
    await expect(served.store.resolveImage(`${served.host}/fixtures/lonely:1`)).rejects.toMatchObject({ code: 'NotFound' });
  });

  it('a stowage push to the server lands as an image of the store', async () => {
    const other = await openStowage({ root: path.join(tmp, 'pusher') });
    try {
      await other.pull(`${upstream.host}/fixtures/docker:v2`);
      await other.tag(`${upstream.host}/fixtures/docker:v2`, `${served.host}/pushed/docker:v9`);
      await other.push(`${served.host}/pushed/docker:v9`);
    } finally {
      await other.close();
    }
    expect((await served.store.resolveImage(`${served.host}/pushed/docker:v9`)).target.digest).toBe(docker.manifest.digest);
    const { stdout } = await execFileP('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${served.host}/pushed/docker:v9`]);
    expect(digestOf(stdout)).toBe(docker.manifest.digest);
  });
});

describe('afterwards', () => {
  it('the served store checks clean (records, blobs, leases)', async () => {
    expect((await served.store.check()).problems).toEqual([]);
  });
});
