import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType, digestOf } from '../../src/oci/index.js';
import { RegistryClient, dockerConfigCredentials, login, logout, DOCKER_HUB_CONFIG_KEY, type Transport } from '../../src/distribution/index.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeTestImage, pushWithSkopeo, writeOciLayout, type TestImage } from '../harness/images.js';
import { codeOf } from '../harness/expect.js';
import { manifest, response } from './fake-transport.js';

/** A docker-credential-<name> program: answers `get` from a JSON file, records `store`/`erase`. */
function writeHelper(binDir: string, name: string, db: string): void {
  const script = `#!/bin/sh
db='${db}'
action="$1"
input=$(cat)
case "$action" in
  get)
    entry=$(jq -c --arg k "$input" '.[$k] // empty' "$db")
    if [ -z "$entry" ]; then echo "credentials not found in native keychain"; exit 1; fi
    echo "$entry" | jq -c --arg k "$input" '{ServerURL: $k, Username: .Username, Secret: .Secret}' ;;
  store)
    tmp=$(mktemp); jq --argjson e "$input" '.[$e.ServerURL] = {Username: $e.Username, Secret: $e.Secret}' "$db" > "$tmp" && mv "$tmp" "$db" ;;
  erase)
    tmp=$(mktemp); jq --arg k "$input" 'del(.[$k])' "$db" > "$tmp" && mv "$tmp" "$db" ;;
esac
`;
  const file = path.join(binDir, `docker-credential-${name}`);
  fs.writeFileSync(file, script, { mode: 0o755 });
}

describe('credentials from docker config, helpers, login/logout', () => {
  let tmp: string;
  let basic: Registry;
  let token: Registry;
  let img: TestImage;
  let binDir: string;
  const savedPath = process.env.PATH;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    [basic, token] = await Promise.all([startRegistry({ auth: 'basic' }), startRegistry({ auth: 'token' })]);
    img = await makeTestImage({ layers: [{ files: { 'x': 'y' } }] });
    const dir = writeOciLayout(path.join(tmp, 'layout'), img, 'v1');
    await pushWithSkopeo(dir, `docker://${basic.host}/app:v1`, { tag: 'v1', creds: basic });
    await pushWithSkopeo(dir, `docker://${token.host}/app:v1`, { tag: 'v1', creds: token });
    binDir = path.join(tmp, 'bin');
    fs.mkdirSync(binDir);
    process.env.PATH = `${binDir}:${savedPath}`;
  });
  afterAll(async () => {
    process.env.PATH = savedPath;
    await Promise.all([basic?.stop(), token?.stop()]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const configDir = (name: string, cfg: unknown): string => {
    const d = path.join(tmp, name);
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(cfg));
    return d;
  };
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  it('auths with base64 auth (key with or without scheme)', async () => {
    const d = configDir('auths', { auths: { [`http://${basic.host}`]: { auth: b64(`${basic.username}:${basic.password}`) } } });
    const client = new RegistryClient({ credentials: dockerConfigCredentials(d) });
    expect((await client.resolve(`${basic.host}/app:v1`)).descriptor.digest).toBe(img.manifest.digest);
    const wrong = configDir('auths-wrong', { auths: { [basic.host]: { auth: b64(`${basic.username}:nope`) } } });
    expect(await codeOf(new RegistryClient({ credentials: dockerConfigCredentials(wrong) }).resolve(`${basic.host}/app:v1`))).toBe('Unauthorized');
  });

  it('$DOCKER_CONFIG is the default location', async () => {
    const d = configDir('env', { auths: { [basic.host]: { auth: b64(`${basic.username}:${basic.password}`) } } });
    const saved = process.env.DOCKER_CONFIG;
    process.env.DOCKER_CONFIG = d;
    try {
      expect((await new RegistryClient().resolve(`${basic.host}/app:v1`)).descriptor.digest).toBe(img.manifest.digest);
    } finally {
      if (saved === undefined) delete process.env.DOCKER_CONFIG; else process.env.DOCKER_CONFIG = saved;
    }
  });

  it('credHelpers and credsStore run docker-credential-<x> get', async () => {
    const db = path.join(tmp, 'helper-db.json');
    fs.writeFileSync(db, JSON.stringify({ [token.host]: { Username: token.username, Secret: token.password } }));
    writeHelper(binDir, 'testhelper', db);
    const d = configDir('helpers', { credHelpers: { [token.host]: 'testhelper' } });
    const client = new RegistryClient({ credentials: dockerConfigCredentials(d) });
    expect((await client.resolve(`${token.host}/app:v1`)).descriptor.digest).toBe(img.manifest.digest);
    const s = configDir('store', { credsStore: 'testhelper' });
    expect((await new RegistryClient({ credentials: dockerConfigCredentials(s) }).resolve(`${token.host}/app:v1`)).descriptor.digest).toBe(img.manifest.digest);
    // A helper that knows nothing: anonymous, refused.
    fs.writeFileSync(db, '{}');
    expect(await codeOf(new RegistryClient({ credentials: dockerConfigCredentials(d) }).resolve(`${token.host}/app:v1`))).toBe('Unauthorized');
  });

  it('identitytoken in auths is used as a refresh token', async () => {
    const ts = token.tokenServer!;
    const res = await fetch(ts.realm, { method: 'POST', body: new URLSearchParams({ grant_type: 'password', username: token.username, password: token.password, service: ts.service, access_type: 'offline', client_id: 't' }) });
    const { refresh_token } = await res.json() as { refresh_token: string };
    const d = configDir('idtoken', { auths: { [token.host]: { identitytoken: refresh_token } } });
    expect((await new RegistryClient({ credentials: dockerConfigCredentials(d) }).resolve(`${token.host}/app:v1`)).descriptor.digest).toBe(img.manifest.digest);
  });

  it('login checks the credentials, then writes docker\'s format; logout removes them', async () => {
    const d = path.join(tmp, 'login');
    expect(await codeOf(login(basic.host, basic.username, 'wrong', { configDir: d }))).toBe('Unauthorized');
    expect(fs.existsSync(path.join(d, 'config.json'))).toBe(false);
    await login(basic.host, basic.username, basic.password, { configDir: d });
    await login(token.host, token.username, token.password, { configDir: d });
    const file = path.join(d, 'config.json');
    const cfg = JSON.parse(fs.readFileSync(file, 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(cfg.auths[basic.host]!.auth, 'base64').toString()).toBe(`${basic.username}:${basic.password}`);
    expect(cfg.auths[token.host]).toBeDefined();
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).toContain('\n\t"auths"');
    // What login wrote, the client reads.
    expect((await new RegistryClient({ credentials: dockerConfigCredentials(d) }).resolve(`${token.host}/app:v1`)).descriptor.digest).toBe(img.manifest.digest);
    await logout(basic.host, { configDir: d });
    const after = JSON.parse(fs.readFileSync(file, 'utf8')) as { auths: Record<string, unknown> };
    expect(after.auths[basic.host]).toBeUndefined();
    expect(after.auths[token.host]).toBeDefined();
    expect(await codeOf(logout(basic.host, { configDir: d }))).toBe('NotFound');
    expect(await codeOf(login(token.host, token.username, 'wrong', { configDir: d }))).toBe('Unauthorized');
  });

  it('login through a credsStore stores the secret in the helper, not the file', async () => {
    const db = path.join(tmp, 'store-db.json');
    fs.writeFileSync(db, '{}');
    writeHelper(binDir, 'storehelper', db);
    const d = configDir('login-store', { credsStore: 'storehelper', someOtherKey: { kept: true } });
    await login(basic.host, basic.username, basic.password, { configDir: d });
    const cfg = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg.auths).toEqual({ [basic.host]: {} });
    expect(cfg.someOtherKey).toEqual({ kept: true });
    expect(JSON.parse(fs.readFileSync(db, 'utf8'))).toEqual({ [basic.host]: { Username: basic.username, Secret: basic.password } });
    await logout(basic.host, { configDir: d });
    expect(JSON.parse(fs.readFileSync(db, 'utf8'))).toEqual({});
  });

  it('Docker Hub credentials live under the legacy index key', async () => {
    const d = configDir('hub', { auths: { [DOCKER_HUB_CONFIG_KEY]: { auth: b64('hubuser:hubpass') } } });
    const c = await dockerConfigCredentials(d)('registry-1.docker.io');
    expect(c).toEqual({ username: 'hubuser', password: 'hubpass' });
  });
});

describe('credential lookups', () => {
  it('a failed lookup (a credential helper that failed once) is not remembered for the client\'s life', async () => {
    let lookups = 0;
    const credentials = async (): Promise<{ username: string; password: string }> => {
      lookups++;
      if (lookups === 1) throw new Error('docker-credential-x: keychain locked');
      return { username: 'u', password: 'p' };
    };
    const transport: Transport = async (req) => {
      if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}`) return response(req, 401, { 'www-authenticate': 'Basic realm="r"' });
      return response(req, 200, { 'content-type': MediaType.OciManifest, 'docker-content-digest': digestOf(manifest), 'content-length': String(manifest.length) });
    };
    const client = new RegistryClient({ transport, credentials });
    await expect(client.resolve('reg.test/app:v1')).rejects.toThrow(/keychain locked/);
    expect((await client.resolve('reg.test/app:v1')).descriptor.digest).toBe(digestOf(manifest));
  });
});

describe('credential helpers', () => {
  it('a helper that exits without reading its input is an error, not an uncaught EPIPE that kills the process', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'docker-credential-quits'), '#!/bin/sh\nexit 3\n', { mode: 0o755 });
    fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify({ credsStore: 'quits' }));
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown): void => { uncaught.push(e); };
    process.on('uncaughtException', onUncaught);
    const savedPath = process.env.PATH;
    process.env.PATH = `${bin}:${savedPath}`;
    try {
      const source = dockerConfigCredentials(tmp);
      for (let i = 0; i < 30; i++) expect(await codeOf(source('reg.example.com'))).toBe('Unknown');
      await new Promise((r) => setTimeout(r, 50));
      expect(uncaught).toEqual([]);
    } finally {
      process.env.PATH = savedPath;
      process.off('uncaughtException', onUncaught);
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
