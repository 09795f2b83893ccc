import { AbortedError, UnauthorizedError } from '../errors/index.js';
import { parseChallenges } from './challenge.js';
import type { CredentialSource, Credentials } from './credentials.js';
import { errorFromResponse } from './errors.js';
import { MAX_AUTH_RETRIES, TOKEN_EXPIRY_MARGIN_MS } from './defaults.js';
import type { HostSchemes } from './hosts.js';
import { discard, header, readBody, type HttpResponse, type RoundTripper, type Transport } from './transport.js';

/**
 * Per-host authorisation as containerd/docker do it: requests go out anonymously (or with a cached token)
 * until a 401 challenge says how to authenticate; Basic sends the host's credentials; Bearer fetches a
 * token per scope set from the challenge's realm (OAuth2 POST when there are credentials, falling back to
 * GET with Basic; anonymous GET otherwise), caches it until `expires_in`, shares in-flight fetches, and
 * drops it on a 401. Credentials are looked up for the registry host only; the caller never asks for a
 * header for any other host (redirect targets, foreign upload Locations).
 */

interface Token { token: string; expiresAt: number }

/**
 * A token fetch shared by every request that needs the same scopes. It runs on its own signal, aborted
 * only when every waiter has given up: one caller's cancellation must not fail the others.
 */
interface InflightToken { promise: Promise<Token>; controller: AbortController; waiters: number }

interface HostState {
  scheme?: 'basic' | 'bearer';
  realm?: string;
  service?: string;
  tokens: Map<string, Token>;
  inflight: Map<string, InflightToken>;
  /** A refresh token the token server gave us (access_type=offline), used instead of the password. */
  refreshToken?: string;
  creds?: Promise<Credentials | undefined>;
}

export interface AuthorizerOptions {
  credentials: CredentialSource;
  transport: Transport;
  userAgent: string;
  /** OAuth2 client_id sent to token servers. */
  clientId?: string;
}

/** `repository:<name>:<actions>` scopes, sorted and de-duplicated: the token cache key. */
export function scopeKey(scopes: readonly string[]): string {
  return [...new Set(scopes)].sort().join(' ');
}

export function pullScope(path: string): string { return `repository:${path}:pull`; }
export function pushScope(path: string): string { return `repository:${path}:pull,push`; }

export class Authorizer {
  private readonly hosts = new Map<string, HostState>();
  /** Token requests made (for tests and diagnostics). */
  tokenFetches = 0;

  constructor(private readonly opts: AuthorizerOptions) {}

  private state(host: string): HostState {
    let s = this.hosts.get(host);
    if (!s) { s = { tokens: new Map(), inflight: new Map() }; this.hosts.set(host, s); }
    return s;
  }

  private creds(host: string): Promise<Credentials | undefined> {
    const s = this.state(host);
    if (!s.creds) {
      const p = this.opts.credentials(host);
      s.creds = p;
      // A failed lookup (a helper that could not answer this time) is asked again next time.
      p.catch(() => { if (s.creds === p) s.creds = undefined; });
    }
    return s.creds;
  }

  /** Replaces the credentials for a host (login verification) and forgets its tokens. */
  setCredentials(host: string, creds: Credentials | undefined): void {
    this.hosts.set(host, { tokens: new Map(), inflight: new Map(), creds: Promise.resolve(creds) });
  }

  /** The Authorization header for a request to the registry `host` needing `scopes`, if we know one. */
  async header(host: string, scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    const s = this.state(host);
    if (s.scheme === 'basic') {
      const c = await this.creds(host);
      return c?.username !== undefined ? basicHeader(c.username, c.password ?? '') : undefined;
    }
    if (s.scheme === 'bearer' && s.realm) {
      const t = await this.token(host, s, scopes, signal);
      return `Bearer ${t.token}`;
    }
    return undefined;
  }

  /**
   * Learns from a 401. Returns true when the request should be retried with a new header; false when
   * retrying cannot help (no credentials for Basic, or the fresh token was refused too).
   */
  async unauthorized(host: string, res: HttpResponse, scopes: readonly string[], retried: boolean): Promise<boolean> {
    const challenges = parseChallenges(res.headers['www-authenticate']);
    discard(res.body);
    const s = this.state(host);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer?.params.realm) {
      const changed = s.scheme !== 'bearer' || s.realm !== bearer.params.realm;
      s.scheme = 'bearer';
      s.realm = bearer.params.realm;
      s.service = bearer.params.service ?? s.service;
      const key = scopeKey(scopes);
      const had = s.tokens.delete(key);
      // A token we just fetched was refused: asking again gives the same answer.
      if (retried && had && !changed) return false;
      return true;
    }
    if (basic) {
      const wasBasic = s.scheme === 'basic';
      s.scheme = 'basic';
      const c = await this.creds(host);
      if (c?.username === undefined) return false;
      return !(retried && wasBasic);
    }
    return false;
  }

  private async token(host: string, s: HostState, scopes: readonly string[], signal?: AbortSignal): Promise<Token> {
    const key = scopeKey(scopes);
    const cached = s.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached;
    let f = s.inflight.get(key);
    if (!f) {
      const controller = new AbortController();
      const entry: InflightToken = { controller, waiters: 0, promise: undefined as unknown as Promise<Token> };
      entry.promise = this.fetchToken(host, s, [...new Set(scopes)].sort(), controller.signal)
        .finally(() => { if (s.inflight.get(key) === entry) s.inflight.delete(key); });
      entry.promise.catch(() => {}); // every waiter may have left; nobody else observes it
      s.inflight.set(key, entry);
      f = entry;
    }
    const t = await waitShared(f, signal, () => { if (s.inflight.get(key) === f) s.inflight.delete(key); });
    s.tokens.set(key, t);
    return t;
  }

  private async fetchToken(host: string, s: HostState, scopes: string[], signal?: AbortSignal): Promise<Token> {
    const c = await this.creds(host);
    if (c?.registryToken) return { token: c.registryToken, expiresAt: Infinity };
    const realm = new URL(s.realm!);
    const refresh = s.refreshToken ?? c?.identityToken;
    const hasPassword = c?.username !== undefined && c.password !== undefined && c.password !== '';
    if (refresh || hasPassword) {
      const form = new URLSearchParams();
      if (refresh) {
        form.set('grant_type', 'refresh_token');
        form.set('refresh_token', refresh);
      } else {
        form.set('grant_type', 'password');
        form.set('username', c!.username!);
        form.set('password', c!.password!);
        form.set('access_type', 'offline');
      }
      if (s.service) form.set('service', s.service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      form.set('client_id', this.opts.clientId ?? 'stowage');
      this.tokenFetches++;
      const res = await this.opts.transport({
        method: 'POST', url: realm, signal, body: Buffer.from(form.toString()),
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': this.opts.userAgent },
      });
      if (res.status === 200) return this.parseTokenResponse(res, s);
      if (refresh && s.refreshToken && hasPassword && res.status === 401) {
        // Our refresh token expired: start again from the password.
        discard(res.body);
        s.refreshToken = undefined;
        return this.fetchToken(host, s, scopes, signal);
      }
      // Token servers without OAuth2 (404/405/400/401): the classic GET with Basic.
      if (!(hasPassword && [400, 401, 404, 405].includes(res.status))) {
        const e = await errorFromResponse(res, `fetching a token from ${realm.host}`);
        throw res.status === 401 ? new UnauthorizedError(`unauthorized: authentication required (${host})`, e.data, { cause: e }) : e;
      }
      discard(res.body);
    }
    const url = new URL(realm);
    if (s.service) url.searchParams.set('service', s.service);
    for (const sc of scopes) url.searchParams.append('scope', sc);
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent };
    if (hasPassword) {
      url.searchParams.set('account', c!.username!); // docker's GET names the account too
      headers.authorization = basicHeader(c!.username!, c!.password!);
    }
    this.tokenFetches++;
    const res = await this.opts.transport({ method: 'GET', url, headers, signal });
    if (res.status === 200) return this.parseTokenResponse(res, s);
    const e = await errorFromResponse(res, `fetching a token from ${realm.host}`);
    if (res.status === 401) throw new UnauthorizedError(`unauthorized: incorrect username or password for ${host}`, e.data, { cause: e });
    throw e;
  }

  private async parseTokenResponse(res: HttpResponse, s: HostState): Promise<Token> {
    const body = await readBody(res.body, 1024 * 1024);
    let v: { token?: string; access_token?: string; expires_in?: number; issued_at?: string; refresh_token?: string };
    try { v = JSON.parse(body?.toString('utf8') ?? '') as typeof v; } catch {
      throw new UnauthorizedError('token server answered with invalid JSON', { contentType: header(res, 'content-type') });
    }
    const token = v.token || v.access_token;
    if (!token) throw new UnauthorizedError('token server answered without a token');
    if (v.refresh_token) s.refreshToken = v.refresh_token;
    const issued = v.issued_at ? Date.parse(v.issued_at) : NaN;
    const start = Number.isFinite(issued) && issued <= Date.now() ? issued : Date.now();
    // No expires_in: containerd keeps the token until a 401 drops it.
    const expiresAt = typeof v.expires_in === 'number' && v.expires_in > 0 ? start + v.expires_in * 1000 - TOKEN_EXPIRY_MARGIN_MS : Infinity;
    return { token, expiresAt };
  }
}

/** Waits on a shared fetch until it settles or `signal` aborts; the last waiter to leave aborts the fetch. */
function waitShared(f: InflightToken, signal: AbortSignal | undefined, forget: () => void): Promise<Token> {
  if (signal?.aborted) return Promise.reject(new AbortedError('token request aborted'));
  f.waiters++;
  return new Promise<Token>((resolve, reject) => {
    let left = false;
    const leave = (): void => { if (!left) { left = true; f.waiters--; signal?.removeEventListener('abort', onAbort); } };
    const onAbort = (): void => {
      leave();
      if (f.waiters === 0) { forget(); f.controller.abort(); }
      reject(new AbortedError('token request aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    f.promise.then((t) => { leave(); resolve(t); }, (e: unknown) => { leave(); reject(e); });
  });
}

export function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/**
 * The credential layer, closest to the wire: every hop gets the user agent, and the registry's
 * Authorization only when the hop's URL is the registry's own origin (never a storage host, a foreign
 * upload Location or a token realm). It hands the wire transport a plain HttpRequest.
 */
export function withCredentials(wire: Transport, authorizer: Authorizer, schemes: HostSchemes, userAgent: string): RoundTripper {
  return async (req) => {
    const headers: Record<string, string> = { 'user-agent': userAgent, ...req.headers };
    if (req.url.origin === (req.credentialOrigin ?? schemes.origin(req.registry))) {
      const auth = await authorizer.header(req.registry.host, req.scopes, req.signal);
      if (auth) headers.authorization = auth;
    }
    return wire({ method: req.method, url: req.url, headers, body: req.body, signal: req.signal, ...(req.skipTlsVerify ? { skipTlsVerify: true } : {}) });
  };
}

/**
 * The challenge layer: a 401 from the registry's origin is answered (Basic, or a Bearer token for the
 * request's scopes) and the request sent again, a few times at most; a 401 it cannot answer goes back to
 * the caller, who words it.
 */
export function withChallenges(next: RoundTripper, authorizer: Authorizer, schemes: HostSchemes): RoundTripper {
  return async (req) => {
    for (let retries = 0; ; retries++) {
      const res = await next(req);
      if (res.status !== 401 || new URL(res.url).origin !== schemes.origin(req.registry)) return res;
      if (retries >= MAX_AUTH_RETRIES || !(await authorizer.unauthorized(req.registry.host, res, req.scopes, retries > 0))) return res;
    }
  };
}
