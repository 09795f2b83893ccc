/**
 * Starts Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1 for tests and benches:
 * anonymous, htpasswd Basic, or token auth (with the token server in token-server.ts).
 *
 *   const reg = await startRegistry({ auth: 'basic' });
 *   ... reg.host ('127.0.0.1:PORT'), reg.url, reg.username, reg.password, reg.accessLog() ...
 *   await reg.stop();
 *
 * Several registries may share one `storageDir` (e.g. one anonymous and one token-protected view of the
 * same content). The registry's access log (stdout/stderr) is kept so that tests can count requests.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startTokenServer, type TokenServer } from './token-server.js';

export type RegistryAuth = 'none' | 'basic' | 'token';

export interface RegistryOptions {
  auth?: RegistryAuth;
  /** Where blobs and manifests live; default a fresh private temp dir (removed on stop). */
  storageDir?: string;
  username?: string;
  password?: string;
  /** Token auth: anonymous callers may pull (like Docker Hub public repos). Default false. */
  anonymousPull?: boolean;
  /** Token auth: token lifetime in seconds (0 = no expires_in). */
  tokenExpiresIn?: number;
  /** Serve HTTPS with a fresh self-signed certificate (its PEM is `caPem`). */
  tls?: boolean;
  /** Address to listen on; default 127.0.0.1 (use a non-loopback address to test the HTTPS default). */
  listenHost?: string;
}

export interface Registry {
  /** `127.0.0.1:PORT`, as it appears in image references. */
  host: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  username: string;
  password: string;
  auth: RegistryAuth;
  storageDir: string;
  /** Present with auth 'token'. */
  tokenServer?: TokenServer;
  /** With tls: the self-signed certificate clients must trust. */
  caPem?: string;
  /** The docker-registry process (benchmarks read its peak RSS). */
  pid: number;
  /** Everything the registry printed so far (access log lines included). */
  accessLog(): string;
  /** Access-log request lines (`"GET /v2/... HTTP/1.1" 200`), in order. */
  requestLines(): string[];
  stop(): Promise<void>;
}

export async function freePort(hostname = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, hostname, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function yaml(lines: Array<[number, string]>): string {
  return lines.map(([indent, s]) => `${' '.repeat(indent)}${s}`).join('\n') + '\n';
}

function probe(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(`${url}/v2/`, { rejectUnauthorized: false, timeout: 1000 }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

async function waitReady(url: string, child: ChildProcess, log: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}:\n${log()}`);
    try {
      const status = await probe(url);
      if (status === 200 || status === 401) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not become ready at ${url}:\n${log()}`);
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const auth = opts.auth ?? 'none';
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-registry-'));
  const storageDir = opts.storageDir ?? path.join(work, 'storage');
  fs.mkdirSync(storageDir, { recursive: true });
  const username = opts.username ?? 'stowage';
  const password = opts.password ?? 'secret-pass-123';
  let tokenServer: TokenServer | undefined;

  const authLines: Array<[number, string]> = [];
  if (auth === 'basic') {
    const htpasswd = path.join(work, 'htpasswd');
    execFileSync('htpasswd', ['-Bbc', htpasswd, username, password], { stdio: 'ignore' });
    authLines.push([0, 'auth:'], [2, 'htpasswd:'], [4, 'realm: stowage-test'], [4, `path: ${htpasswd}`]);
  } else if (auth === 'token') {
    tokenServer = await startTokenServer({
      dir: path.join(work, 'token'), service: 'stowage-test-registry', users: { [username]: password },
      anonymousPull: opts.anonymousPull ?? false, expiresIn: opts.tokenExpiresIn,
    });
    authLines.push([0, 'auth:'], [2, 'token:'], [4, `realm: ${tokenServer.realm}`], [4, `service: ${tokenServer.service}`],
      [4, `issuer: ${tokenServer.issuer}`], [4, `rootcertbundle: ${tokenServer.certPath}`]);
  }

  const listenHost = opts.listenHost ?? '127.0.0.1';
  const hostPart = listenHost.includes(':') ? `[${listenHost}]` : listenHost;
  const tlsLines: Array<[number, string]> = [];
  let caPem: string | undefined;
  if (opts.tls) {
    const key = path.join(work, 'tls.key');
    const crt = path.join(work, 'tls.crt');
    const san = `subjectAltName=IP:127.0.0.1,DNS:localhost${net.isIP(listenHost) ? `,IP:${listenHost}` : `,DNS:${listenHost}`}`;
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', '/CN=stowage-test-registry', '-addext', san], { stdio: 'ignore' });
    caPem = fs.readFileSync(crt, 'utf8');
    tlsLines.push([2, 'tls:'], [4, `certificate: ${crt}`], [4, `key: ${key}`]);
  }
  // The port can be taken between freePort() and the registry's bind: retry a few times.
  for (let attempt = 0; ; attempt++) {
    const port = await freePort(listenHost);
    const configPath = path.join(work, 'config.yml');
    fs.writeFileSync(configPath, yaml([
      [0, 'version: 0.1'],
      [0, 'log:'], [2, 'level: info'], [2, 'formatter: text'], [2, 'accesslog:'], [4, 'disabled: false'],
      [0, 'storage:'], [2, 'filesystem:'], [4, `rootdirectory: ${storageDir}`], [2, 'delete:'], [4, 'enabled: true'],
      [2, 'maintenance:'], [4, 'uploadpurging:'], [6, 'enabled: false'],
      [0, 'http:'], [2, `addr: ${hostPart}:${port}`], [2, 'secret: stowage-test-secret'], ...tlsLines,
      ...authLines,
    ]));
    let out = '';
    const child = spawn('docker-registry', ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
    const url = `${opts.tls ? 'https' : 'http'}://${hostPart}:${port}`;
    try {
      await waitReady(url, child, () => out);
    } catch (e) {
      child.kill('SIGKILL');
      if (attempt < 3 && /address already in use/.test(out)) continue;
      await tokenServer?.stop();
      throw e;
    }
    // Never leave a registry behind a test process that dies without calling stop().
    const killOnExit = (): void => {
      child.kill('SIGKILL');
      try { fs.rmSync(work, { recursive: true, force: true }); } catch { /* exiting anyway */ }
    };
    process.once('exit', killOnExit);
    const stop = async (): Promise<void> => {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
      await tokenServer?.stop();
      // `work` holds config, htpasswd, token keys, and the storage unless the caller gave one.
      fs.rmSync(work, { recursive: true, force: true });
    };
    return {
      host: `${hostPart}:${port}`, url, username, password, auth, storageDir, tokenServer, caPem, pid: child.pid!,
      accessLog: () => out,
      requestLines: () => [...out.matchAll(/"((?:GET|HEAD|POST|PUT|PATCH|DELETE) [^"]*)" (\d{3})/g)].map((m) => `${m[1]} ${m[2]}`),
      stop,
    };
  }
}
