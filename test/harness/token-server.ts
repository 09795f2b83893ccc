/**
 * A small Docker token server (the "realm" of a registry with `auth: token`) for tests: RS256 JWTs signed
 * with a key whose self-signed certificate the registry trusts (`rootcertbundle`), the certificate in the
 * JWT header's `x5c`. Answers `GET realm?service=&scope=&account=` (anonymous or Basic) and the OAuth2
 * `POST` form (`grant_type=password|refresh_token`), and records every request for assertions.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface TokenRequestRecord {
  method: 'GET' | 'POST';
  scopes: string[];
  service: string;
  /** Who was authenticated ('' = anonymous). */
  account: string;
  grantType?: string;
  clientId?: string;
  accessType?: string;
  hadBasicAuth: boolean;
}

export interface TokenServerOptions {
  /** Directory for the key and certificate (created). */
  dir: string;
  service: string;
  issuer?: string;
  users: Record<string, string>;
  /** Anonymous callers get `pull` on every repository (Docker Hub's public images); default false. */
  anonymousPull?: boolean;
  /** Token lifetime in seconds; default 300. 0 omits `expires_in`. */
  expiresIn?: number;
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  requests: TokenRequestRecord[];
  /** Refresh tokens handed out, mapped to their user. */
  refreshTokens: Map<string, string>;
  /** Makes the next N token requests fail with this status (e.g. 500). */
  failNext(n: number, status: number): void;
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** Parses `repository:name:pull,push` (names may contain ':' only in the host part, which is not in scopes). */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) };
}

export function makeSigningCert(dir: string, cn = 'stowage-test-token'): { keyPath: string; certPath: string } {
  fs.mkdirSync(dir, { recursive: true });
  const keyPath = path.join(dir, 'token.key');
  const certPath = path.join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', `/CN=${cn}`], { stdio: 'ignore' });
  return { keyPath, certPath };
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const { keyPath, certPath } = makeSigningCert(opts.dir);
  const key: KeyObject = createPrivateKey(fs.readFileSync(keyPath));
  const certDer = new X509Certificate(fs.readFileSync(certPath)).raw;
  const issuer = opts.issuer ?? 'stowage-test-issuer';
  const expiresIn = opts.expiresIn ?? 300;
  const requests: TokenRequestRecord[] = [];
  const refreshTokens = new Map<string, string>();
  let failures = { n: 0, status: 500 };

  const issue = (account: string, scopes: string[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const access = scopes.flatMap((s) => {
      const p = parseScope(s);
      if (!p) return [];
      const actions = account !== '' ? p.actions : opts.anonymousPull ? p.actions.filter((a) => a === 'pull') : [];
      return actions.length ? [{ type: p.type, name: p.name, actions }] : [];
    });
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = {
      iss: issuer, sub: account, aud: opts.service, exp: now + (expiresIn > 0 ? expiresIn : 3600), nbf: now - 10, iat: now,
      jti: randomBytes(8).toString('hex'), access,
    };
    const data = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${data}.${b64url(sign('sha256', Buffer.from(data), key))}`;
  };

  const checkBasic = (authz: string | undefined): string | null | undefined => {
    // undefined: no credentials; null: wrong credentials; string: the user.
    if (!authz?.startsWith('Basic ')) return undefined;
    const raw = Buffer.from(authz.slice(6), 'base64').toString('utf8');
    const i = raw.indexOf(':');
    const user = raw.slice(0, i);
    return i > 0 && opts.users[user] === raw.slice(i + 1) ? user : null;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body: unknown): void => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (failures.n > 0) { failures.n--; send(failures.status, { error: 'injected failure' }); return; }
      const url = new URL(req.url ?? '/', 'http://x');
      const basic = checkBasic(req.headers.authorization);
      if (req.method === 'GET') {
        const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
        const service = url.searchParams.get('service') ?? '';
        requests.push({ method: 'GET', scopes, service, account: basic ?? '', hadBasicAuth: basic !== undefined });
        if (basic === null) { send(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] }); return; }
        if (service !== opts.service) { send(400, { error: 'unknown service' }); return; }
        const token = issue(basic ?? '', scopes);
        send(200, { token, access_token: token, ...(expiresIn > 0 ? { expires_in: expiresIn } : {}), issued_at: new Date().toISOString() });
        return;
      }
      if (req.method === 'POST') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        const grantType = form.get('grant_type') ?? '';
        const record: TokenRequestRecord = {
          method: 'POST', scopes, service: form.get('service') ?? '', account: '', grantType, hadBasicAuth: basic !== undefined,
          clientId: form.get('client_id') ?? undefined, accessType: form.get('access_type') ?? undefined,
        };
        requests.push(record);
        let user: string | undefined;
        if (grantType === 'password') {
          const u = form.get('username') ?? '';
          if (opts.users[u] === undefined || opts.users[u] !== form.get('password')) { send(401, { error: 'invalid_grant' }); return; }
          user = u;
        } else if (grantType === 'refresh_token') {
          user = refreshTokens.get(form.get('refresh_token') ?? '');
          if (user === undefined) { send(401, { error: 'invalid_grant' }); return; }
        } else { send(400, { error: 'unsupported_grant_type' }); return; }
        record.account = user;
        const token = issue(user, scopes);
        const body: Record<string, unknown> = { access_token: token, scope: scopes.join(' '), issued_at: new Date().toISOString() };
        if (expiresIn > 0) body.expires_in = expiresIn;
        if (form.get('access_type') === 'offline') {
          const rt = randomBytes(16).toString('hex');
          refreshTokens.set(rt, user);
          body.refresh_token = rt;
        }
        send(200, body);
        return;
      }
      send(405, { error: 'method not allowed' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service: opts.service,
    issuer,
    certPath,
    requests,
    refreshTokens,
    failNext(n, status) { failures = { n, status }; },
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
