/**
 * The Engine API server through dockerode (a docker client library) and raw HTTP, for what the docker CLI
 * does not reach: version gates, the JSON message stream on the wire, in-stream errors, concurrent
 * requests, a client that disconnects mid-pull, X-Registry-Auth (both forms, and the config.json fallback),
 * search filters and limits, /distribution, /events, the socket's permissions and stale sockets.
 */
import { spawn } from 'node:child_process';
import { ensureBuilt } from '../cli/binary.js';
import { serveDockerHost } from './serve.js';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestImage, makeTestIndex, pushRaw, tarOf, type TestImage } from '../harness/images.js';
import { startFaultProxy, type FaultProxy } from '../harness/proxy.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { openStowage, type Stowage } from '../../src/images/index.js';
import { openMetadata } from '../../src/metadata/index.js';
import { startEngineServer, type EngineServer } from '../../src/server/index.js';

let tmp: string;
let reg: Registry;
let authReg: Registry;
let tokenReg: Registry;
let proxy: FaultProxy;
let root: string;
let store: Stowage;
let server: EngineServer;
let socket: string;
let docker: Docker;
let app: TestImage;
let big: TestImage;
let slow: TestImage;
let R: string;

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: string }

function api(method: string, p: string, opts: { headers?: Record<string, string>; body?: string | Buffer; sock?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: opts.sock ?? socket, method, path: p, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}
const json = (a: Answer): unknown => JSON.parse(a.body);
const messages = (a: Answer): Array<Record<string, unknown>> => a.body.split('\r\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
const authHeader = (o: Record<string, string>): string => Buffer.from(JSON.stringify(o)).toString('base64url');

/** Waits for a condition the server reaches on its own (a released lease); fails after `ms`. */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'engapi-'));
  reg = await startRegistry();
  // Protected views of the same content: Basic auth, and token auth with no anonymous access.
  [authReg, tokenReg] = await Promise.all([startRegistry({ auth: 'basic', storageDir: reg.storageDir }), startRegistry({ auth: 'token', storageDir: reg.storageDir })]);
  proxy = await startFaultProxy(reg.url);
  R = reg.host;
  app = await makeTestImage({ labels: { tier: 'web' }, layers: [{ files: { 'etc/a': 'a\n' } }, { files: { 'etc/b': 'b\n' } }] });
  big = await makeTestImage({ layers: [{ files: [{ path: 'blob', content: randomBytes(3 * 1024 * 1024) }], compression: 'none' }] });
  const amd = await makeTestImage({ platform: { os: 'linux', architecture: 'amd64' }, layers: [{ files: { x: 'amd\n' } }] });
  const arm = await makeTestImage({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, layers: [{ files: { x: 'arm\n' } }] });
  await pushRaw(reg.url, 'app', 'v1', app);
  await pushRaw(reg.url, 'big', 'v1', big);
  slow = await makeTestImage({ layers: [{ files: [{ path: 'slow', content: randomBytes(3 * 1024 * 1024) }], compression: 'none' }] });
  await pushRaw(reg.url, 'slow', 'v1', slow);
  await pushRaw(reg.url, 'multi', 'latest', await makeTestIndex([amd, arm]));
  await pushRaw(reg.url, 'secret', 'v1', app);
  root = path.join(tmp, 'store');
  store = await openStowage({ root });
  socket = path.join(tmp, 'engine.sock');
  server = await startEngineServer(store, { host: `unix://${socket}`, version: '0.1.0-test' });
  docker = new Docker({ socketPath: socket });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await store?.close();
  await proxy?.stop();
  await Promise.all([reg?.stop(), authReg?.stop(), tokenReg?.stop()]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe('routing and versions', () => {
  it('_ping: GET says OK, HEAD is empty, both carry docker\'s headers; versioned too', async () => {
    const g = await api('GET', '/_ping');
    expect([g.status, g.body]).toEqual([200, 'OK']);
    expect(g.headers['api-version']).toBe('1.52');
    expect(g.headers['ostype']).toBe('linux');
    expect(g.headers['cache-control']).toBe('no-cache, no-store, must-revalidate');
    const h = await api('HEAD', '/v1.40/_ping');
    expect([h.status, h.body, h.headers['content-length']]).toEqual([200, '', '0']);
    expect(await docker.ping()).toEqual(Buffer.from('OK'));
  });

  it('too old, too new, unknown routes and container routes each answer in docker\'s error shape', async () => {
    const old = await api('GET', '/v1.39/images/json');
    expect([old.status, json(old)]).toEqual([400, { message: 'client version 1.39 is too old. Minimum supported API version is 1.40, please upgrade your client to a newer version' }]);
    const nu = await api('GET', '/v9.99/images/json');
    expect([nu.status, json(nu)]).toEqual([400, { message: 'client version 9.99 is too new. Maximum supported API version is 1.52' }]);
    const nf = await api('GET', '/v1.51/nothing/here');
    expect([nf.status, json(nf)]).toEqual([404, { message: 'page not found' }]);
    await expect(docker.listContainers()).rejects.toMatchObject({ statusCode: 404, json: { message: 'this server (stowage) manages images only: GET /containers/json is not available' } });
    await expect(docker.createContainer({ Image: 'x' })).rejects.toMatchObject({ statusCode: 501, json: { message: 'this server (stowage) manages images only: POST /containers/create is not available' } });
    const blank = await api('DELETE', '/v1.51/images/%20');
    expect([blank.status, json(blank)]).toEqual([400, { message: 'image name cannot be blank' }]);
  });

  it('bad input is a 400 with docker\'s message, and the server keeps serving', async () => {
    const badFilter = await api('GET', `/v1.51/images/json?filters=${encodeURIComponent('{"dangling":')}`);
    expect([badFilter.status, json(badFilter)]).toEqual([400, { message: 'invalid filter' }]);
    const badBody = await api('POST', '/v1.51/commit?container=nosuch', { headers: { 'Content-Type': 'application/json' }, body: '{"Env": ["A=b"' });
    expect(badBody.status).toBe(400);
    expect((json(badBody) as { message: string }).message).toMatch(/^invalid JSON: /);
    const notJson = await api('POST', '/v1.51/commit?container=nosuch', { headers: { 'Content-Type': 'text/plain' }, body: 'Env=A' });
    expect([notJson.status, json(notJson)]).toEqual([400, { message: "unsupported Content-Type header (text/plain): must be 'application/json'" }]);
    const badRef = await api('POST', `/v1.51/images/create?fromImage=${encodeURIComponent('someone/UPPER')}&tag=x`);
    expect(badRef.status).toBe(400);
    expect((await api('GET', '/_ping')).body).toBe('OK');
  });

  it('fields gated by API version: list and inspect', async () => {
    await store.pull(`${R}/app:v1`);
    const at = async (v: string): Promise<Record<string, unknown>> => (json(await api('GET', `/v${v}/images/json`)) as Array<Record<string, unknown>>)[0]!;
    expect(await at('1.51')).toMatchObject({ Containers: 0 });
    expect(await at('1.50')).toMatchObject({ Containers: -1 });
    expect(await at('1.51')).toHaveProperty('Descriptor');
    expect(await at('1.47')).not.toHaveProperty('Descriptor');
    expect(await at('1.43')).toHaveProperty('VirtualSize');
    expect(await at('1.44')).not.toHaveProperty('VirtualSize');
    const manifests = json(await api('GET', '/v1.47/images/json?manifests=1')) as Array<{ Manifests?: unknown[] }>;
    expect(manifests[0]!.Manifests).toHaveLength(1);
    expect((json(await api('GET', '/v1.46/images/json?manifests=1')) as Array<{ Manifests?: unknown[] }>)[0]!.Manifests).toBeUndefined();
    const inspect = async (v: string): Promise<Record<string, unknown>> => json(await api('GET', `/v${v}/images/${R}/app:v1/json`)) as Record<string, unknown>;
    const i41 = await inspect('1.41');
    expect(i41).toMatchObject({ Container: '', VirtualSize: expect.any(Number), GraphDriver: { Name: 'overlayfs', Data: null }, Parent: '', Comment: '' });
    expect(Object.keys(i41.Config as object)).toEqual(expect.arrayContaining(['Hostname', 'AttachStdin', 'Tty', 'Image']));
    const i51 = await inspect('1.51');
    expect(i51).toMatchObject({ Parent: '', GraphDriver: { Name: 'overlayfs', Data: null } });
    const i52 = await inspect('1.52');
    expect(i52).not.toHaveProperty('Parent');
    expect(i52).not.toHaveProperty('GraphDriver');
    expect(i52).not.toHaveProperty('Comment');
    expect(i51).not.toHaveProperty('Container');
    expect(i51).toHaveProperty('Descriptor');
    expect(Object.keys(i51.Config as object)).not.toContain('Hostname');
    // manifests + platform together: 400.
    const both = await api('GET', `/v1.51/images/${R}/app:v1/json?manifests=1&platform=${encodeURIComponent('{"os":"linux","architecture":"amd64"}')}`);
    expect([both.status, json(both)]).toEqual([400, { message: 'conflicting options: manifests and platform options cannot both be set' }]);
    const halfPlatform = await api('GET', `/v1.51/images/${R}/app:v1/history?platform=${encodeURIComponent('{"os":"linux"}')}`);
    expect(halfPlatform.status).toBe(400);
  });

  it('a conflict is a 409 with docker\'s message: removing an image a working container uses', async () => {
    await store.pull(`${R}/app:v1`);
    const c = await store.createLayer(undefined, `${R}/app:v1`, { name: 'user-of-app' });
    try {
      const a = await api('DELETE', `/v1.51/images/${R}/app:v1`);
      expect(a.status).toBe(409);
      expect(json(a)).toEqual({ message: `conflict: unable to delete ${R}/app:v1 (must be forced) - container ${c.id.slice(0, 12)} is using its referenced image ${app.manifest.digest.slice(7, 19)}` });
    } finally { await store.releaseLayer(c.id); }
  });

  it('dangling images: <none> names before 1.43, empty lists after', async () => {
    const id = (await store.inspect(`${R}/app:v1`)).Id;
    await store.tag(`${R}/app:v1`, 'keep:1');
    await store.delete(`${R}/app:v1`);
    await store.delete('keep:1', { force: true });
    expect((await store.images({ all: true })).length).toBe(0);
    // (The image is gone; pull it again under no name to get a dangling one.)
    await store.pull(`${R}/app:v1`);
    await store.pull(`${R}/multi:latest`);
    await store.tag(`${R}/multi:latest`, `${R}/app:v1`); // app's old target becomes dangling
    const list42 = json(await api('GET', '/v1.42/images/json?all=1')) as Array<{ Id: string; RepoTags: string[]; RepoDigests: string[] }>;
    expect(list42.find((i) => i.Id === id)).toMatchObject({ RepoTags: ['<none>:<none>'], RepoDigests: ['<none>@<none>'] });
    const list43 = json(await api('GET', '/v1.43/images/json?all=1')) as Array<{ Id: string; RepoTags: string[]; RepoDigests: string[] }>;
    expect(list43.find((i) => i.Id === id)).toMatchObject({ RepoTags: [], RepoDigests: [] });
    await store.delete(`${R}/app:v1`);
    await store.prune();
  });
});

describe('the JSON message stream', () => {
  it('pull: one JSON object per \\r\\n line in docker\'s field order, byte progress with its rendered bar', async () => {
    const a = await api('POST', `/v1.51/images/create?fromImage=${encodeURIComponent(`${R}/big`)}&tag=v1`);
    expect(a.status).toBe(200);
    expect(a.headers['content-type']).toBe('application/json');
    expect(a.body.endsWith('\r\n')).toBe(true);
    const lines = a.body.split('\r\n').filter((l) => l);
    expect(lines[0]).toBe('{"status":"Pulling from big","id":"v1"}');
    const layer = big.layers[0]!.digest.slice(7, 19);
    expect(lines).toContain(`{"status":"Pulling fs layer","progressDetail":{},"id":"${layer}"}`);
    expect(lines).toContain(`{"status":"Pull complete","progressDetail":{},"id":"${layer}"}`);
    const downloading = messages(a).filter((m) => m.status === 'Downloading');
    expect(downloading.length).toBeGreaterThan(0);
    for (const m of downloading) {
      expect(Object.keys(m)).toEqual(['status', 'progressDetail', 'progress', 'id']);
      expect(m.progress).toMatch(/^\[=*>\s*\] +\d+(\.\d+)?[kM]?B\/3\.\d+MB$/);
    }
    expect(lines.slice(-2)).toEqual([`{"status":"Digest: ${big.manifest.digest}"}`, `{"status":"Status: Downloaded newer image for ${R}/big:v1"}`]);
  });

  it('errors before the stream are HTTP errors; after it started, an errorDetail line with status 200', async () => {
    const missing = await api('POST', `/v1.51/images/create?fromImage=${encodeURIComponent(`${R}/missing`)}&tag=x`);
    expect([missing.status, json(missing)]).toEqual([404, { message: `pull access denied for ${R}/missing, repository does not exist or may require 'docker login'` }]);
    const scratch = await api('POST', '/v1.51/images/create?fromImage=scratch&tag=latest');
    expect([scratch.status, json(scratch)]).toEqual([403, { message: "'scratch' is a reserved name" }]);
    const badPlatform = await api('POST', `/v1.51/images/create?fromImage=${encodeURIComponent(`${R}/app`)}&tag=v1&platform=linux%2Fa%2Fb%2Fc`);
    expect(badPlatform.status).toBe(400);
    // A layer whose bytes are corrupted on the way: the stream has started, so the error comes in it.
    proxy.addFault({ method: 'GET', path: app.layers[1]!.digest, fault: { kind: 'flip', at: 10 }, times: 10 });
    try {
      const a = await api('POST', `/v1.51/images/create?fromImage=${encodeURIComponent(`${proxy.host}/app`)}&tag=v1`);
      expect(a.status).toBe(200);
      const ms = messages(a);
      expect(ms[0]).toEqual({ status: 'Pulling from app', id: 'v1' });
      const last = ms[ms.length - 1]!;
      expect(Object.keys(last)).toEqual(['errorDetail', 'error']);
      expect((last.errorDetail as { message: string }).message).toBe(last.error);
    } finally { proxy.clearFaults(); }
  });

  it('push through dockerode: The push refers to…, per-blob lines, the digest line and the aux record', async () => {
    await store.tag(`${R}/big:v1`, `${R}/copy:v9`);
    const stream = await docker.getImage(`${R}/copy:v9`).push({ tag: 'v9' });
    const ms: Array<Record<string, unknown>> = await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null, out: Array<Record<string, unknown>>) => (err ? reject(err) : resolve(out))));
    expect(ms[0]).toEqual({ status: `The push refers to repository [${R}/copy]` });
    expect(ms).toContainEqual({ status: `v9: digest: ${big.manifest.digest} size: ${big.manifest.size}` });
    expect(ms).toContainEqual({ aux: { Tag: 'v9', Digest: big.manifest.digest, Size: big.manifest.size } });
    const missingTag = await api('POST', `/v1.51/images/${R}/copy/push?tag=nope`);
    expect(messages(missingTag).at(-1)).toMatchObject({ error: `tag does not exist: ${R}/copy:nope` });
  });
});

describe('images in and out without a registry', () => {
  /** The tar's members (name → bytes) from an in-memory archive. */
  async function members(body: Buffer): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    const ex = tar.extract();
    const done = new Promise<void>((resolve, reject) => { ex.on('finish', resolve); ex.on('error', reject); });
    ex.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => { chunks.push(c as Buffer); });
      stream.on('end', () => { out.set(h.name, Buffer.concat(chunks)); next(); });
    });
    ex.end(body);
    await done;
    return out;
  }
  function getBytes(p: string): Promise<{ status: number; type: string | undefined; body: Buffer }> {
    return new Promise((resolve, reject) => {
      http.get({ socketPath: socket, path: p }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: Buffer.concat(chunks) }));
      }).on('error', reject);
    });
  }

  it('GET /images/get: several names in one archive; one platform of an index; a missing name is a JSON 404', async () => {
    await store.pull(`${R}/multi:latest`, { all: true });
    await store.pull(`${R}/app:v1`);
    const both = await getBytes(`/v1.51/images/get?names=${encodeURIComponent(`${R}/app:v1`)}&names=${encodeURIComponent(`${R}/multi:latest`)}`);
    expect([both.status, both.type]).toEqual([200, 'application/x-tar']);
    const m = await members(both.body);
    const index = JSON.parse(m.get('index.json')!.toString()) as { manifests: Array<{ annotations?: Record<string, string> }> };
    expect(index.manifests.map((d) => d.annotations?.['io.containerd.image.name']).sort()).toEqual([`${R}/app:v1`, `${R}/multi:latest`]);
    const arm = await getBytes(`/v1.51/images/${R}/multi:latest/get?platform=${encodeURIComponent('{"os":"linux","architecture":"arm64","variant":"v8"}')}`);
    const am = await members(arm.body);
    const manifestJson = JSON.parse(am.get('manifest.json')!.toString()) as Array<{ Config: string }>;
    expect(manifestJson).toHaveLength(1);
    expect(JSON.parse(am.get(manifestJson[0]!.Config)!.toString())).toMatchObject({ architecture: 'arm64' });
    const two = await getBytes(`/v1.51/images/get?names=a&platform=${encodeURIComponent('{"os":"linux","architecture":"arm64"}')}&platform=${encodeURIComponent('{"os":"linux","architecture":"amd64"}')}`);
    expect([two.status, JSON.parse(two.body.toString())]).toEqual([400, { message: 'multiple platform parameters need API 1.52 or newer' }]);
    const twoAt52 = await getBytes(`/v1.52/images/${R}/multi:latest/get?platform=${encodeURIComponent('{"os":"linux","architecture":"arm64","variant":"v8"}')}&platform=${encodeURIComponent('{"os":"linux","architecture":"amd64"}')}`);
    expect(twoAt52.status).toBe(200);
    // Several platforms: the image's index, restricted to them, with both manifests in the archive.
    const tm = await members(twoAt52.body);
    const entry = (JSON.parse(tm.get('index.json')!.toString()) as { manifests: Array<{ digest: string }> }).manifests[0]!;
    const restricted = JSON.parse(tm.get(`blobs/sha256/${entry.digest.slice(7)}`)!.toString()) as { manifests: Array<{ digest: string }> };
    expect(restricted.manifests).toHaveLength(2);
    for (const d of restricted.manifests) expect(tm.has(`blobs/sha256/${d.digest.slice(7)}`)).toBe(true);
    const missing = await getBytes('/v1.51/images/get?names=nothere');
    expect([missing.status, JSON.parse(missing.body.toString())]).toEqual([404, { message: 'No such image: nothere:latest' }]);
  });

  it('DELETE with platforms (API 1.50): needs force; then only that platform\'s manifest goes, the image stays', async () => {
    const arm = encodeURIComponent('{"os":"linux","architecture":"arm64","variant":"v8"}');
    const noForce = await api('DELETE', `/v1.51/images/${R}/multi:latest?platforms=${arm}`);
    expect(noForce.status).toBe(400);
    const armManifest = (await store.inspect(`${R}/multi:latest`, { manifests: true })).Manifests!.find((m) => m.ImageData?.Platform.architecture === 'arm64')!;
    const forced = await api('DELETE', `/v1.51/images/${R}/multi:latest?force=1&platforms=${arm}`);
    expect([forced.status, json(forced)]).toEqual([200, [{ Deleted: armManifest.ID }]]);
    const after = (await store.inspect(`${R}/multi:latest`, { manifests: true })).Manifests!;
    expect(after.find((m) => m.ID === armManifest.ID)?.Available).toBe(false);
    expect(after.some((m) => m.ImageData?.Platform.architecture === 'amd64' && m.Available)).toBe(true);
  });

  it('POST /images/load: Loaded image lines in the stream; quiet=0 and quiet=1 both load; garbage is an in-stream error with 200', async () => {
    const archive = (await getBytes(`/v1.51/images/${R}/app:v1/get`)).body;
    await store.tag(`${R}/app:v1`, 'loaded:one');
    const archiveNamed = (await getBytes('/v1.51/images/loaded:one/get')).body;
    await store.delete('loaded:one');
    for (const quiet of ['0', '1']) {
      const a = await api('POST', `/v1.51/images/load?quiet=${quiet}`, { headers: { 'Content-Type': 'application/x-tar' }, body: archiveNamed });
      expect(a.status).toBe(200);
      expect(messages(a)).toContainEqual({ stream: 'Loaded image: loaded:one\n' });
    }
    expect(archive.length).toBeGreaterThan(0);
    const garbage = await api('POST', '/v1.51/images/load', { body: Buffer.alloc(4096, 1) });
    expect(garbage.status).toBe(200);
    expect(Object.keys(messages(garbage).at(-1)!)).toEqual(['errorDetail', 'error']);
  });

  it('POST /images/create?fromSrc=URL: the server fetches the tarball (http:// added when bare); file URLs are refused', async () => {
    const rootfs = await tarOf({ 'etc/from-url': 'yes\n' });
    const files = http.createServer((req, res) => { res.writeHead(200, { 'Content-Length': rootfs.length }); res.end(rootfs); });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', () => r()));
    const where = `127.0.0.1:${(files.address() as { port: number }).port}/rootfs.tar`;
    try {
      const a = await api('POST', `/v1.51/images/create?fromSrc=${encodeURIComponent(where)}&repo=fromurl&tag=v1&message=${encodeURIComponent('by url')}&changes=${encodeURIComponent('CMD ["/bin/true"]')}`);
      expect(a.status).toBe(200);
      const ms = messages(a);
      expect(ms[0]).toEqual({ status: `Downloading from http://${where}` });
      const id = ms.at(-1)!.status as string;
      expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
      const inspect = await store.inspect('fromurl:v1');
      expect([inspect.Id, inspect.Config.Cmd]).toEqual([id, ['/bin/true']]);
      expect((await store.history('fromurl:v1'))[0]!.Comment).toBe('by url');
    } finally { await new Promise((r) => files.close(r)); }
    const file = await api('POST', `/v1.51/images/create?fromSrc=${encodeURIComponent('file:///etc/passwd')}`);
    expect(file.status).toBe(400);
  });
});

describe('concurrency and cancellation', () => {
  it('a pull stalled mid-layer does not hold up other requests; its client going away cancels it, releases the lease, and the next pull resumes', async () => {
    const layer = slow.layers[0]!;
    proxy.addFault({ method: 'GET', path: layer.digest, fault: { kind: 'stall', afterBytes: 2 * 1024 * 1024 + 1000 } });
    const ref = `${proxy.host}/slow`;
    let sawBytes!: () => void;
    const downloading = new Promise<void>((r) => { sawBytes = r; });
    let received = '';
    const req = http.request({ socketPath: socket, method: 'POST', path: `/v1.51/images/create?fromImage=${encodeURIComponent(ref)}&tag=v1` }, (res) => {
      res.on('data', (c: Buffer) => {
        received += c.toString();
        if (/"status":"Downloading","progressDetail":\{"current":\d+/.test(received)) sawBytes();
      });
      res.on('error', () => undefined);
    });
    req.on('error', () => undefined);
    req.end();
    await Promise.race([downloading, until('a Downloading message', () => false, 30_000)]).catch((e) => { throw new Error(`${(e as Error).message}: ${JSON.stringify(received)} ${JSON.stringify(proxy.requests.slice(-5))}`); });
    // While that pull waits for bytes, everything else is answered, several at once.
    const results = await Promise.all([
      docker.listImages(), docker.getImage(`${R}/big:v1`).inspect(), docker.getImage(`${R}/big:v1`).history(),
      docker.ping(), docker.version(), docker.info(), docker.df(),
    ]);
    expect(results).toHaveLength(7);
    const md = openMetadata(root);
    try {
      expect(md.leases.list().some((l) => l.labels['io.stowage.purpose'] === `pull ${ref}:v1`)).toBe(true);
      req.destroy();
      await until('the pull lease is released', () => !md.leases.list().some((l) => l.labels['io.stowage.purpose']?.startsWith(`pull ${ref}`)));
    } finally { md.close(); }
    proxy.clearFaults();
    const before = proxy.requests.length;
    const again = await api('POST', `/v1.51/images/create?fromImage=${encodeURIComponent(ref)}&tag=v1`);
    expect(messages(again).at(-1)).toEqual({ status: `Status: Downloaded newer image for ${ref}:v1` });
    const resumed = proxy.requests.slice(before).find((r) => r.path.includes(layer.digest) && r.method === 'GET');
    expect(resumed?.range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(resumed!.bytesSent).toBeLessThan(layer.size);
  });

  it('ten concurrent inspects, lists and a tag storm through dockerode all succeed', async () => {
    const ops: Array<Promise<unknown>> = [];
    for (let i = 0; i < 10; i++) {
      ops.push(docker.getImage(`${R}/big:v1`).inspect(), docker.listImages({ filters: JSON.stringify({ reference: [`${R}/big`] }) }));
      ops.push(docker.getImage(`${R}/big:v1`).tag({ repo: 'storm', tag: `t${i}` }));
    }
    await Promise.all(ops);
    const tags = (await docker.getImage(`${R}/big:v1`).inspect()).RepoTags;
    for (let i = 0; i < 10; i++) expect(tags).toContain(`storm:t${i}`);
  });
});

describe('X-Registry-Auth', () => {
  it('Basic credentials in the header pull from a protected registry; without them, a 404; an undecodable header is ignored', async () => {
    const ref = `${authReg.host}/secret`;
    const header = authHeader({ username: authReg.username, password: authReg.password, serveraddress: authReg.host });
    const ok = await api('POST', `/v1.51/images/create?fromImage=${encodeURIComponent(ref)}&tag=v1`, { headers: { 'X-Registry-Auth': header } });
    expect(messages(ok).at(-1)).toEqual({ status: `Status: Downloaded newer image for ${ref}:v1` });
    await store.delete(`${ref}:v1`);
    const denied = await api('POST', `/v1.51/images/create?fromImage=${encodeURIComponent(ref)}&tag=v1`, { headers: { 'X-Registry-Auth': '!!not base64 json!!' } });
    expect(denied.status).toBe(404);
    expect((json(denied) as { message: string }).message).toContain('pull access denied');
    // dockerode's own authconfig travels the same header.
    const stream = await docker.pull(`${ref}:v1`, { authconfig: { username: authReg.username, password: authReg.password, serveraddress: authReg.host } });
    await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve(undefined))));
    expect((await store.inspect(`${ref}:v1`)).RepoTags).toContain(`${ref}:v1`);
  });

  it('push: the header\'s credentials reach the protected registry; without them the refusal comes in the stream', async () => {
    const target = `${authReg.host}/pushed-with-auth`;
    await store.tag(`${R}/app:v1`, `${target}:v1`);
    const denied = await api('POST', `/v1.51/images/${target}/push?tag=v1`);
    expect(denied.status).toBe(200);
    expect(messages(denied)[0]).toEqual({ status: `The push refers to repository [${target}]` });
    expect(messages(denied).at(-1)).toHaveProperty('error');
    const header = authHeader({ username: authReg.username, password: authReg.password, serveraddress: authReg.host });
    const ok = await api('POST', `/v1.51/images/${target}/push?tag=v1`, { headers: { 'X-Registry-Auth': header } });
    expect(messages(ok)).toContainEqual({ status: `v1: digest: ${app.manifest.digest} size: ${app.manifest.size}` });
    expect(messages(ok).some((m) => 'error' in m)).toBe(false);
  });

  it('POST /auth (docker login): good credentials succeed, bad ones are a 401; nothing is stored', async () => {
    expect(await docker.checkAuth({ username: authReg.username, password: authReg.password, serveraddress: authReg.host })).toEqual({ Status: 'Login Succeeded', IdentityToken: '' });
    await expect(docker.checkAuth({ username: authReg.username, password: 'wrong', serveraddress: authReg.host })).rejects.toMatchObject({ statusCode: 401 });
    await expect(docker.checkAuth({ username: tokenReg.username, password: tokenReg.password, serveraddress: `http://${tokenReg.host}/v2/` })).resolves.toMatchObject({ Status: 'Login Succeeded' });
  });

  it('the identity-token form goes to the token server as a refresh_token grant', async () => {
    const ts = tokenReg.tokenServer!;
    ts.refreshTokens.set('rt-for-test', tokenReg.username);
    const ref = `${tokenReg.host}/secret`;
    const a = await api('POST', `/v1.51/images/create?fromImage=${encodeURIComponent(ref)}&tag=v1`, { headers: { 'X-Registry-Auth': authHeader({ identitytoken: 'rt-for-test', serveraddress: tokenReg.host }) } });
    expect(messages(a).at(-1)).toEqual({ status: `Status: Downloaded newer image for ${ref}:v1` });
    expect(ts.requests.some((r) => r.grantType === 'refresh_token' && r.account === tokenReg.username)).toBe(true);
  });

  it('no header: the store\'s docker config.json is used (dockerd never does this)', async () => {
    // `stowage serve` runs with a DOCKER_CONFIG that holds the login.
    await ensureBuilt();
    const cfg = path.join(tmp, 'docker-config');
    fs.mkdirSync(cfg, { recursive: true });
    fs.writeFileSync(path.join(cfg, 'config.json'), JSON.stringify({ auths: { [authReg.host]: { auth: Buffer.from(`${authReg.username}:${authReg.password}`).toString('base64') } } }));
    const sock = path.join(tmp, 'child.sock');
    const served = await serveDockerHost(path.join(tmp, 'child-store'), `unix://${sock}`, { env: { DOCKER_CONFIG: cfg } });
    try {
      const ref = `${authReg.host}/secret`;
      const a = await api('POST', `/v1.51/images/create?fromImage=${encodeURIComponent(ref)}&tag=v1`, { sock });
      expect(messages(a).at(-1)).toEqual({ status: `Status: Downloaded newer image for ${ref}:v1` });
    } finally {
      expect(await served.stop()).toBe(0);
    }
    expect(fs.existsSync(sock)).toBe(false);
  });
});

describe('search and distribution', () => {
  it('searches the catalog of a distribution registry; docker\'s filters and limits', async () => {
    const all = await docker.searchImages({ term: `${R}/` });
    expect(all.map((r: { name: string }) => r.name).sort()).toEqual([`${R}/app`, `${R}/big`, `${R}/copy`, `${R}/multi`, `${R}/pushed-with-auth`, `${R}/secret`, `${R}/slow`]);
    expect(all[0]).toEqual({ description: '', is_official: false, is_automated: false, name: expect.any(String), star_count: 0 });
    expect(await docker.searchImages({ term: `${R}/mul` })).toEqual([{ description: '', is_official: false, is_automated: false, name: `${R}/multi`, star_count: 0 }]);
    expect(await docker.searchImages({ term: `${R}/`, limit: 2 })).toHaveLength(2);
    expect(await docker.searchImages({ term: `${R}/`, filters: { 'is-official': ['true'] } })).toEqual([]);
    expect(await docker.searchImages({ term: `${R}/`, filters: { 'is-automated': ['true'] } })).toEqual([]);
    expect(await docker.searchImages({ term: `${R}/`, filters: { stars: ['1'] } })).toEqual([]);
    const cases: Array<[string, string]> = [
      ['limit=abc', 'invalid limit specified'], ['limit=-1', 'invalid limit specified'], ['limit=101', 'limit 101 is outside the range of [1, 100]'],
      [`filters=${encodeURIComponent('{"stars":["x"]}')}`, "invalid filter 'stars=x'"], [`filters=${encodeURIComponent('{"color":["red"]}')}`, "invalid filter 'color'"],
    ];
    for (const [q, message] of cases) {
      const a = await api('GET', `/v1.51/images/search?term=${encodeURIComponent(`${R}/a`)}&${q}`);
      expect([a.status, json(a)]).toEqual([400, { message }]);
    }
  });

  it('/distribution/{name}/json: the descriptor and every platform of an index, or the config\'s platform', async () => {
    const multi = await docker.getImage(`${R}/multi`).distribution();
    expect(multi.Platforms).toEqual([{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }]);
    expect(multi.Descriptor).toMatchObject({ mediaType: 'application/vnd.oci.image.index.v1+json' });
    const one = json(await api('GET', `/v1.51/distribution/${R}/app:v1/json`));
    expect(one).toEqual({ Descriptor: { mediaType: app.manifest.mediaType, digest: app.manifest.digest, size: app.manifest.size }, Platforms: [{ architecture: 'amd64', os: 'linux' }] });
    const full = await api('GET', `/v1.51/distribution/${'a'.repeat(64)}/json`);
    expect([full.status, json(full)]).toEqual([400, { message: 'no manifest found for full image ID' }]);
  });
});

describe('events, disk usage, prune', () => {
  it('/events streams what happens, with the legacy status/id fields before API 1.52', async () => {
    const got: string[] = [];
    let seen!: () => void;
    const tagged = new Promise<void>((r) => { seen = r; });
    const req = http.request({ socketPath: socket, path: `/v1.51/events?filters=${encodeURIComponent('{"type":["image"],"event":["tag"]}')}` }, (res) => {
      expect(res.statusCode).toBe(200);
      res.on('data', (c: Buffer) => { got.push(...c.toString().split('\n').filter((l) => l)); if (got.length) seen(); });
      res.on('error', () => undefined);
    });
    req.on('error', () => undefined);
    req.end();
    // The stream is live once its headers are sent; then the tag happens.
    await new Promise<void>((r) => req.once('response', () => r()));
    await docker.getImage(`${R}/big:v1`).tag({ repo: 'evt', tag: 'one' });
    await tagged;
    req.destroy();
    const e = JSON.parse(got[0]!) as Record<string, unknown>;
    expect(e).toMatchObject({ status: 'tag', id: big.manifest.digest, Type: 'image', Action: 'tag', Actor: { ID: big.manifest.digest, Attributes: { name: 'evt:one' } }, scope: 'local' });
    const bad = await api('GET', `/v1.51/events?filters=${encodeURIComponent('{"nonsense":["x"]}')}`);
    expect([bad.status, json(bad)]).toEqual([400, { message: "invalid filter 'nonsense'" }]);
  });

  it('/events with since and until: the log replayed, then the answer ends; API 1.52 drops the legacy fields; Accept picks the stream type', async () => {
    const until = Math.ceil(Date.now() / 1000) + 1;
    const q = `since=0&until=${until}&filters=${encodeURIComponent('{"event":["tag"],"image":["evt:one"]}')}`;
    const v52 = await api('GET', `/v1.52/events?${q}`);
    expect(Object.keys(JSON.parse(v52.body.split('\n')[0]!) as object)).toEqual(['Type', 'Action', 'Actor', 'scope', 'time', 'timeNano']);
    expect(v52.headers['content-type']).toBe('application/json');
    const seq = await api('GET', `/v1.52/events?${q}`, { headers: { Accept: 'application/json-seq' } });
    expect(seq.headers['content-type']).toBe('application/json-seq');
    expect(seq.body.startsWith('\x1e{')).toBe(true);
    const lines = await api('GET', `/v1.52/events?${q}`, { headers: { Accept: 'application/json;q=0.5, application/jsonl' } });
    expect(lines.headers['content-type']).toBe('application/jsonl');
    const a = await api('GET', `/v1.51/events?since=0&until=${until}&filters=${encodeURIComponent('{"event":["tag"],"image":["evt:one"]}')}`);
    expect(a.status).toBe(200);
    const events = a.body.split('\n').filter((l) => l).map((l) => JSON.parse(l) as { Action: string; Actor: { Attributes: Record<string, string> } });
    expect(events.map((e) => [e.Action, e.Actor.Attributes.name])).toEqual([['tag', 'evt:one']]);
    const badTime = await api('GET', '/v1.51/events?since=yesterday-ish');
    expect(badTime.status).toBe(400);
  });

  it('/system/df: the legacy shape below 1.52 with every list present; an unknown type is a 400', async () => {
    const df = json(await api('GET', '/v1.51/system/df')) as Record<string, unknown>;
    expect(Object.keys(df)).toEqual(['LayersSize', 'Images', 'Containers', 'Volumes', 'BuildCache']);
    const usage = await store.diskUsage();
    expect(df.LayersSize).toBe(usage.TotalSize);
    expect((df.Images as unknown[]).length).toBe(usage.TotalCount);
    const df52 = json(await api('GET', '/v1.52/system/df')) as Record<string, unknown>;
    expect(df52.ImageUsage).toEqual({ ActiveCount: usage.ActiveCount, TotalCount: usage.TotalCount, Reclaimable: usage.Reclaimable, TotalSize: usage.TotalSize });
    expect(df52.LayersSize).toBe(usage.TotalSize);
    const verbose52 = json(await api('GET', '/v1.52/system/df?verbose=1&type=image')) as { ImageUsage: { Items: unknown[] }; LayersSize?: number };
    expect(verbose52.ImageUsage.Items).toHaveLength(usage.TotalCount);
    expect(verbose52).not.toHaveProperty('LayersSize');
    const bad = await api('GET', '/v1.51/system/df?type=spaceships');
    expect([bad.status, json(bad)]).toEqual([400, { message: 'unknown object type: spaceships' }]);
  });

  it('prunes at once through dockerode: each one reports, or is refused with docker\'s 409', async () => {
    const reports = await Promise.allSettled([docker.pruneImages(), docker.pruneImages(), docker.pruneImages()]);
    expect(reports.some((r) => r.status === 'fulfilled')).toBe(true);
    for (const r of reports) {
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ statusCode: 409, json: { message: 'a prune operation is already running' } });
      else expect(r.value).toHaveProperty('SpaceReclaimed');
    }
  });
});

describe('listening', () => {
  it('the socket is 0600; with a group it is 0660 and belongs to that group', async () => {
    expect(fs.statSync(socket).mode & 0o777).toBe(0o600);
    const sock = path.join(tmp, 'group.sock');
    const s = await startEngineServer(store, { host: `unix://${sock}`, group: 'daemon' });
    try {
      const st = fs.statSync(sock);
      expect(st.mode & 0o777).toBe(0o660);
      expect(st.gid).toBe(1);
      expect((await api('GET', '/_ping', { sock })).body).toBe('OK');
    } finally { await s.close(); }
    expect(fs.existsSync(sock)).toBe(false);
  });

  it('a stale socket from a killed server is replaced; a live one and a plain file are refused', async () => {
    const sock = path.join(tmp, 'stale.sock');
    // A server killed with SIGKILL leaves its socket file behind.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((r) => child.stdout!.once('data', () => r()));
    await expect(startEngineServer(store, { host: `unix://${sock}` })).rejects.toMatchObject({ code: 'AlreadyExists', message: `another server is listening on ${sock}` });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(fs.existsSync(sock)).toBe(true);
    const s = await startEngineServer(store, { host: `unix://${sock}` });
    try { expect((await api('GET', '/_ping', { sock })).body).toBe('OK'); } finally { await s.close(); }
    const file = path.join(tmp, 'plain-file');
    fs.writeFileSync(file, 'keep me');
    await expect(startEngineServer(store, { host: `unix://${file}` })).rejects.toMatchObject({ code: 'AlreadyExists' });
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me');
  });

  it('tcp: loopback with a chosen port; anything else is refused', async () => {
    const s = await startEngineServer(store, { host: 'tcp://127.0.0.1:0' });
    try {
      expect(s.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
      const port = Number(s.address.split(':').pop());
      const d = new Docker({ host: '127.0.0.1', port, protocol: 'http' });
      expect((await d.listImages()).length).toBeGreaterThan(0);
    } finally { await s.close(); }
    await expect(startEngineServer(store, { host: 'tcp://0.0.0.0:2375' })).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(startEngineServer(store, { host: 'ssh://example' })).rejects.toMatchObject({ code: 'InvalidArgument' });
  });

  it('closing the server lets a pull in flight finish', async () => {
    const sock = path.join(tmp, 'graceful.sock');
    const s = await startEngineServer(store, { host: `unix://${sock}` });
    const grace = await makeTestImage({ layers: [{ files: { 'g': randomBytes(100_000) } }] });
    await pushRaw(reg.url, 'grace', 'v1', grace);
    const answer = new Promise<string>((resolve, reject) => {
      const req = http.request({ socketPath: sock, method: 'POST', path: `/v1.51/images/create?fromImage=${encodeURIComponent(`${R}/grace`)}&tag=v1` }, (res) => {
        let body = '';
        let asked = false;
        res.on('data', (c: Buffer) => { body += c.toString(); if (!asked) { asked = true; void s.close(); } });
        res.on('end', () => resolve(body));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    const body = await answer;
    expect(body.trimEnd().split('\r\n').at(-1)).toBe(`{"status":"Status: Downloaded newer image for ${R}/grace:v1"}`);
    await s.close();
    expect(fs.existsSync(sock)).toBe(false);
  });

  it('a client leaving in the middle of a save stops it: nothing stays in flight, the server still closes', async () => {
    const sock = path.join(tmp, 'save-leave.sock');
    const s = await startEngineServer(store, { host: `unix://${sock}` });
    const status = await new Promise<number>((resolve) => {
      const req = http.get({ socketPath: sock, path: `/v1.51/images/${proxy.host}/slow:v1/get` }, (res) => {
        res.once('data', () => { req.destroy(); resolve(res.statusCode ?? 0); });
      });
      req.on('error', () => undefined);
    });
    expect(status).toBe(200);
    // A save left waiting for a drain that never comes would keep close() from resolving.
    await s.close();
    expect(fs.existsSync(sock)).toBe(false);
  });

  it('closing the server ends open event streams and removes its socket', async () => {
    const sock = path.join(tmp, 'closing.sock');
    const s = await startEngineServer(store, { host: `unix://${sock}` });
    const ended = new Promise<void>((resolve) => {
      const req = http.request({ socketPath: sock, path: '/events' }, (res) => { res.on('close', () => resolve()); res.resume(); });
      req.on('error', () => resolve());
      req.end();
      req.once('response', () => { void s.close(); });
    });
    await ended;
    expect(fs.existsSync(sock)).toBe(false);
  });
});
