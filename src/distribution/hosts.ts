import { isIP } from 'node:net';
import { DEFAULT_DOMAIN } from '../oci/index.js';
import type { RegistryRequest, RoundTripper } from './transport.js';

/** Where Docker Hub's API really lives (docker.io is only the name in references). */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** The key docker's config.json uses for Docker Hub credentials. */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';

/** The API host for a reference domain: docker.io → registry-1.docker.io, others unchanged. */
export function apiHost(domain: string): string {
  return domain === DEFAULT_DOMAIN || domain === 'index.docker.io' ? DOCKER_HUB_API_HOST : domain;
}

/** Host name without the port (IPv6 brackets removed). */
export function hostname(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const i = host.lastIndexOf(':');
  return i === -1 ? host : host.slice(0, i);
}

/** localhost, 127.0.0.0/8 and ::1: docker talks plain HTTP to these without being told. */
export function isLoopback(host: string): boolean {
  const h = hostname(host).toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * The weakest scheme a host may be spoken to over: 'http' for loopback hosts and hosts listed insecure
 * (entries are `host[:port]`, or a bare hostname that covers every port), 'https' for everything else.
 * 'http' hosts still get HTTPS first (see HostSchemes), as docker does.
 */
export function schemeFor(host: string, insecure: readonly string[] = []): 'http' | 'https' {
  if (isLoopback(host)) return 'http';
  const h = host.toLowerCase();
  for (const entry of insecure) {
    const e = entry.toLowerCase().replace(/^https?:\/\//, '').replace(/\/+$/, '');
    if (e === h || e === hostname(h)) return 'http';
  }
  return 'https';
}

/** `host[:port]` as URL.host prints it, to compare a redirect target with the registry host. */
export function sameHost(a: URL, registryHost: string, scheme: string): boolean {
  return a.host.toLowerCase() === new URL(`${scheme}://${registryHost}`).host.toLowerCase();
}

export type Scheme = 'http' | 'https';

/** Loopback hosts and hosts listed insecure: HTTPS without certificate checks first, plain HTTP if that fails. */
export function isInsecureHost(host: string, insecure: readonly string[] = []): boolean {
  return schemeFor(host, insecure) === 'http';
}

/** Node's codes for a certificate the peer showed but we could not trust (expired, self-signed, wrong name…). */
export function isCertificateError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code ?? '';
  return /^(CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|ERR_TLS_CERT_ALTNAME_INVALID$|HOSTNAME_MISMATCH$)/.test(code);
}

/**
 * Did an HTTPS attempt fail before any TLS session existed, so that plain HTTP is worth a try (docker's
 * fallback for insecure registries)? Refused connections (https and http may use different default ports),
 * handshakes broken by a peer that does not speak TLS (`wrong version number`: EPROTO / ERR_SSL_*, or the
 * socket closed mid-handshake), and certificate errors. A reset after the handshake is not: that is a
 * TLS server with a transient fault, and plain HTTP to it would be wrong.
 */
export function isTlsFallbackError(e: unknown): boolean {
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? '';
  return code === 'ECONNREFUSED' || code === 'EPROTO' || code.startsWith('ERR_SSL_') || isCertificateError(e)
    || /before secure TLS connection was established|wrong version number/i.test(err?.message ?? '');
}

/**
 * The scheme each registry host is spoken to over, settled once per client for its lifetime.
 * Hosts that are neither loopback nor listed insecure: always https (verified). The others, as docker does
 * for insecure registries: the first request tries https (certificates not checked); when that fails at the
 * TLS/connection level (isTlsFallbackError) the same request goes over http; whichever scheme answered is
 * remembered. Concurrent first requests wait for the one probing, so a host sees one HTTPS probe, not one
 * per request. Failures that prove nothing (both schemes unreachable, an abort) settle nothing: the next
 * request probes again.
 */
export class HostSchemes {
  private readonly settled = new Map<string, Scheme>();
  private readonly probing = new Map<string, Promise<unknown>>();
  /** HTTPS attempts made to settle insecure hosts (tests, diagnostics). */
  probes = 0;

  constructor(private readonly insecure: readonly string[], private readonly fallback: boolean) {}

  /** May `host` (`host[:port]`) be spoken to without verified TLS? Decides certificate checks too. */
  isInsecure(host: string): boolean { return isInsecureHost(host, this.insecure); }

  /** The scheme settled for `host`, else the one its next request tries. */
  current(host: string): Scheme {
    const settled = this.settled.get(host.toLowerCase());
    if (settled) return settled;
    // Without fallback (a transport that cannot tell a failed handshake): the configured scheme, as before.
    return this.isInsecure(host) && !this.fallback ? 'http' : 'https';
  }

  /**
   * The origin a registry's credentials go to: its host over the scheme settled for it. For a loopback or
   * insecure host that may be http: docker sends an insecure registry its credentials over whichever scheme
   * answered, and it is the same registry. The other scheme of the same host is another origin and gets
   * none (a redirect from https to http on the registry host travels without credentials).
   */
  origin(registry: RegistryRequest['registry']): string {
    return new URL(this.baseUrl(registry)).origin;
  }

  /** `scheme://host` for a registry: the settled scheme for an insecure host, the Repository's own otherwise. */
  baseUrl(registry: RegistryRequest['registry']): string {
    return `${this.isInsecure(registry.host) ? this.current(registry.host) : registry.scheme}://${registry.host}`;
  }

  /**
   * Runs one exchange with `host` under its scheme, probing it first when not yet settled: `attempt`
   * is called with 'https' and, on a fallback error, again with 'http'.
   */
  async use<T extends { status: number }>(host: string, attempt: (scheme: Scheme) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const key = host.toLowerCase();
    if (!this.fallback || !this.isInsecure(host)) return attempt(this.current(host));
    for (;;) {
      const settled = this.settled.get(key);
      if (settled) return attempt(settled);
      const pending = this.probing.get(key);
      if (!pending) break;
      await waitOrAbort(pending, signal);
    }
    const probe = this.probe(key, attempt);
    this.probing.set(key, probe);
    const forget = (): void => { if (this.probing.get(key) === probe) this.probing.delete(key); };
    probe.then(forget, forget);
    return probe;
  }

  private async probe<T extends { status: number }>(key: string, attempt: (scheme: Scheme) => Promise<T>): Promise<T> {
    this.probes++;
    let res: T;
    try {
      res = await attempt('https');
    } catch (e) {
      if (!isTlsFallbackError(e)) throw e;
      res = await attempt('http');
      // A 400 is what a TLS server says to plain HTTP ("Client sent an HTTP request to an HTTPS server"):
      // its handshake failed by accident, so nothing is settled and the next request probes again.
      if (res.status !== 400) this.settled.set(key, 'http');
      return res;
    }
    this.settled.set(key, 'https');
    return res;
  }
}

/** Waits for `p` to settle (either way), or throws when `signal` aborts first. */
async function waitOrAbort(p: Promise<unknown>, signal?: AbortSignal): Promise<void> {
  if (!signal) { await p.catch(() => {}); return; }
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<void>((_r, reject) => { onAbort = () => reject(signal.reason); signal.addEventListener('abort', onAbort, { once: true }); });
  try { await Promise.race([p.catch(() => {}), aborted]); } finally { signal.removeEventListener('abort', onAbort); }
}

/**
 * The scheme layer: a request to a loopback or insecure host goes without certificate checks (never one
 * to any other host, such as a redirect target), and the first hop of a registry path settles the host's
 * scheme through `schemes` (HTTPS first, HTTP when the handshake fails). Only that hop is the probe: a
 * redirect target's failure never is, and the probing hop's own origin gets the credentials.
 */
export function withSchemeFallback(next: RoundTripper, schemes: HostSchemes): RoundTripper {
  const send = (req: RegistryRequest): ReturnType<RoundTripper> =>
    next(req.url.protocol === 'https:' && schemes.isInsecure(req.url.host) ? { ...req, skipTlsVerify: true } : req);
  return (req) => {
    if (!req.settleScheme) return send(req);
    const { settleScheme: _settle, ...rest } = req;
    return schemes.use(req.registry.host, (scheme) => {
      const url = new URL(`${scheme}://${req.registry.host}${req.url.pathname}${req.url.search}`);
      return send({ ...rest, url, credentialOrigin: url.origin });
    }, req.signal);
  };
}
