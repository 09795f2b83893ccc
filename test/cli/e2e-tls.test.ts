// NODE_EXTRA_CA_CERTS through the `stowage` binary as users start it (its #!/bin/sh line): the launcher
// keeps the file from Node's start, the transport trusts it at the first TLS connection, and child
// processes still see the variable (defaultCaCertificates in src/distribution/transport.ts). Against
// the real docker-registry serving HTTPS with a certificate of its own, on a non-loopback address of
// this machine (loopback registries are not verified, as with docker).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { openContentStore } from '../../src/content/index.js';
import { RegistryClient, nodeTransport } from '../../src/distribution/index.js';
import { makeTestImage, pushRaw } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { skipUnless } from '../harness/skip.js';
import { BIN, REPO, ensureBuilt, type RunResult } from './binary.js';

const external = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
const it = skipUnless(!!external, 'this machine has no non-loopback IPv4 address');

let tlsReg: Registry;
let tmp: string;
let caFile: string;
let helperOut: string;
let ref: string;

/** Runs the binary itself (not `node bin/stowage.js`): the shell line is what is under test. */
function sh(args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const base = { ...process.env };
    delete base.NODE_EXTRA_CA_CERTS;
    const child = spawn(BIN, args, { cwd: REPO, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** A fresh store and docker config whose credential helper records the NODE_EXTRA_CA_CERTS it was run with. */
function pull(name: string, extraCa: string | undefined): Promise<RunResult> {
  const dir = path.join(tmp, name);
  fs.mkdirSync(path.join(dir, 'docker'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'docker', 'config.json'), JSON.stringify({ credsStore: 'recorder' }));
  return sh(['--root', path.join(dir, 'root'), 'pull', ref], {
    DOCKER_CONFIG: path.join(dir, 'docker'),
    PATH: `${path.join(tmp, 'bin')}:${process.env.PATH ?? ''}`,
    ...(extraCa !== undefined ? { NODE_EXTRA_CA_CERTS: extraCa } : {}),
  });
}

beforeAll(async () => {
  if (!external) return;
  await ensureBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-cli-tls-'));
  const plain = await startRegistry({ listenHost: external });
  try {
    tlsReg = await startRegistry({ tls: true, listenHost: external, auth: 'basic' });
    caFile = path.join(tmp, 'ca.pem');
    fs.writeFileSync(caFile, tlsReg.caPem!);
    // The TLS registry is seeded by the library client, which is given the CA explicitly.
    const img = await makeTestImage({ layers: [{ files: { 'tls.txt': 'over https\n' } }] });
    await pushRaw(plain.url, 'app', 'v1', img);
    const store = await openContentStore(path.join(tmp, 'seed'));
    await new RegistryClient({ insecureRegistries: [plain.host] }).pull(`${plain.host}/app:v1`, store);
    const creds = { [tlsReg.host]: { username: tlsReg.username, password: tlsReg.password } };
    await new RegistryClient({ transport: nodeTransport({ ca: tlsReg.caPem! }), credentials: creds }).push(`${tlsReg.host}/app:v1`, store, img.manifest);
    ref = `${tlsReg.host}/app:v1`;
  } finally {
    await plain.stop();
  }
  helperOut = path.join(tmp, 'helper-env');
  fs.mkdirSync(path.join(tmp, 'bin'));
  const helper = path.join(tmp, 'bin', 'docker-credential-recorder');
  fs.writeFileSync(helper, `#!/bin/sh\necho "NODE_EXTRA_CA_CERTS=\${NODE_EXTRA_CA_CERTS-unset}" >> '${helperOut}'\ncat >/dev/null\n`
    + `printf '%s' '${JSON.stringify({ ServerURL: tlsReg.host, Username: tlsReg.username, Secret: tlsReg.password })}'\n`, { mode: 0o755 });
}, 120_000);

afterAll(async () => {
  await tlsReg?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('NODE_EXTRA_CA_CERTS, read at the first TLS connection', () => {
  it('is not read by a command that makes no connection (Node itself reads it at start)', async () => {
    const node = await new Promise<string>((resolve) => {
      const c = spawn(process.execPath, ['-e', '0'], { env: { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem' }, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
      c.on('close', () => resolve(err));
    });
    expect(node).toContain('Ignoring extra certs from `/nonexistent/ca.pem`');
    const r = await sh(['version'], { NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem' });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    // A CA store picked in NODE_OPTIONS is Node's business: the launcher then leaves the variable to it.
    const store = await sh(['version'], { NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem', NODE_OPTIONS: '--use-openssl-ca' });
    expect(store.code).toBe(0);
    expect(store.stderr).toContain('Ignoring extra certs from `/nonexistent/ca.pem`');
  });

  it('stays off the start-up path: `stowage version` loads neither TLS nor HTTP', async () => {
    // A preload lists the built-in modules the process loaded; `version` has no use for a network one.
    const preload = path.join(tmp, 'list-builtins.mjs');
    const out = path.join(tmp, 'builtins.txt');
    fs.writeFileSync(preload, `import fs from 'node:fs';\nprocess.on('exit', () => fs.writeFileSync(${JSON.stringify(out)}, process.moduleLoadList.join('\\n')));\n`);
    const r = await sh(['version'], { NODE_EXTRA_CA_CERTS: caFile, NODE_OPTIONS: `--import=${preload}` });
    expect(r.code).toBe(0);
    const loaded = fs.readFileSync(out, 'utf8').split('\n');
    expect(loaded).toContain('NativeModule fs');
    expect(loaded.filter((m) => /^NativeModule (tls|https|http|_tls_wrap|internal\/tls\/.*)$/.test(m))).toEqual([]);
  });

  it('trusts the registry its CA file names, and gives child processes the variable', async () => {
    const r = await pull('trusted', caFile);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Status: Downloaded newer image for ${ref}`);
    expect(fs.readFileSync(helperOut, 'utf8').trim().split('\n')).toContain(`NODE_EXTRA_CA_CERTS=${caFile}`);
  });

  it('refuses the registry without it, and warns about a missing file as Node does', async () => {
    const none = await pull('untrusted', undefined);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/certificate/);
    const missing = await pull('missing', path.join(tmp, 'missing.pem'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`Ignoring extra certs from \`${path.join(tmp, 'missing.pem')}\`, load failed`);
    expect(missing.stderr).toMatch(/certificate/);
  });
});
