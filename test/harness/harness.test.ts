import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from './registry.js';
import { startFaultProxy, type FaultProxy } from './proxy.js';
import { makeTestImage, pushWithSkopeo, skopeo, writeOciLayout } from './images.js';

// The harness others build on: prove each mode really does what it says.
describe('test harness', () => {
  let tmp: string;
  let anon: Registry;
  let basic: Registry;
  let token: Registry;
  let proxy: FaultProxy;
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    [anon, basic, token] = await Promise.all([startRegistry(), startRegistry({ auth: 'basic' }), startRegistry({ auth: 'token' })]);
    proxy = await startFaultProxy(anon.url);
  });
  afterAll(async () => {
    await Promise.all([anon?.stop(), basic?.stop(), token?.stop(), proxy?.stop()]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('anonymous registry answers /v2/ with 200', async () => {
    expect((await fetch(`${anon.url}/v2/`)).status).toBe(200);
  });
  it('basic registry challenges and accepts its credentials only', async () => {
    const r = await fetch(`${basic.url}/v2/`);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Basic /);
    const ok = await fetch(`${basic.url}/v2/`, { headers: { authorization: `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}` } });
    expect(ok.status).toBe(200);
    const bad = await fetch(`${basic.url}/v2/`, { headers: { authorization: `Basic ${Buffer.from(`${basic.username}:nope`).toString('base64')}` } });
    expect(bad.status).toBe(401);
  });
  it('token registry trusts tokens from the token server, and only for granted scopes', async () => {
    const ts = token.tokenServer!;
    const basicAuth = `Basic ${Buffer.from(`${token.username}:${token.password}`).toString('base64')}`;
    const get = async (scope: string, auth?: string) => (await (await fetch(`${ts.realm}?service=${ts.service}&scope=${scope}`, { headers: auth ? { authorization: auth } : {} })).json()) as { token: string };
    const t = await get('repository:x:pull', basicAuth);
    expect((await fetch(`${token.url}/v2/x/tags/list`, { headers: { authorization: `Bearer ${t.token}` } })).status).toBe(404); // authorised, unknown repo
    const anonTok = await get('repository:x:pull');
    expect((await fetch(`${token.url}/v2/x/tags/list`, { headers: { authorization: `Bearer ${anonTok.token}` } })).status).toBe(401);
    expect((await fetch(`${ts.realm}?service=${ts.service}&scope=repository:x:pull`, { headers: { authorization: `Basic ${Buffer.from('stowage:wrong').toString('base64')}` } })).status).toBe(401);
  });
  it('skopeo pushes a made image through Basic auth; the proxy passes, counts and faults requests', async () => {
    const img = await makeTestImage({ layers: [{ files: { 'a.txt': 'a'.repeat(5000) }, compression: 'none' }] });
    const dir = writeOciLayout(path.join(tmp, 'layout'), img, 'v1');
    await pushWithSkopeo(dir, `docker://${basic.host}/h/app:v1`, { tag: 'v1', creds: basic });
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', `${basic.username}:${basic.password}`, `docker://${basic.host}/h/app:v1`]);
    expect(raw).toBe(img.manifestBytes.toString());
    await pushWithSkopeo(dir, `docker://${proxy.host}/h/app:v1`, { tag: 'v1' });
    const layer = img.layers[0]!;
    const blobUrl = `${proxy.url}/v2/h/app/blobs/${layer.digest}`;
    expect(Buffer.from(await (await fetch(blobUrl)).arrayBuffer()).equals(img.blobs.get(layer.digest)!)).toBe(true);
    proxy.addFault({ path: layer.digest, fault: { kind: 'flip', at: 10 } });
    const flipped = Buffer.from(await (await fetch(blobUrl)).arrayBuffer());
    expect(flipped.length).toBe(layer.size);
    expect(flipped.equals(img.blobs.get(layer.digest)!)).toBe(false);
    proxy.addFault({ path: layer.digest, times: 2, fault: { kind: 'status', status: 503 } });
    expect((await fetch(blobUrl)).status).toBe(503);
    expect((await fetch(blobUrl)).status).toBe(503);
    expect((await fetch(blobUrl)).status).toBe(200);
    proxy.addFault({ path: layer.digest, fault: { kind: 'drop', afterBytes: 1000 } });
    await expect(fetch(blobUrl).then((r) => r.arrayBuffer())).rejects.toThrow();
    expect(proxy.requests.at(-1)!.bytesSent).toBe(1000);
    proxy.addFault({ path: layer.digest, fault: { kind: 'redirect' } });
    const redir = await fetch(blobUrl, { redirect: 'manual' });
    expect(redir.status).toBe(307);
    expect(new URL(redir.headers.get('location')!).host).toBe(proxy.storage.host);
  });
});
