import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import type https from 'node:https';
import { createRequire } from 'node:module';
import type tls from 'node:tls';
import type { Readable } from 'node:stream';
import { AbortedError, StowageError, UnavailableError } from '../errors/index.js';
import { MAX_SOCKETS_PER_HOST } from './defaults.js';

/**
 * One HTTP exchange, no redirects, no auth, no retries: the layers above decide all of that.
 * node:http rather than undici's fetch because we need exact control over redirects (credentials must
 * not follow them), Range, streaming bodies with backpressure, and sockets we can count.
 */
export interface HttpRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  /** A buffer, or a factory of fresh streams so that a retried request can resend its body. */
  body?: Buffer | (() => Readable);
  signal?: AbortSignal;
  /**
   * https: without certificate checks. The client sets it only for loopback hosts and hosts listed insecure
   * (docker's InsecureSkipVerify for insecure registries), never for others.
   */
  skipTlsVerify?: boolean;
}

export interface HttpResponse {
  status: number;
  /** Lower-case header names. */
  headers: http.IncomingHttpHeaders;
  body: Readable;
  url: URL;
}

export interface Transport {
  (req: HttpRequest): Promise<HttpResponse>;
  /**
   * True when https: requests really speak TLS and a failed handshake surfaces as Node's error (EPROTO,
   * ECONNREFUSED, certificate codes). Only then does the client probe insecure hosts with HTTPS before
   * falling back to HTTP; in-process fakes, which answer any scheme, keep the configured scheme.
   */
  readonly reportsTlsFailures?: boolean;
}

/**
 * A request as the registry client's layers see it (retry, auth, redirects, scheme fallback; composed in
 * stack.ts): an HTTP exchange plus what those layers need to know. The innermost layer hands the wire
 * transport a plain HttpRequest.
 */
export interface RegistryRequest extends HttpRequest {
  /** The registry spoken to: its API host, and the scheme its Repository was made with. */
  registry: { host: string; scheme: 'http' | 'https' };
  /** Scopes the request needs (`repository:x:pull`); the auth layer asks for a token covering them. */
  scopes: readonly string[];
  /** `url` is a path on the registry host whose scheme this request may still have to settle (its first hop). */
  settleScheme?: boolean;
  /** The origin that gets credentials on this hop when it is not the registry's settled one (the probing hop). */
  credentialOrigin?: string;
  /** Follow redirects; default true for GET and HEAD. */
  followRedirects?: boolean;
  /** Statuses returned to the caller instead of being retried (e.g. 416 for a Range probe). */
  noRetryStatuses?: readonly number[];
}

/** One round trip through the registry layers: each layer is a function of this shape wrapping the next. */
export type RoundTripper = (req: RegistryRequest) => Promise<HttpResponse>;

let modules: { http: typeof http; https: typeof https; tls: typeof tls } | undefined;
/**
 * node:http, node:https and node:tls, loaded at the first request: 12-17 ms of start-up on the bench
 * machine, which the commands that never reach a registry (images, inspect, checkout, ...) do not pay.
 */
function httpModules(): { http: typeof http; https: typeof https; tls: typeof tls } {
  if (modules) return modules;
  const require = createRequire(import.meta.url);
  return (modules = { http: require('node:http') as typeof http, https: require('node:https') as typeof https, tls: require('node:tls') as typeof tls });
}

/** The agents of the default transport, made at their first use. */
let agents: { http: http.Agent; https?: https.Agent; unverified: https.Agent } | undefined;
function defaultAgents(): { http: http.Agent; https?: https.Agent; unverified: https.Agent } {
  return (agents ??= {
    http: new (httpModules().http.Agent)({ keepAlive: true, maxSockets: MAX_SOCKETS_PER_HOST }),
    // For skipTlsVerify requests only: a separate pool, so that no unverified socket serves a verified
    // request. It trusts no CA (`ca: []`): it verifies nothing, and without that Node builds its root
    // store for the first TLS context, 35 ms here, paid by every pull from a loopback registry (probed
    // with HTTPS first).
    unverified: new (httpModules().https.Agent)({ keepAlive: true, maxSockets: MAX_SOCKETS_PER_HOST, rejectUnauthorized: false, ca: [] }),
  });
}
/** The verified TLS pool of the default transport (see defaultCaCertificates). */
const defaultHttpsAgent = (): https.Agent => (defaultAgents().https ??= new (httpModules().https.Agent)({ keepAlive: true, maxSockets: MAX_SOCKETS_PER_HOST, ...caOption() }));

let defaultCas: { file: string; cas: string[] } | undefined;
/**
 * The certificates a verified connection trusts when the `stowage` launcher kept NODE_EXTRA_CA_CERTS
 * from Node's start. Node parses that file, and builds its whole root store to add it to, before it
 * runs any code (node -e 0 took 0.08-0.11 s here with it set, 0.02-0.04 s without): a cost most
 * commands never use. bin/stowage.js passes the path on as STOWAGE_EXTRA_CA_CERTS instead, read here
 * at the first TLS connection: Node's bundled roots plus that file's certificates, as Node would have
 * trusted. A missing or broken file is reported once, as Node reports it, and leaves the bundled
 * roots. undefined: Node's own defaults apply.
 */
export function defaultCaCertificates(): string[] | undefined {
  const file = process.env.STOWAGE_EXTRA_CA_CERTS;
  if (!file) return undefined;
  if (defaultCas?.file === file) return defaultCas.cas;
  const extra: string[] = [];
  try {
    const pems = fs.readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    for (const pem of pems) new X509Certificate(pem); // throws on a malformed one
    if (pems.length === 0) throw new Error('no certificate found');
    extra.push(...pems);
  } catch (e) {
    process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(e as Error).message}`);
  }
  defaultCas = { file, cas: [...httpModules().tls.rootCertificates, ...extra] };
  return defaultCas.cas;
}

function caOption(): { ca?: string[] } {
  const ca = defaultCaCertificates();
  return ca ? { ca } : {};
}

export interface NodeTransportOptions {
  /** Extra trusted CA certificates (PEM), added to Node's defaults (a private registry's CA). */
  ca?: string | string[];
  /** false: accept any certificate. For tests only; prefer `ca`. */
  rejectUnauthorized?: boolean;
}

/** The default transport: node:http / node:https with keep-alive agents. */
export function nodeTransport(opts: NodeTransportOptions = {}): Transport {
  const custom = opts.ca !== undefined || opts.rejectUnauthorized === false;
  let customAgent: https.Agent | undefined;
  const tlsAgent = (): https.Agent => (!custom ? defaultHttpsAgent() : customAgent ??= new (httpModules().https.Agent)({
    keepAlive: true, maxSockets: MAX_SOCKETS_PER_HOST, rejectUnauthorized: opts.rejectUnauthorized !== false,
    ...(opts.ca !== undefined ? { ca: [...(defaultCaCertificates() ?? httpModules().tls.rootCertificates), ...[opts.ca].flat()] } : caOption()),
  }));
  const send = (req: HttpRequest): Promise<HttpResponse> => new Promise<HttpResponse>((resolve, reject) => {
    if (req.signal?.aborted) { reject(new AbortedError('request aborted', { url: redactUrl(req.url) })); return; }
    const isHttps = req.url.protocol === 'https:';
    const mod = isHttps ? httpModules().https : httpModules().http;
    const headers: Record<string, string | number> = { ...req.headers };
    if (Buffer.isBuffer(req.body)) headers['content-length'] = req.body.length;
    const out = mod.request(req.url, { method: req.method, headers, agent: isHttps ? (req.skipTlsVerify ? defaultAgents().unverified : tlsAgent()) : defaultAgents().http, signal: req.signal }, (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url: req.url });
    });
    out.on('error', (e) => reject(req.signal?.aborted ? new AbortedError('request aborted', { url: redactUrl(req.url) }, { cause: e }) : e));
    if (req.body === undefined) out.end();
    else if (Buffer.isBuffer(req.body)) out.end(req.body);
    else {
      const src = req.body();
      src.on('error', (e) => out.destroy(e));
      src.pipe(out);
    }
  });
  return Object.assign(send, { reportsTlsFailures: true as const });
}

/** A URL safe for logs and error messages: no userinfo, no query (presigned URLs carry secrets there). */
export function redactUrl(url: URL | string): string {
  const u = new URL(String(url));
  u.username = '';
  u.password = '';
  const hadQuery = u.search !== '';
  u.search = '';
  return u.toString() + (hadQuery ? '?[redacted]' : '');
}

/** `data.reason` of the Unavailable error readBody throws when a connection breaks mid-body (retryable). */
export const BODY_READ_FAILED = 'body-read-failed';

/**
 * Reads a whole body, refusing more than `cap` bytes (the stream is destroyed at cap+1). A connection
 * that breaks mid-body is a typed error: Aborted when the request's signal fired, else Unavailable
 * (`data.reason` BODY_READ_FAILED, so callers may retry).
 */
export async function readBody(body: Readable, cap: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body) {
      const b = c as Buffer;
      n += b.length;
      if (n > cap) { body.destroy(); return undefined; }
      chunks.push(b);
    }
  } catch (e) {
    if (e instanceof StowageError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err?.name === 'AbortError' || err?.code === 'ABORT_ERR') throw new AbortedError('request aborted', {}, { cause: e });
    throw new UnavailableError(`connection lost while reading the response: ${err?.message ?? String(e)}`, { reason: BODY_READ_FAILED }, { cause: e });
  }
  return Buffer.concat(chunks, n);
}

/** Bodies up to this size are drained so the socket is reused; past it the connection is dropped. */
const DISCARD_DRAIN_MAX = 64 * 1024;

/**
 * Discards a body: a small one is drained so that its socket goes back to the pool; a large or endless
 * one (an oversized blob we refused, a whole layer sent for a Range request) closes the connection
 * instead of being downloaded for nothing.
 */
export function discard(body: Readable): void {
  body.on('error', () => {});
  // Counted, not judged by Content-Length: a HEAD answer announces a length but carries no body.
  let seen = 0;
  body.on('data', (c: Buffer) => {
    seen += c.length;
    if (seen > DISCARD_DRAIN_MAX) body.destroy();
  });
  body.resume();
}

export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
