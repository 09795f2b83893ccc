/**
 * The server's options: htpasswd Basic auth (with skopeo and stowage as clients), TLS with a given
 * certificate and key, read-only mode, request logs.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage } from '../../src/images/index.js';
import { makeTestImage, pushWithSkopeo, skopeo, writeOciLayout, type TestImage } from '../harness/images.js';
import { startStowageRegistry, type StowageRegistry } from '../harness/stowage-registry.js';
import { runCli } from '../cli/in-process.js';

let tmp: string;
let image: TestImage;
let layout: string;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-options-'));
  image = await makeTestImage({ layers: [{ files: { 'etc/opt': 'options\n' } }] });
  layout = writeOciLayout(path.join(tmp, 'layout'), image, 'v1');
});
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

describe('htpasswd Basic auth', () => {
  let reg: StowageRegistry;
  beforeAll(async () => {
    const file = path.join(tmp, 'htpasswd');
    execFileSync('htpasswd', ['-Bbc', file, 'alice', 'wonderland-pass'], { stdio: 'ignore' });
    reg = await startStowageRegistry({ htpasswd: file });
  });
  afterAll(async () => { await reg?.stop(); });

  it('refuses anonymous and wrong credentials with 401 and a Basic challenge', async () => {
    const anon = await fetch(`${reg.url}/v2/`);
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toBe('Basic realm="stowage"');
    expect(((await anon.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('UNAUTHORIZED');
    const wrong = await fetch(`${reg.url}/v2/`, { headers: { authorization: `Basic ${Buffer.from('alice:nope').toString('base64')}` } });
    expect(wrong.status).toBe(401);
  });

  it('skopeo pushes and stowage pulls with the credentials; the log names the user', async () => {
    await pushWithSkopeo(layout, `docker://${reg.host}/secure/app:1`, { tag: 'v1', creds: { username: 'alice', password: 'wonderland-pass' } });
    const client = await openStowage({ root: path.join(tmp, 'auth-client') });
    try {
      await expect(client.pull(`${reg.host}/secure/app:1`)).rejects.toMatchObject({ code: 'NotFound' });
      const r = await client.pull(`${reg.host}/secure/app:1`, { credentials: { username: 'alice', password: 'wonderland-pass' } });
      expect(r.id).toBe(image.manifest.digest);
    } finally { await client.close(); }
    expect(reg.log.some((l) => / - alice \[.*"PUT \/v2\/secure\/app\/manifests\/1 HTTP\/1.1" 201 /.test(l))).toBe(true);
  });
});

describe('TLS', () => {
  it('serves HTTPS with the given certificate and key', async () => {
    const key = path.join(tmp, 'tls.key');
    const cert = path.join(tmp, 'tls.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=stowage-test', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const pem = fs.readFileSync(cert, 'utf8');
    const reg = await startStowageRegistry({ tls: { cert: pem, key: fs.readFileSync(key, 'utf8') } });
    try {
      expect(reg.url).toMatch(/^https:\/\//);
      const status = await new Promise<number>((resolve, reject) => {
        https.get(`${reg.url}/v2/`, { ca: pem }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject);
      });
      expect(status).toBe(200);
      const certDir = path.join(tmp, 'certs');
      fs.mkdirSync(certDir, { recursive: true });
      fs.copyFileSync(cert, path.join(certDir, 'ca.crt'));
      await skopeo(['copy', '--quiet', '--dest-cert-dir', certDir, '--preserve-digests', `oci:${layout}:v1`, `docker://${reg.host}/tls/app:1`]);
      expect((await reg.store.resolveImage(`${reg.host}/tls/app:1`)).target.digest).toBe(image.manifest.digest);
    } finally {
      await reg.stop();
    }
  });
});

describe('read-only', () => {
  it('serves pulls and refuses pushes and deletes with 405 UNSUPPORTED', async () => {
    const writable = await startStowageRegistry();
    await pushWithSkopeo(layout, `docker://${writable.host}/ro/app:1`, { tag: 'v1' });
    const root = writable.root;
    await writable.server.close();
    await writable.store.close();
    const reg = await startStowageRegistry({ root, readOnly: true });
    try {
      const pulled = await fetch(`${reg.url}/v2/${writable.host.replace(':', '-')}/ro/app/manifests/1`);
      expect(pulled.status).toBe(200);
      for (const [method, p] of [['POST', '/v2/ro/app/blobs/uploads/'], ['PUT', '/v2/ro/app/manifests/2'], ['DELETE', '/v2/ro/app/manifests/1']] as const) {
        const r = await fetch(`${reg.url}${p}`, { method, ...(method === 'PUT' ? { body: image.manifestBytes } : {}) });
        expect(r.status).toBe(405);
        expect(((await r.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('UNSUPPORTED');
      }
      expect((await reg.store.resolveImage(`${writable.host}/ro/app:1`)).target.digest).toBe(image.manifest.digest);
    } finally {
      await reg.stop();
      fs.rmSync(path.dirname(root), { recursive: true, force: true });
    }
  });
});

describe('the serve command', () => {
  it('needs something to serve, and TLS needs both files', async () => {
    const root = path.join(tmp, 'cli-usage');
    const none = await runCli(['--root', root, 'serve']);
    expect(none.code).toBe(125);
    expect(none.err).toContain('say what to serve: --registry');
    const half = await runCli(['--root', root, 'serve', '--registry', '127.0.0.1:0', '--tls-cert', path.join(tmp, 'x.crt')]);
    expect(half.code).toBe(125);
    expect(half.err).toContain('--tls-cert and --tls-key go together');
    const bad = await runCli(['--root', root, 'serve', '--registry', 'not-an-address']);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('invalid listen address');
  });
});
