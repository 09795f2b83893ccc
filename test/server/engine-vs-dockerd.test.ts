/**
 * The docker command line (28.x) against Stowage's Engine API server and against a real dockerd 20.10
 * (Debian's docker.io, a private daemon), the same sequence on both, outputs compared. Stowage's side is
 * `stowage serve --docker-host unix://…` of the built binary. Where the two
 * legitimately differ the test says how and checks both sides exactly: dockerd 20.10 is the graphdriver
 * store (image ID = config digest, layers listed on delete, `Verifying Checksum`), Stowage follows the
 * containerd store of current docker (image ID = manifest/index digest), as the spec asks.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestImage, makeTestIndex, pushRaw, tarOf, type TestImage } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { openStowage, type Stowage } from '../../src/images/index.js';
import { serveDockerHost, type Served } from './serve.js';
import { dockerCli, stripAnsi, type DockerRun } from './docker-cli.js';
import { ensureBuilt, stowage } from '../cli/binary.js';

let reg: Registry;
let dockerd: Dockerd;
let store: Stowage;
let server: Served;
let tmp: string;
let R: string;
let app: TestImage;

const ours = (...args: string[]): Promise<DockerRun> => dockerCli(server.address, args, { config: path.join(tmp, 'cfg-ours') });
const theirs = (...args: string[]): Promise<DockerRun> => dockerCli(dockerd.host, args, { config: path.join(tmp, 'cfg-theirs') });
/** Both, in order (never at once: the two sides share the registry's logs and nothing else). */
async function both(...args: string[]): Promise<[DockerRun, DockerRun]> {
  return [await ours(...args), await theirs(...args)];
}
const lines = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');

/**
 * Pull output without what only one store prints or what depends on timing: GD's `Waiting` and
 * `Verifying Checksum`, and the byte-progress statuses (`Downloading`, `Extracting`) that appear only
 * when a layer takes long enough. Per-layer lines are sorted: layers download concurrently.
 */
function pullTranscript(r: DockerRun): { head: string; layers: string[]; tail: string[] } {
  const all = lines(r.stdout).filter((l) => !/: (Waiting|Verifying Checksum|Downloading|Extracting)$/.test(l));
  const layerLine = /^[0-9a-f]{12}: /;
  return { head: all[0] ?? '', layers: all.filter((l) => layerLine.test(l)).sort(), tail: all.filter((l, i) => i > 0 && !layerLine.test(l)) };
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eng-'));
  for (const d of ['cfg-ours', 'cfg-theirs']) fs.mkdirSync(path.join(tmp, d));
  const started = await Promise.all([startRegistry(), startDockerd(), ensureBuilt()]);
  reg = started[0];
  dockerd = started[1];
  R = reg.host;
  app = await makeTestImage({
    format: 'docker', labels: { tier: 'web' }, cmd: ['/bin/app', '-v'],
    layers: [{ files: { 'etc/app.conf': 'v=1\n' } }, { files: { 'bin/app': Buffer.alloc(200_000, 7) } }],
  });
  await pushRaw(reg.url, 'app', 'v1', app);
  // Two platforms sharing their bottom layer: the multi-platform size accounting case.
  const shared = { 'usr/share/doc': 'same on every platform\n'.repeat(1000) };
  const amd = await makeTestImage({ platform: { os: 'linux', architecture: 'amd64' }, layers: [{ files: shared }, { files: { 'bin/x': 'amd64\n' } }] });
  const arm = await makeTestImage({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, layers: [{ files: shared }, { files: { 'bin/x': 'arm64\n' } }] });
  await pushRaw(reg.url, 'multi', 'latest', await makeTestIndex([amd, arm]));
  // The real thing: `stowage serve --docker-host` from the built binary; the test reads the same store beside it.
  server = await serveDockerHost(path.join(tmp, 'store'), `unix://${path.join(tmp, 's.sock')}`);
  store = await openStowage({ root: path.join(tmp, 'store') });
}, 180_000);

afterAll(async () => {
  await store?.close();
  if (server) expect(await server.stop()).toBe(0);
  await dockerd?.stop();
  await reg?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe('docker CLI 28: stowage vs dockerd 20.10, same sequence', () => {
  it('version negotiation: both answer; stowage says what it is', async () => {
    const [o, t] = await both('version', '--format', '{{.Server.APIVersion}} {{.Client.APIVersion}}');
    expect(o.code).toBe(0);
    expect(t.code).toBe(0);
    expect(o.stdout.trim()).toBe('1.52 1.50');
    expect(t.stdout.trim()).toBe('1.41 1.41');
    // An older client (API 1.40, the oldest served): the same answers.
    const env = { DOCKER_API_VERSION: '1.40' };
    const old = await dockerCli(server.address, ['images', '--format', '{{.Repository}}'], { config: path.join(tmp, 'cfg-ours'), env });
    const oldT = await dockerCli(dockerd.host, ['images', '--format', '{{.Repository}}'], { config: path.join(tmp, 'cfg-theirs'), env });
    expect([old.code, old.stdout]).toEqual([oldT.code, oldT.stdout]);
    const tooOld = await dockerCli(server.address, ['images'], { config: path.join(tmp, 'cfg-ours'), env: { DOCKER_API_VERSION: '1.39' } });
    expect(tooOld.stderr).toContain('client version 1.39 is too old. Minimum supported API version is 1.40');
  });

  it('pull: the same stream (Pulling from, one line per layer state, Digest, Status, the canonical name)', async () => {
    const [o, t] = await both('pull', `${R}/app:v1`);
    expect([o.code, t.code]).toEqual([0, 0]);
    const a = pullTranscript(o);
    const b = pullTranscript(t);
    expect(a.head).toBe('v1: Pulling from app');
    expect(a).toEqual(b);
    expect(a.tail).toEqual([`Digest: ${app.manifest.digest}`, `Status: Downloaded newer image for ${R}/app:v1`, `${R}/app:v1`]);
    expect(a.layers).toEqual(expect.arrayContaining(app.layers.map((l) => `${l.digest.slice(7, 19)}: Pull complete`)));
  });

  it('the pull stream on the wire: the same JSON lines, field order and rendered progress bars', async () => {
    const big = await makeTestImage({ layers: [{ files: [{ path: 'big', content: randomBytes(3 * 1024 * 1024) }], compression: 'none' }] });
    await pushRaw(reg.url, 'big', 'v1', big);
    const pullRaw = (sock: string): Promise<string[]> => new Promise((resolve, reject) => {
      const req = http.request({ socketPath: sock, method: 'POST', path: `/v1.41/images/create?fromImage=${encodeURIComponent(`${R}/big`)}&tag=v1` }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => { body += d; });
        res.on('end', () => resolve(body.split('\r\n').filter((l) => l !== '')));
      });
      req.on('error', reject);
      req.end();
    });
    const o = await pullRaw(server.address.slice('unix://'.length));
    const t = await pullRaw(dockerd.socket);
    const id = big.layers[0]!.digest.slice(7, 19);
    for (const lines of [o, t]) {
      expect(lines[0]).toBe('{"status":"Pulling from big","id":"v1"}');
      expect(lines).toContain(`{"status":"Pulling fs layer","progressDetail":{},"id":"${id}"}`);
      expect(lines).toContain(`{"status":"Download complete","progressDetail":{},"id":"${id}"}`);
      expect(lines).toContain(`{"status":"Pull complete","progressDetail":{},"id":"${id}"}`);
      expect(lines.slice(-2)).toEqual([`{"status":"Digest: ${big.manifest.digest}"}`, `{"status":"Status: Downloaded newer image for ${R}/big:v1"}`]);
      const downloading = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((m) => m.status === 'Downloading');
      expect(downloading.length).toBeGreaterThan(0);
      for (const m of downloading) {
        expect(Object.keys(m)).toEqual(['status', 'progressDetail', 'progress', 'id']);
        expect(Object.keys(m.progressDetail as object)).toEqual(['current', 'total']);
        expect(m.progress).toMatch(/^\[=*>\s*\] +[0-9.]+[kM]?B\/3\.1\d\dMB$/);
      }
    }
    await both('rmi', `${R}/big:v1`);
  });

  it('pull again: Image is up to date, no layer lines, on both', async () => {
    const [o, t] = await both('pull', `${R}/app:v1`);
    expect(o.stdout).toBe(t.stdout);
    expect(lines(o.stdout)).toEqual(['v1: Pulling from app', `Digest: ${app.manifest.digest}`, `Status: Image is up to date for ${R}/app:v1`, `${R}/app:v1`]);
  });

  it('pull one platform of an index: same lines, the index digest', async () => {
    const [o, t] = await both('pull', '--platform', 'linux/arm64', `${R}/multi`);
    expect([o.code, t.code]).toEqual([0, 0]);
    expect(pullTranscript(o)).toEqual(pullTranscript(t));
    expect(lines(o.stdout)[0]).toBe('Using default tag: latest');
  });

  it('pull of a missing repository: exit 1 on both; the message of each store', async () => {
    const [o, t] = await both('pull', `${R}/nope:v1`);
    expect([o.code, t.code]).toEqual([1, 1]);
    // Current docker (containerd store) and the spec: "pull access denied"; 20.10's graphdriver store: "manifest unknown".
    expect(o.stderr.trim()).toBe(`Error response from daemon: pull access denied for ${R}/nope, repository does not exist or may require 'docker login'`);
    expect(t.stderr.trim()).toBe(`Error response from daemon: manifest for ${R}/nope:v1 not found: manifest unknown: manifest unknown`);
  });

  it('images: the same repositories and tags', async () => {
    const [o, t] = await both('images', '--format', '{{.Repository}}:{{.Tag}}');
    expect(lines(o.stdout).sort()).toEqual(lines(t.stdout).sort());
    expect(lines(o.stdout).sort()).toEqual([`${R}/app:v1`, `${R}/multi:latest`]);
  });

  it('image inspect: the same tags, digests, platform, config and layers', async () => {
    const fmt = '{{json .RepoTags}} {{json .RepoDigests}} {{.Os}}/{{.Architecture}} {{json .Config.Cmd}} {{json .Config.Env}} {{json .Config.Labels}} {{json .RootFS}} {{.Created}}';
    for (const ref of [`${R}/app:v1`, `${R}/multi`]) {
      const [o, t] = await both('image', 'inspect', '--format', fmt, ref);
      expect(o.code).toBe(0);
      expect(o.stdout.replace(/\.000Z/, 'Z')).toBe(t.stdout);
    }
  });

  it('history: the same rows; the image ID on the first row only (each store its own ID)', async () => {
    const [o, t] = await both('history', '--format', '{{.CreatedBy}}|{{.Comment}}|{{.CreatedSince}}', `${R}/app:v1`);
    expect(o.stdout).toBe(t.stdout);
    const [oi, ti] = await both('history', '-q', `${R}/app:v1`);
    expect(lines(oi.stdout).slice(1)).toEqual(lines(ti.stdout).slice(1));
    expect(lines(oi.stdout)[0]).toBe(app.manifest.digest.slice(7, 19));
    expect(lines(ti.stdout)[0]).toBe(app.config.digest.slice(7, 19));
  });

  it('tag, list by reference, rmi of one tag: the same output', async () => {
    const [o, t] = await both('tag', `${R}/app:v1`, 'foo:bar');
    expect([o, t].map((r) => [r.code, r.stdout, r.stderr])).toEqual([[0, '', ''], [0, '', '']]);
    const [lo, lt] = await both('images', '--format', '{{.Repository}}:{{.Tag}}', 'foo');
    expect(lo.stdout).toBe(lt.stdout);
    expect(lo.stdout).toBe('foo:bar\n');
    const [ro, rt] = await both('rmi', 'foo:bar');
    expect(ro.stdout).toBe(rt.stdout);
    expect(ro.stdout).toBe('Untagged: foo:bar\n');
  });

  it('save and load across the two stores: each loads the other\'s archive and prints the same', async () => {
    const oursTar = path.join(tmp, 'ours.tar');
    const theirsTar = path.join(tmp, 'theirs.tar');
    await both('tag', `${R}/app:v1`, 'xfer:v1');
    const [so, st] = [await ours('save', '-o', oursTar, 'xfer:v1'), await theirs('save', '-o', theirsTar, 'xfer:v1')];
    expect([so.code, st.code]).toEqual([0, 0]);
    await both('rmi', 'xfer:v1');
    const [lo, lt] = [await ours('load', '-i', theirsTar), await theirs('load', '-i', oursTar)];
    expect([lo.code, lt.code]).toEqual([0, 0]);
    expect(lo.stdout).toBe('Loaded image: xfer:v1\n');
    expect(lt.stdout).toBe(lo.stdout);
    const [io, it2] = await both('image', 'inspect', '--format', '{{json .RootFS.Layers}} {{json .Config.Cmd}} {{json .Config.Labels}}', 'xfer:v1');
    expect(io.stdout).toBe(it2.stdout);
    await both('rmi', 'xfer:v1');
    // Garbage: both answer 200 with the error in the stream, which the CLI prints.
    const garbage = Buffer.from('this is not a tar archive\n'.repeat(100));
    const go = await dockerCli(server.address, ['load'], { config: path.join(tmp, 'cfg-ours'), input: garbage });
    const gt = await dockerCli(dockerd.host, ['load'], { config: path.join(tmp, 'cfg-theirs'), input: garbage });
    expect([go.code, gt.code]).toEqual([1, 1]);
  });

  it('import: the same image config and history from the same tarball; a bad change refused on both', async () => {
    const rootfs = await tarOf({ 'etc/motd': 'imported\n', 'bin/x': '#!/bin/sh\n' });
    const args = ['import', '-c', 'ENV A=b', '-c', 'CMD ["/bin/x"]', '-c', 'EXPOSE 8080', '-m', 'from the test', '-', 'imp:v1'];
    const o = await dockerCli(server.address, args, { config: path.join(tmp, 'cfg-ours'), input: rootfs });
    const t = await dockerCli(dockerd.host, args, { config: path.join(tmp, 'cfg-theirs'), input: rootfs });
    expect([o.code, t.code]).toEqual([0, 0]);
    expect(o.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect(t.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const fmt = '{{json .Config.Env}} {{json .Config.Cmd}} {{json .Config.ExposedPorts}} {{.Os}}/{{.Architecture}} {{len .RootFS.Layers}} {{index .RootFS.Layers 0}}';
    const [io, it2] = await both('image', 'inspect', '--format', fmt, 'imp:v1');
    expect(io.stdout).toBe(it2.stdout);
    const [ho, ht] = await both('history', '--format', '{{.CreatedBy}}|{{.Comment}}', 'imp:v1');
    expect(ho.stdout).toBe(ht.stdout);
    expect(ho.stdout).toBe('|from the test\n');
    const bad = ['import', '-c', 'RUN rm -rf /', '-', 'bad:1'];
    const bo = await dockerCli(server.address, bad, { config: path.join(tmp, 'cfg-ours'), input: rootfs });
    const bt = await dockerCli(dockerd.host, bad, { config: path.join(tmp, 'cfg-theirs'), input: rootfs });
    expect([bo.code, bt.code]).toEqual([1, 1]);
    expect(bo.stderr.toLowerCase()).toBe(bt.stderr.toLowerCase());
  });

  it('commit of a container: the same author, comment, merged config; a missing container the same 404', async () => {
    const created = await stowage(['--root', path.join(tmp, 'store'), 'container', 'create', '--name', 'c1', 'imp:v1']);
    expect(created.code).toBe(0);
    expect((await theirs('create', '--name', 'c1', 'imp:v1')).code).toBe(0);
    const args = ['commit', '-a', 'me', '-m', 'hi', '-c', 'EXPOSE 80', '-c', 'LABEL k=v', 'c1', 'committed:v1'];
    const [o, t] = await both(...args);
    expect([o.code, t.code]).toEqual([0, 0]);
    expect(o.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const fmt = '{{.Author}}|{{.Comment}}|{{json .Config.ExposedPorts}}|{{json .Config.Env}}|{{json .Config.Cmd}}|{{json .Config.Labels}}|{{len .RootFS.Layers}}';
    const [io, it2] = await both('image', 'inspect', '--format', fmt, 'committed:v1');
    expect(io.stdout).toBe(it2.stdout);
    expect(io.stdout).toBe('me|hi|{"80/tcp":{},"8080/tcp":{}}|["A=b"]|["/bin/x"]|{"k":"v"}|1\n');
    const [mo, mt] = await both('commit', 'nosuch', 'x:1');
    expect([mo.code, mt.code]).toEqual([1, 1]);
    expect(mo.stderr).toBe(mt.stderr);
    expect(mo.stderr.trim()).toBe('Error response from daemon: No such container: nosuch');
    // Clean up what the later steps count.
    await stowage(['--root', path.join(tmp, 'store'), 'container', 'rm', 'c1']);
    await theirs('rm', 'c1');
    await both('rmi', 'committed:v1', 'imp:v1');
  });

  it('missing images: the same errors from rmi, tag and history', async () => {
    for (const args of [['rmi', 'nothere'], ['tag', 'nothere', 'x:1'], ['history', 'nothere']]) {
      const [o, t] = await both(...args);
      expect([o.code, o.stderr]).toEqual([t.code, t.stderr]);
      expect(o.stderr.trim()).toBe('Error response from daemon: No such image: nothere:latest');
    }
    // image inspect: the containerd store's message (20.10 prefixes "no such image: nothere: ").
    const [o, t] = await both('image', 'inspect', 'nothere');
    expect([o.code, t.code]).toEqual([1, 1]);
    expect(o.stderr.trim()).toBe('Error response from daemon: No such image: nothere:latest');
    expect(t.stderr.trim()).toBe('Error response from daemon: no such image: nothere: No such image: nothere:latest');
  });

  it('bad filters: the same 400 on both (current docker writes "invalid", 20.10 "Invalid")', async () => {
    for (const [filter, text] of [['foo=bar', "invalid filter 'foo'"], ['dangling=maybe', "invalid filter 'dangling=[maybe]'"]] as const) {
      const [o, t] = await both('images', '--filter', filter);
      expect([o.code, t.code]).toEqual([1, 1]);
      expect(o.stderr.trim()).toBe(`Error response from daemon: ${text}`);
      expect(t.stderr.trim().toLowerCase()).toBe(o.stderr.trim().toLowerCase());
    }
  });

  it('push: the same first and last lines; per-blob lines as each store has them', async () => {
    await both('tag', `${R}/app:v1`, `${R}/pushed:v1`);
    const [o, t] = await both('push', `${R}/pushed:v1`);
    expect([o.code, t.code]).toEqual([0, 0]);
    const lo = lines(o.stdout);
    const lt = lines(t.stdout);
    expect(lo[0]).toBe(lt[0]);
    expect(lo[0]).toBe(`The push refers to repository [${R}/pushed]`);
    // Stowage pushes the manifest it pulled (same digest); 20.10 rebuilds one from its own metadata.
    expect(lo[lo.length - 1]).toBe(`v1: digest: ${app.manifest.digest} size: ${app.manifest.size}`);
    expect(lt[lt.length - 1]).toMatch(/^v1: digest: sha256:[0-9a-f]{64} size: \d+$/);
    // Blobs of the same registry are mounted across repositories, not uploaded again.
    for (const l of app.layers) expect(lo).toContain(`${l.digest.slice(7, 19)}: Mounted from app`);
  });

  it('rmi of the last tag: Untagged then Deleted on both (20.10 also lists digest names and each layer)', async () => {
    await both('rmi', `${R}/pushed:v1`);
    const [o, t] = await both('rmi', `${R}/app:v1`);
    expect([o.code, t.code]).toEqual([0, 0]);
    expect(lines(o.stdout)).toEqual([`Untagged: ${R}/app:v1`, `Deleted: ${app.manifest.digest}`]);
    expect(lines(t.stdout)).toEqual(expect.arrayContaining([`Untagged: ${R}/app:v1`, `Untagged: ${R}/app@${app.manifest.digest}`, `Deleted: ${app.config.digest}`]));
  });

  it('image prune and system df: the same output and counts', async () => {
    const [o, t] = await both('image', 'prune', '-f');
    expect(o.stdout).toBe(t.stdout);
    expect(o.stdout).toBe('Total reclaimed space: 0B\n');
    const [d, e] = await both('system', 'df', '--format', '{{.Type}} {{.TotalCount}} {{.Active}}');
    expect(d.stdout).toBe(e.stdout);
    expect(lines(d.stdout)).toEqual(['Images 1 0', 'Containers 0 0', 'Local Volumes 0 0', 'Build Cache 0 0']);
  });

  it('events: pull, tag, push, untag and delete recorded on both, with the same pull and push actors', async () => {
    const now = String(Math.ceil(Date.now() / 1000) + 1);
    const [o, t] = await both('events', '--since', '0', '--until', now, '--filter', 'type=image', '--format', '{{.Action}} {{.Actor.ID}}');
    const pick = (r: DockerRun, action: string): string[] => lines(r.stdout).filter((l) => l.startsWith(`${action} `)).sort();
    for (const action of ['pull', 'push']) expect(pick(o, action)).toEqual(pick(t, action));
    for (const action of ['tag', 'untag', 'delete']) {
      expect(pick(o, action).length).toBeGreaterThan(0);
      expect(pick(t, action).length).toBeGreaterThan(0);
    }
  });

  it('search: stowage searches a distribution registry through its catalog; 20.10 cannot', async () => {
    const [o, t] = await both('search', `${R}/mul`);
    expect(o.code).toBe(0);
    expect(lines(o.stdout)).toEqual(['NAME                    DESCRIPTION   STARS     OFFICIAL', `${R}/multi                 0         `]);
    expect(t.code).toBe(1);
    expect(t.stderr.trim()).toBe('Error response from daemon: Unexpected status code 404');
  });

  it('login: both check with the registry and the CLI prints the same', async () => {
    const [o, t] = await both('login', '-u', 'someone', '-p', 'secret', R);
    expect([o.code, t.code]).toEqual([0, 0]);
    expect(o.stdout).toBe(t.stdout);
    expect(o.stdout).toContain('Login Succeeded');
  });

  it('containers: stowage answers in docker\'s error shape that it manages images only', async () => {
    const o = await ours('ps');
    expect(o.code).toBe(1);
    expect(o.stderr.trim()).toBe('Error response from daemon: this server (stowage) manages images only: GET /containers/json is not available');
    // `docker inspect NAME` looks for a container first: the 404 sends it on to the image.
    const [io, it2] = await both('inspect', '--format', '{{.RepoTags}}', `${R}/multi`);
    expect([io.code, io.stdout]).toEqual([0, `[${R}/multi:latest]\n`]);
    expect(it2.stdout).toBe(io.stdout);
    const i = await ours('info', '--format', '{{.Images}} {{.Driver}} {{.DockerRootDir}}');
    expect(i.stdout.trim()).toBe(`1 overlayfs ${path.join(tmp, 'store')}`);
  });
});

describe('raw HTTP faults: the same statuses as dockerd, and both keep serving', () => {
  /** Sends raw bytes on the socket and returns the status line of the answer. */
  function raw(socket: string, bytes: string | Buffer): Promise<string> {
    return new Promise((resolve, reject) => {
      const c = net.connect(socket);
      let got = '';
      c.on('data', (d) => { got += d.toString('latin1'); });
      c.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'ECONNRESET' || e.code === 'EPIPE') resolve(got.split('\r\n')[0] ?? ''); else reject(e); });
      c.on('close', () => resolve(got.split('\r\n')[0] ?? ''));
      c.end(bytes);
    });
  }
  const sockOf = (host: string): string => host.slice('unix://'.length);

  it('an oversized header (2 MiB): 431, like Go\'s net/http in dockerd', async () => {
    const req = `GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(2 * 1024 * 1024)}\r\n\r\n`;
    const o = await raw(sockOf(server.address), req);
    const t = await raw(sockOf(dockerd.host), req);
    expect(o).toBe(t);
    expect(o).toBe('HTTP/1.1 431 Request Header Fields Too Large');
  });

  it('a malformed request line: 400 on both', async () => {
    const o = await raw(sockOf(server.address), 'NOT A REQUEST\r\n\r\n');
    const t = await raw(sockOf(dockerd.host), 'NOT A REQUEST\r\n\r\n');
    expect(o).toBe('HTTP/1.1 400 Bad Request');
    expect(t).toBe(o);
  });

  it('a malformed JSON body (docker commit\'s config): 400 (20.10 answered 500; later dockerd 400); both keep serving', async () => {
    const body = '{"Env": ["A=b"'; // cut short
    const req = `POST /v1.41/commit?container=nosuch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    expect(await raw(sockOf(server.address), req)).toBe('HTTP/1.1 400 Bad Request');
    expect(await raw(sockOf(dockerd.host), req)).toBe('HTTP/1.1 500 Internal Server Error');
    const [o, t] = await both('version', '--format', '{{.Server.Version}}');
    expect([o.code, t.code]).toEqual([0, 0]);
  });

  it('bad filter JSON: 400 "invalid filter" (20.10 answered 500, fixed in later dockerd); both still answer', async () => {
    const req = `GET /v1.41/images/json?filters=%7Bnot-json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
    expect(await raw(sockOf(server.address), req)).toBe('HTTP/1.1 400 Bad Request');
    expect(await raw(sockOf(dockerd.host), req)).toBe('HTTP/1.1 500 Internal Server Error');
    const [o, t] = await both('images', '-q');
    expect([o.code, t.code]).toEqual([0, 0]);
  });
});

describe('multi-platform accounting: one way everywhere', () => {
  it('docker system df, docker images, stowage system df and stowage images agree; reclaimable never above 100%', async () => {
    await ours('pull', '-q', '--platform', 'linux/amd64', `${R}/multi`);
    await ours('pull', '-q', '--platform', 'linux/arm64', `${R}/multi`);
    const df = await ours('system', 'df', '--format', '{{.Type}}|{{.Size}}|{{.Reclaimable}}');
    const imagesRow = lines(df.stdout).find((l) => l.startsWith('Images|'))!;
    const [, size, reclaimable] = imagesRow.split('|');
    expect(reclaimable).toBe(`${size} (100%)`);
    const list = await ours('images', '--format', '{{.Size}}');
    // docker images prints 3 significant digits, system df 4: compare the exact bytes through the API instead.
    expect(lines(list.stdout)).toHaveLength(1);
    const api = await store.images({ sharedSize: true, manifests: true });
    const usage = await store.diskUsage();
    expect(api[0]!.Size).toBe(usage.TotalSize);
    expect(usage.Reclaimable).toBe(usage.TotalSize);
    // The two platforms share a layer: each platform's own total counts it, the image counts it once.
    const perPlatform = api[0]!.Manifests!.filter((m) => m.Kind === 'image').reduce((n, m) => n + m.Size.Total, 0);
    expect(perPlatform).toBeGreaterThan(api[0]!.Size);
    const cli = await stowage(['--root', path.join(tmp, 'store'), 'system', 'df', '--format', '{{.Type}}|{{.Size}}|{{.Reclaimable}}']);
    expect(lines(cli.stdout)[0]).toBe(imagesRow);
  });

  it('stowage images --tree prints what docker image ls --tree prints through the server', async () => {
    const d = await ours('image', 'ls', '--tree');
    expect(d.code).toBe(0);
    const docker = stripAnsi(d.stdout).split('\n').slice(1).join('\n'); // docker's first line: its experimental warning
    const s = await stowage(['--root', path.join(tmp, 'store'), 'images', '--tree']);
    expect(s.code).toBe(0);
    expect(s.stdout).toBe(docker);
    expect(s.stdout).toContain('├─ linux/amd64');
    expect(s.stdout).toContain('└─ linux/arm64/v8');
  });
});
