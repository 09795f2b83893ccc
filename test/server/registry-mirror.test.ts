/**
 * Pull-through mirror (`--mirror-of`) in front of the real docker-registry: what the store lacks comes
 * from upstream and is stored; a second pull makes no upstream request; concurrent requests for one
 * blob cause one upstream download; a client's credentials are passed on; containerd pulls through it
 * with the hosts.toml shape of a Docker Hub mirror.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage } from '../../src/images/index.js';
import { startContainerd, type Containerd } from '../../bench/support/pull-peers.js';
import { makeRandomImage, makeTestImage, pushRaw, type TestImage } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { startStowageRegistry, type StowageRegistry } from '../harness/stowage-registry.js';

const execFileP = promisify(execFile);
let tmp: string;
let upstream: Registry;
let mirror: StowageRegistry;
let image: TestImage;
let big: TestImage;

const upstreamGets = (what: string) => upstream.requestLines().filter((l) => l.startsWith(`GET ${what}`) || l.startsWith(`HEAD ${what}`));
const upstreamTotal = () => upstream.requestLines().filter((l) => !l.startsWith('GET /v2/ ')).length;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-mirror-'));
  upstream = await startRegistry();
  image = await makeTestImage({ layers: [{ files: { 'etc/mirrored': 'through the mirror\n' } }, { files: { 'etc/two': '2\n' } }] });
  big = await makeRandomImage([3 << 20]);
  await pushRaw(upstream.url, 'library/fixture', '1', image);
  await pushRaw(upstream.url, 'library/big', '1', big);
  mirror = await startStowageRegistry({ mirrorOf: upstream.url });
});
afterAll(async () => {
  await mirror?.stop();
  await upstream?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('pull-through mirror', () => {
  it('a pull through the mirror fetches from upstream and stores the image under the upstream\'s name', async () => {
    const client = await openStowage({ root: path.join(tmp, 'client-1') });
    try {
      const r = await client.pull(`${mirror.host}/library/fixture:1`);
      expect(r.id).toBe(image.manifest.digest);
    } finally { await client.close(); }
    await mirror.server.settled();
    expect(upstreamGets('/v2/library/fixture/manifests/1').length).toBeGreaterThan(0);
    const rec = await mirror.store.resolveImage(`${upstream.host}/library/fixture:1`);
    expect(rec.target.digest).toBe(image.manifest.digest);
    for (const l of image.layers) expect(fs.existsSync(path.join(mirror.root, 'blobs', 'sha256', l.digest.slice(7)))).toBe(true);
  });

  it('a second pull is served from the store with no upstream request', async () => {
    const before = upstreamTotal();
    const client = await openStowage({ root: path.join(tmp, 'client-2') });
    try {
      const r = await client.pull(`${mirror.host}/library/fixture:1`);
      expect(r.id).toBe(image.manifest.digest);
    } finally { await client.close(); }
    expect(upstreamTotal()).toBe(before);
  });

  it('clients asking for one blob at once cause one upstream download, and all get its bytes', async () => {
    const manifest = await fetch(`${mirror.url}/v2/library/big/manifests/1`);
    expect(manifest.status).toBe(200);
    const layer = big.layers[0]!;
    const bodies = await Promise.all([0, 1, 2, 3, 4].map(async () => {
      const r = await fetch(`${mirror.url}/v2/library/big/blobs/${layer.digest}`);
      expect(r.status).toBe(200);
      return Buffer.from(await r.arrayBuffer());
    }));
    for (const b of bodies) expect(b.equals(big.blobs.get(layer.digest)!)).toBe(true);
    expect(upstream.requestLines().filter((l) => l.startsWith(`GET /v2/library/big/blobs/${layer.digest}`))).toHaveLength(1);
  });

  it('something upstream lacks is 404 here too', async () => {
    const r = await fetch(`${mirror.url}/v2/library/nothing/manifests/1`);
    expect(r.status).toBe(404);
  });

  it('containerd pulls a Docker Hub name through it with a hosts.toml mirror entry', async () => {
    const hosts = path.join(tmp, 'hosts.d');
    fs.mkdirSync(path.join(hosts, 'docker.io'), { recursive: true });
    fs.writeFileSync(path.join(hosts, 'docker.io', 'hosts.toml'), [
      'server = "https://registry-1.docker.io"', '',
      `[host."http://${mirror.host}"]`, '  capabilities = ["pull", "resolve"]', '',
    ].join('\n'));
    let cd: Containerd | undefined;
    try {
      cd = await startContainerd(path.join(tmp, 'containerd'));
      await execFileP('ctr', ['--address', cd.address, '-n', 'test', 'images', 'pull', '--hosts-dir', hosts, 'docker.io/library/fixture:1']);
      const { stdout } = await execFileP('ctr', ['--address', cd.address, '-n', 'test', 'images', 'ls']);
      expect(stdout).toContain(image.manifest.digest);
    } finally {
      await cd?.stop();
    }
    expect(mirror.log.some((l) => l.includes('/v2/library/fixture/manifests/1') && l.includes('containerd'))).toBe(true);
  });
});

describe('credentials', () => {
  it('a client\'s Basic credentials go on to an upstream that needs them', async () => {
    const locked = await startRegistry({ auth: 'basic' });
    const m = await startStowageRegistry({ mirrorOf: locked.url });
    try {
      await pushRaw(locked.url, 'private/app', '1', image, locked);
      const anon = await fetch(`${m.url}/v2/private/app/manifests/1`);
      expect(anon.status).toBe(401);
      expect(anon.headers.get('www-authenticate')).toMatch(/^Basic /);
      const auth = `Basic ${Buffer.from(`${locked.username}:${locked.password}`).toString('base64')}`;
      const ok = await fetch(`${m.url}/v2/private/app/manifests/1`, { headers: { authorization: auth } });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('docker-content-digest')).toBe(image.manifest.digest);
    } finally {
      await m.stop();
      await locked.stop();
    }
  });
});

describe('afterwards', () => {
  it('the served store checks clean (records, blobs, leases) once the mirror has completed what it fetched', async () => {
    await mirror.server.settled();
    expect((await mirror.store.check()).problems).toEqual([]);
    expect((await mirror.store.resolveImage(`${upstream.host}/library/big:1`)).target.digest).toBe(big.manifest.digest);
  });
});
