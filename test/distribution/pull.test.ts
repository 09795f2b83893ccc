import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContentStore, readBlob, type ContentStore } from '../../src/content/index.js';
import { isStowageError } from '../../src/errors/index.js';
import { MediaType, digestOf, parsePlatform, onlyPlatform, type Descriptor } from '../../src/oci/index.js';
import { RegistryClient, progressChannel, type ProgressEvent } from '../../src/distribution/index.js';
import { registryLines } from './log-lines.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { startFaultProxy } from '../harness/proxy.js';
import { makeTestImage, makeTestIndex, pushRaw, pushWithSkopeo, writeOciLayout, type TestImage, type TestIndex } from '../harness/images.js';
import { codeOf } from '../harness/expect.js';

async function expectAllBlobs(store: ContentStore, img: TestImage): Promise<void> {
  for (const [digest, bytes] of img.blobs) {
    const got = await readBlob(store, { digest, size: bytes.length }, 1 << 30);
    expect(got.equals(bytes)).toBe(true);
  }
}

describe('pull from a real docker-registry', () => {
  let tmp: string;
  let anon: Registry;
  let basic: Registry;
  let token: Registry;
  let img: TestImage;
  let dockerImg: TestImage;
  let umociLike: TestImage;
  let index: TestIndex;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    [anon, basic, token] = await Promise.all([startRegistry(), startRegistry({ auth: 'basic' }), startRegistry({ auth: 'token' })]);
    img = await makeTestImage({ layers: [{ files: { 'etc/os-release': 'ID=test\n' } }, { files: { 'usr/bin/tool': 'x'.repeat(300_000) } }] });
    dockerImg = await makeTestImage({ format: 'docker', layers: [{ files: { 'hello.txt': 'docker format\n' } }] });
    umociLike = await makeTestImage({ omitMediaType: true, layers: [{ files: { 'u.txt': 'umoci writes no mediaType\n' } }] });
    const amd = await makeTestImage({ layers: [{ files: { arch: 'amd64\n' } }], platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await makeTestImage({ layers: [{ files: { arch: 'arm64\n' } }], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const armv7 = await makeTestImage({ layers: [{ files: { arch: 'armv7\n' } }], platform: { os: 'linux', architecture: 'arm', variant: 'v7' } });
    index = await makeTestIndex([amd, arm, armv7], { attestations: true });
    const l = (name: string, x: TestImage | TestIndex, tag: string) => writeOciLayout(path.join(tmp, name), x, tag);
    const pushes = [['img', img, 'v1', 'app'], ['umoci', umociLike, 'v1', 'umoci']] as const;
    for (const reg of [anon, basic, token]) {
      const creds = reg.auth === 'none' ? undefined : reg;
      for (const [name, x, tag, repo] of pushes) await pushWithSkopeo(l(`${name}-${reg.auth}`, x, tag), `docker://${reg.host}/${repo}:${tag}`, { tag, creds });
    }
    await pushWithSkopeo(l('index', index, 'multi'), `docker://${anon.host}/multi:multi`, { tag: 'multi', all: true });
    await pushRaw(anon.url, 'dockerapp', 'v1', dockerImg); // skopeo's oci: source only takes OCI media types
  });
  afterAll(async () => {
    await Promise.all([anon?.stop(), basic?.stop(), token?.stop()]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const newStore = () => openContentStore(fs.mkdtempSync(path.join(tmp, 'store-')));

  it('resolves a tag with HEAD and a digest, with the pushed digest (skopeo → us interop)', async () => {
    const client = new RegistryClient();
    const r = await client.resolve(`${anon.host}/app:v1`);
    expect(r.descriptor).toEqual({ mediaType: MediaType.OciManifest, digest: img.manifest.digest, size: img.manifest.size });
    expect(r.name).toBe(`${anon.host}/app:v1`);
    const byDigest = await client.resolve(`${anon.host}/app@${img.manifest.digest}`);
    expect(byDigest.descriptor.digest).toBe(img.manifest.digest);
    const d = await client.resolve(`${anon.host}/dockerapp:v1`);
    expect(d.descriptor.mediaType).toBe(MediaType.DockerManifest);
    const heads = (lines: string[]) => lines.filter((l) => l.startsWith('HEAD /v2/app/manifests/v1'));
    expect(heads(await registryLines(anon, 0, (lines) => heads(lines).length > 0)).length).toBeGreaterThan(0);
  });

  it('resolve: unknown tag is NotFound, malformed digest InvalidArgument; bytes that do not match a digest reference are refused', async () => {
    const client = new RegistryClient();
    expect(await codeOf(client.resolve(`${anon.host}/app:nope`))).toBe('NotFound');
    expect(await codeOf(client.resolve(`${anon.host}/nothere:v1`))).toBe('NotFound');
    expect(await codeOf(client.resolve(`${anon.host}/app@sha256:${'0'.repeat(64)}`))).toBe('NotFound');
    expect(await codeOf(client.resolve(`${anon.host}/app@sha256:${'0'.repeat(63)}`))).toBe('InvalidArgument');
    // A registry answering a digest reference with other bytes (one flipped by a proxy): refused.
    const proxy = await startFaultProxy(anon.url);
    try {
      proxy.addFault({ method: 'GET', path: `/manifests/${img.manifest.digest}`, fault: { kind: 'flip', at: 20 }, times: 100 });
      const ref = `${proxy.host}/app@${img.manifest.digest}`;
      // resolve takes the digest from the reference (a HEAD); the bytes are checked when fetched.
      expect(await codeOf(new RegistryClient().pull(ref, await newStore()))).toBe('DigestMismatch');
    } finally { await proxy.stop(); }
  });

  it('pulls an image into a real content store, verified, labelled, with progress', async () => {
    const store = await newStore();
    const events: ProgressEvent[] = [];
    const client = new RegistryClient();
    const r = await client.pull(`${anon.host}/app:v1`, store, { onProgress: (e) => events.push(e) });
    await expectAllBlobs(store, img);
    expect(r.manifests).toHaveLength(1);
    expect(r.manifests[0]!.config.rootfs.diff_ids).toEqual(img.diffIds);
    expect(r.stats.blobsFetched).toBe(img.blobs.size);
    const mInfo = await store.info(img.manifest.digest);
    expect(mInfo.labels['containerd.io/gc.ref.content.config']).toBe(img.config.digest);
    expect(mInfo.labels['containerd.io/gc.ref.content.l.1']).toBe(img.layers[1]!.digest);
    expect((await store.info(img.layers[0]!.digest)).labels[`containerd.io/distribution.source.${anon.host}`]).toBe('app');
    const big = img.layers[1]!;
    const phases = events.filter((e) => e.digest === big.digest).map((e) => e.phase);
    expect(phases[0]).toBe('waiting');
    expect(phases).toContain('downloading');
    expect(phases.slice(-2)).toEqual(['verifying', 'done']);
    // Again: everything exists, nothing is downloaded.
    const again = await client.pull(`${anon.host}/app:v1`, store, { onProgress: (e) => events.push(e) });
    expect(again.stats.bytesDownloaded).toBe(0);
    expect(again.stats.blobsExisting).toBe(img.blobs.size);
  });

  it('pulls Docker schema 2 and umoci-style (no mediaType) manifests', async () => {
    const store = await newStore();
    const client = new RegistryClient();
    await client.pull(`${anon.host}/dockerapp:v1`, store);
    await expectAllBlobs(store, dockerImg);
    const u = await client.pull(`${anon.host}/umoci:v1`, store);
    expect(u.root.digest).toBe(umociLike.manifest.digest);
    await expectAllBlobs(store, umociLike);
  });

  it('pulls one platform of an index: best match, attestations skipped, gc label on the index', async () => {
    const store = await newStore();
    const client = new RegistryClient();
    const r = await client.pull(`${anon.host}/multi:multi`, store, { platform: onlyPlatform(parsePlatform('linux/arm64')) });
    expect(r.manifests).toHaveLength(1);
    const arm = index.images[1]!;
    expect(r.manifests[0]!.descriptor.digest).toBe(arm.manifest.digest);
    await expectAllBlobs(store, arm);
    expect(await codeOf(store.info(index.images[0]!.manifest.digest))).toBe('NotFound');
    const info = await store.info(index.index.digest);
    expect(info.labels['containerd.io/gc.ref.content.m.0']).toBe(arm.manifest.digest);
    expect(info.labels['containerd.io/gc.ref.content.m.1']).toBeUndefined();
    // arm/v6 falls back to nothing (v7 is newer): NotFound with containerd's words.
    const e = await client.pull(`${anon.host}/multi:multi`, store, { platform: onlyPlatform(parsePlatform('linux/arm/v6')) }).catch((x: unknown) => x);
    expect(isStowageError(e, 'NotFound')).toBe(true);
    expect(String((e as Error).message)).toMatch(/no match for platform/);
    // arm/v8 (32-bit) accepts v7.
    const v7 = await client.pull(`${anon.host}/multi:multi`, await newStore(), { platform: onlyPlatform(parsePlatform('linux/arm/v8')) });
    expect(v7.manifests[0]!.descriptor.digest).toBe(index.images[2]!.manifest.digest);
    const all = await client.pull(`${anon.host}/multi:multi`, await newStore(), { allPlatforms: true });
    expect(all.manifests).toHaveLength(6);
  });

  it('a second platform pulled into the same store joins the index\'s gc labels; the first keeps its position', async () => {
    const store = await newStore();
    const client = new RegistryClient();
    const [amd, arm] = [index.images[0]!, index.images[1]!];
    await client.pull(`${anon.host}/multi:multi`, store, { platform: onlyPlatform(parsePlatform('linux/arm64')) });
    await client.pull(`${anon.host}/multi:multi`, store, { platform: onlyPlatform(parsePlatform('linux/amd64')) });
    const labels = (await store.info(index.index.digest)).labels;
    expect(labels['containerd.io/gc.ref.content.m.0']).toBe(arm.manifest.digest);
    expect(labels['containerd.io/gc.ref.content.m.1']).toBe(amd.manifest.digest);
    await expectAllBlobs(store, arm);
    await expectAllBlobs(store, amd);
  });

  it('Basic auth: pulls with explicit credentials; without them it is Unauthorized', async () => {
    const ok = new RegistryClient({ credentials: { [basic.host]: { username: basic.username, password: basic.password } } });
    const store = await newStore();
    await ok.pull(`${basic.host}/app:v1`, store);
    await expectAllBlobs(store, img);
    const none = new RegistryClient({ credentials: async () => undefined });
    expect(await codeOf(none.resolve(`${basic.host}/app:v1`))).toBe('Unauthorized');
    const wrong = new RegistryClient({ credentials: { [basic.host]: { username: basic.username, password: 'wrong' } } });
    expect(await codeOf(wrong.resolve(`${basic.host}/app:v1`))).toBe('Unauthorized');
  });

  it('token auth: OAuth2 POST with the password, then the refresh token; tokens cached per scope', async () => {
    const ts = token.tokenServer!;
    const before = ts.requests.length;
    const client = new RegistryClient({ credentials: { [token.host]: { username: token.username, password: token.password } } });
    const store = await newStore();
    await client.pull(`${token.host}/app:v1`, store);
    await expectAllBlobs(store, img);
    const mine = ts.requests.slice(before);
    expect(mine[0]).toMatchObject({ method: 'POST', grantType: 'password', account: token.username, accessType: 'offline', scopes: ['repository:app:pull'] });
    // One token for the whole pull (cached by scope).
    expect(client.authorizer.tokenFetches).toBe(1);
    await client.pull(`${token.host}/umoci:v1`, store);
    const next = ts.requests.slice(before)[1]!;
    expect(next).toMatchObject({ method: 'POST', grantType: 'refresh_token', account: token.username, scopes: ['repository:umoci:pull'] });
  });

  it('token auth: anonymous is refused with docker\'s words; an identity token works', async () => {
    const anonClient = new RegistryClient({ credentials: async () => undefined });
    const e = await anonClient.resolve(`${token.host}/app:v1`).catch((x: unknown) => x);
    expect(isStowageError(e, 'Unauthorized')).toBe(true);
    expect((e as Error).message).toMatch(/pull access denied .* may require authorization/);
    // Get a refresh token as `docker login` would store it (identitytoken), then use it alone.
    const ts = token.tokenServer!;
    const res = await fetch(ts.realm, { method: 'POST', body: new URLSearchParams({ grant_type: 'password', username: token.username, password: token.password, service: ts.service, access_type: 'offline', client_id: 't' }) });
    const { refresh_token } = await res.json() as { refresh_token: string };
    const idClient = new RegistryClient({ credentials: { [token.host]: { identityToken: refresh_token } } });
    const r = await idClient.resolve(`${token.host}/app:v1`);
    expect(r.descriptor.digest).toBe(img.manifest.digest);
    expect(ts.requests.at(-1)).toMatchObject({ method: 'POST', grantType: 'refresh_token' });
  });

  it('token auth: a token-server 5xx is retried; a lasting outage is Unavailable', async () => {
    const ts = token.tokenServer!;
    const creds = { [token.host]: { username: token.username, password: token.password } };
    ts.failNext(1, 500);
    const client = new RegistryClient({ credentials: creds, retry: { baseDelayMs: 5 } });
    expect(await codeOf(client.resolve(`${token.host}/app:v1`))).toBe('ok');
    ts.failNext(100, 503);
    const down = new RegistryClient({ credentials: creds, retry: { baseDelayMs: 5, attempts: 3 } });
    expect(await codeOf(down.resolve(`${token.host}/app:v1`))).toBe('Unavailable');
    ts.failNext(0, 500);
  });

  it('fetchManifest refuses a descriptor whose size lies', async () => {
    const client = new RegistryClient();
    const repo = client.repository(`${anon.host}/app`);
    const lie: Descriptor = { ...img.manifest, size: img.manifest.size - 1 };
    expect(await codeOf(client.fetchManifest(repo, lie))).toBe('SizeMismatch');
    expect(await codeOf(client.fetchManifest(repo, { ...img.manifest, digest: digestOf('absent') }))).toBe('NotFound');
    const cfgLie: Descriptor = { ...img.config, size: img.config.size + 10 };
    expect(await codeOf(client.fetchConfig(repo, cfgLie))).toBe('SizeMismatch');
  });

  it('progress as an async iterator (what the Engine API server streams)', async () => {
    const ch = progressChannel();
    const client = new RegistryClient();
    const seen: ProgressEvent[] = [];
    const consumer = (async () => { for await (const e of ch.events) { seen.push(e); await new Promise((r) => setTimeout(r, 1)); } })();
    await client.pull(`${anon.host}/app:v1`, await newStore(), { onProgress: ch.onProgress }).then(() => ch.end(), (e: unknown) => ch.fail(e));
    await consumer;
    for (const l of img.layers) expect(seen.filter((e) => e.digest === l.digest).at(-1)!.phase).toBe('done');
    expect(seen.filter((e) => e.phase === 'done').length).toBe(img.blobs.size);
  });

  it('lists tags', async () => {
    expect(await new RegistryClient().listTags(`${anon.host}/app`)).toEqual(['v1']);
  });
});
