import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortedError, DigestMismatchError, InvalidArgumentError, NotFoundError, ResourceExhaustedError, SizeMismatchError,
  StowageError, UnauthorizedError, UnavailableError, isStowageError, stowageErrorOf, throwIfAborted,
} from '../errors/index.js';
import {
  MANIFEST_ACCEPT, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, MediaType, baseMediaType, digestOf, isDigest, parseDigest, parseImageConfig,
  parseManifest, parseNormalizedNamed, referenceString, tagNameOnly, type Descriptor, type Digest, type ImageConfig,
  type NamedReference, type ParsedManifest, type Reference,
} from '../oci/index.js';
import type { Provider } from '../content/index.js';
import { Authorizer, pullScope } from './auth.js';
import { chainCredentials, dockerConfigCredentials, staticCredentials, type CredentialSource, type Credentials } from './credentials.js';
import { errorFromResponse } from './errors.js';
import { HostSchemes, apiHost, isCertificateError } from './hosts.js';
import { manifestAcceptHeader, parseNextLink } from './protocol.js';
import { fetchBlobInto, type BlobSink, type FetchBlobOptions, type FetchBlobResult } from './fetch.js';
import { pullGraph, pullImage, type PullOptions, type PullResult, type PullSink } from './pull.js';
import { pushBlob, pushImage, pushManifest, type PushBlobOptions, type PushBlobStatus, type PushOptions, type PushResult } from './push.js';
import { BODY_READ_FAILED, discard, header, nodeTransport, readBody, redactUrl, type HttpRequest, type HttpResponse, type Transport } from './transport.js';

/** A repository on a registry: what every API path is built from. */
export interface Repository {
  /** The reference's domain (`docker.io`, `127.0.0.1:5000`). */
  domain: string;
  /** The API host (`registry-1.docker.io` for docker.io). */
  host: string;
  /** The repository path (`library/alpine`). */
  path: string;
  /**
   * The scheme known for the host when this was made. Loopback and insecure hosts are settled by their
   * first request (HTTPS, else HTTP); request() and baseUrl() always use the client's settled scheme.
   */
  scheme: 'http' | 'https';
}

export interface RetryOptions {
  /** Attempts per request, first included. Default 5. */
  attempts?: number;
  /** First backoff delay; doubled each time, with jitter. Default 200 ms. */
  baseDelayMs?: number;
  /** Cap for one backoff delay (and for Retry-After). Default 10 s. */
  maxDelayMs?: number;
}

export interface RegistryClientOptions {
  /** A credential lookup, or fixed credentials by host. Default: docker's config file. */
  credentials?: CredentialSource | Record<string, Credentials>;
  /**
   * Hosts (`host[:port]` or bare hostnames) that may be spoken to without verified TLS, as loopback hosts
   * always may: HTTPS without certificate checks first, plain HTTP when that fails (docker's behaviour).
   */
  insecureRegistries?: string[];
  /** Blobs transferred at once by pull and push. Default 3. */
  concurrency?: number;
  userAgent?: string;
  /** Replaces the HTTP layer (tests, proxies). */
  transport?: Transport;
  retry?: RetryOptions;
  /** Push: blobs up to this size go in one PUT; larger ones in PATCH chunks. Default 32 MiB. */
  monolithicThreshold?: number;
  /** Push: PATCH chunk size. Default 16 MiB. */
  chunkSize?: number;
}

export interface RequestOptions {
  method: string;
  /** An absolute URL (upload Locations) or a path below the registry root (`/v2/...`). */
  url: string | URL;
  headers?: Record<string, string>;
  body?: HttpRequest['body'];
  /** Scopes the request needs (`repository:x:pull`). */
  scopes: string[];
  signal?: AbortSignal;
  /** Follow redirects (GET/HEAD); default true for GET/HEAD. */
  followRedirects?: boolean;
  /** Statuses returned to the caller instead of being retried (e.g. 416 for a Range probe). */
  noRetryStatuses?: number[];
}

const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
const MAX_REDIRECTS = 10;

export const DEFAULT_USER_AGENT = 'stowage/0.1';

export interface Resolved {
  /** Canonical reference string (`docker.io/library/alpine:latest`). */
  name: string;
  ref: NamedReference;
  repository: Repository;
  descriptor: Descriptor;
}

/** Is this a network-level failure worth retrying (connection reset, refused, timed out…)? */
export function isTransientNetworkError(e: unknown): boolean {
  if (isStowageError(e)) return isStowageError(e, 'Unavailable');
  const code = (e as NodeJS.ErrnoException)?.code ?? '';
  return ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE'].includes(code)
    || /socket hang up|aborted|premature close/i.test((e as Error)?.message ?? '');
}

function retryAfterMs(res: HttpResponse): number | undefined {
  const v = header(res, 'retry-after');
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

/**
 * The registry client: references to repositories, an authorised request with retries and safe
 * redirects, resolve, and verified manifest/config fetches. Blob transfer, pull and push are small
 * functions over this (fetch.ts, pull.ts, push.ts), also exposed as methods here.
 */
export class RegistryClient {
  readonly transport: Transport;
  readonly authorizer: Authorizer;
  readonly userAgent: string;
  readonly concurrency: number;
  readonly insecureRegistries: readonly string[];
  readonly retry: Required<RetryOptions>;
  readonly monolithicThreshold: number;
  readonly chunkSize: number;
  /** The scheme settled per host (one HTTPS probe per loopback/insecure host for the client's lifetime). */
  readonly schemes: HostSchemes;
  private readonly manifestCache = new Map<Digest, Buffer>();

  constructor(opts: RegistryClientOptions = {}) {
    this.transport = opts.transport ?? nodeTransport();
    this.userAgent = opts.userAgent ?? DEFAULT_USER_AGENT;
    this.concurrency = Number.isFinite(opts.concurrency) ? Math.max(1, Math.floor(opts.concurrency!)) : 3;
    this.insecureRegistries = opts.insecureRegistries ?? [];
    this.schemes = new HostSchemes(this.insecureRegistries, this.transport.reportsTlsFailures === true);
    this.retry = { attempts: 5, baseDelayMs: 200, maxDelayMs: 10_000, ...opts.retry };
    this.monolithicThreshold = opts.monolithicThreshold ?? 32 * 1024 * 1024;
    this.chunkSize = opts.chunkSize ?? 16 * 1024 * 1024;
    const creds = opts.credentials;
    const source: CredentialSource = creds === undefined ? dockerConfigCredentials()
      : typeof creds === 'function' ? creds : chainCredentials(staticCredentials(creds));
    this.authorizer = new Authorizer({ credentials: source, transport: this.transport, userAgent: this.userAgent });
  }

  /** The repository a reference names, with the API host and scheme settled. */
  repository(ref: string | Pick<Reference, 'domain' | 'path'>): Repository {
    const r = typeof ref === 'string' ? parseNormalizedNamed(ref) : ref;
    if (!r.domain || !r.path) throw new InvalidArgumentError('reference has no repository name', { reference: JSON.stringify(ref) });
    const host = apiHost(r.domain);
    return { domain: r.domain, host, path: r.path, scheme: this.schemes.current(host) };
  }

  baseUrl(repo: Pick<Repository, 'host' | 'scheme'>): string {
    return `${this.schemes.isInsecure(repo.host) ? this.schemes.current(repo.host) : repo.scheme}://${repo.host}`;
  }

  /**
   * The origin credentials go to: the registry host over the scheme settled for it. For a loopback or
   * insecure host that may be http: docker sends an insecure registry its credentials over whichever scheme
   * answered, and it is the same registry. The other scheme of the same host is another origin and gets
   * none (a redirect from https to http on the registry host travels without credentials).
   */
  private registryOrigin(repo: Pick<Repository, 'host' | 'scheme'>): string {
    return new URL(this.baseUrl(repo)).origin;
  }

  /** Backoff before attempt `n` (1-based retry count): exponential with full jitter, capped. */
  backoffMs(n: number, hint?: number): number {
    if (hint !== undefined) return Math.min(hint, this.retry.maxDelayMs);
    const exp = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (n - 1));
    return exp / 2 + Math.random() * (exp / 2);
  }

  /**
   * One logical request: adds credentials only for the registry host, follows redirects without them
   * when the target is another host, answers 401 challenges, and retries transient failures (network
   * errors, 408/429/5xx with Retry-After) with exponential backoff. Non-2xx answers that are not retried
   * are returned to the caller, who decides what they mean.
   */
  async request(repo: Repository, o: RequestOptions): Promise<HttpResponse> {
    const method = o.method.toUpperCase();
    // A path below the registry root takes the host's scheme, which its first request may still have to settle.
    const path = typeof o.url === 'string' && o.url.startsWith('/') ? o.url : undefined;
    const start = path !== undefined ? new URL(`${this.baseUrl(repo)}${path}`) : new URL(String(o.url));
    const follow = o.followRedirects ?? (method === 'GET' || method === 'HEAD');
    let authRetries = 0;
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(o.signal);
      let res: HttpResponse;
      try {
        res = await this.sendFollowing(repo, method, path ?? start, o, follow);
      } catch (e) {
        if (isStowageError(e, 'Aborted') || o.signal?.aborted) throw e instanceof StowageError ? e : new AbortedError('request aborted', {}, { cause: e });
        if (isStowageError(e) && !isStowageError(e, 'Unavailable')) throw e;
        if (isCertificateError(e)) {
          // Retrying cannot make a certificate trusted: say so at once, typed, with Node's code.
          throw new UnavailableError(`${method} ${redactUrl(start)}: TLS certificate not trusted: ${(e as Error).message}`,
            { url: redactUrl(start), reason: 'tls-certificate', tlsCode: (e as NodeJS.ErrnoException).code }, { cause: e });
        }
        if (attempt >= this.retry.attempts || !isTransientNetworkError(e)) {
          throw new UnavailableError(`${method} ${redactUrl(start)}: ${(e as Error).message}`, { url: redactUrl(start), attempts: attempt }, { cause: e });
        }
        await sleep(this.backoffMs(attempt), undefined, { signal: o.signal }).catch(() => { throwIfAborted(o.signal); });
        continue;
      }
      if (res.status === 401 && new URL(res.url).origin === this.registryOrigin(repo)) {
        // At most a few fresh credentials per request: a registry that keeps moving its realm gets no loop.
        const again = authRetries < 3 && await this.authorizer.unauthorized(repo.host, res, o.scopes, authRetries > 0);
        if (again) { authRetries++; attempt--; continue; }
        return res; // the caller turns it into Unauthorized with its own words
      }
      if (RETRY_STATUSES.has(res.status) && !o.noRetryStatuses?.includes(res.status) && attempt < this.retry.attempts) {
        const wait = this.backoffMs(attempt, retryAfterMs(res));
        discard(res.body);
        await sleep(wait, undefined, { signal: o.signal }).catch(() => { throwIfAborted(o.signal); });
        continue;
      }
      return res;
    }
  }

  /**
   * `target` is a path below the registry root (its first hop settles the host's scheme if needed: only that
   * hop is the probe, a redirect target's failure never is) or an absolute URL.
   */
  private async sendFollowing(repo: Repository, method: string, target: string | URL, o: RequestOptions, follow: boolean): Promise<HttpResponse> {
    let current = typeof target === 'string' ? new URL(`${this.baseUrl(repo)}${target}`) : target;
    const url = current;
    for (let hop = 0; ; hop++) {
      const res = typeof target === 'string' && hop === 0
        ? await this.schemes.use(repo.host, (scheme) => {
          current = new URL(`${scheme}://${repo.host}${target}`);
          return this.exchange(repo, method, current, o, current.origin);
        }, o.signal)
        : await this.exchange(repo, method, current, o, this.registryOrigin(repo));
      const loc = header(res, 'location');
      if (follow && loc && [301, 302, 303, 307, 308].includes(res.status)) {
        discard(res.body);
        if (hop >= MAX_REDIRECTS) throw new UnavailableError(`too many redirects fetching ${redactUrl(url)}`, { url: redactUrl(url) });
        // new URL keeps a presigned query byte for byte.
        current = new URL(loc, current);
        if (current.protocol !== 'http:' && current.protocol !== 'https:') throw new InvalidArgumentError(`refusing redirect to ${current.protocol} URL`);
        continue;
      }
      return res;
    }
  }

  /** One transport exchange; `registryOrigin` is the one origin that gets the registry's credentials. */
  private async exchange(repo: Repository, method: string, url: URL, o: RequestOptions, registryOrigin: string): Promise<HttpResponse> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...o.headers };
    // Credentials go to the registry origin only: never to storage hosts, foreign upload Locations or realms.
    if (url.origin === registryOrigin) {
      const auth = await this.authorizer.header(repo.host, o.scopes, o.signal);
      if (auth) headers.authorization = auth;
    }
    // Unverified TLS only for a URL whose own host is loopback or listed insecure, never for others
    // (a redirect from an insecure registry to a public storage host is verified).
    const skipTlsVerify = url.protocol === 'https:' && this.schemes.isInsecure(url.host);
    return this.transport({ method, url, headers, body: o.body, signal: o.signal, ...(skipTlsVerify ? { skipTlsVerify } : {}) });
  }

  /** Turns a non-2xx answer into a typed error, rewording 401s the way docker does for pulls. */
  async fail(res: HttpResponse, what: string, repo?: Repository): Promise<never> {
    const e = await errorFromResponse(res, what);
    if (res.status === 401 && repo) {
      throw new UnauthorizedError(`pull access denied for ${repo.domain}/${repo.path}, repository does not exist or may require authorization: ${e.message}`, e.data, { cause: e });
    }
    throw e;
  }

  /**
   * Resolves a reference to the descriptor of its manifest or index: HEAD first (trusting
   * Docker-Content-Digest only with a Content-Length), GET when HEAD cannot answer (405, 403, no digest),
   * hashing the body. Schema 1 is refused; digests are always verified; sizes capped.
   */
  async resolve(reference: string | Reference, opts: { signal?: AbortSignal } = {}): Promise<Resolved> {
    const parsed = typeof reference === 'string' ? parseNormalizedNamed(reference) : reference;
    const ref = tagNameOnly(parsed) as NamedReference;
    const repo = this.repository(ref);
    const target = ref.digest ?? ref.tag!;
    if (ref.digest !== undefined) parseDigest(ref.digest);
    const path = `/v2/${repo.path}/manifests/${target}`;
    const accept = manifestAcceptHeader();
    const scopes = [pullScope(repo.path)];
    const name = referenceString(ref);

    const head = await this.request(repo, { method: 'HEAD', url: path, headers: { accept }, scopes, signal: opts.signal });
    discard(head.body);
    if (head.status === 404) {
      if (ref.digest) return this.resolveFromBlobs(repo, ref, name, opts.signal);
      throw new NotFoundError(`${name}: not found`, { reference: name });
    }
    if (head.status === 401) await this.fail(head, `resolving ${name}`, repo);
    if (head.status === 200) {
      const mt = baseMediaType(header(head, 'content-type'));
      const dcd = header(head, 'docker-content-digest');
      const len = header(head, 'content-length');
      if (mt === MediaType.DockerManifestV1 || mt === MediaType.DockerManifestV1Signed) parseManifest('{}', mt); // throws NotImplemented
      const size = len !== undefined ? Number(len) : NaN;
      if (Number.isSafeInteger(size) && size > MAX_MANIFEST_SIZE) {
        throw new ResourceExhaustedError(`${name}: manifest is ${size} bytes, over the ${MAX_MANIFEST_SIZE}-byte limit`, { reference: name, size });
      }
      const digest = ref.digest ?? dcd;
      if (digest && isDigest(digest) && Number.isSafeInteger(size) && size > 0 && (MANIFEST_ACCEPT as readonly string[]).includes(mt)) {
        if (ref.digest && dcd && dcd !== ref.digest) throw new DigestMismatchError(`${name}: registry answered digest ${dcd}`, { expected: ref.digest, digest: dcd });
        return { name, ref, repository: repo, descriptor: { mediaType: mt, digest: digest as Digest, size } };
      }
    }
    // HEAD could not answer (405 without HEAD support, 403 or other errors without a body, no digest):
    // GET gives the content, or the registry's own words for the error.

    const get = await this.request(repo, { method: 'GET', url: path, headers: { accept }, scopes, signal: opts.signal });
    if (get.status === 404) {
      discard(get.body);
      if (ref.digest) return this.resolveFromBlobs(repo, ref, name, opts.signal);
      throw new NotFoundError(`${name}: not found`, { reference: name });
    }
    if (get.status !== 200) await this.fail(get, `resolving ${name}`, repo);
    const bytes = await readBody(get.body, MAX_MANIFEST_SIZE);
    if (!bytes) throw new ResourceExhaustedError(`${name}: manifest over the ${MAX_MANIFEST_SIZE}-byte limit`, { reference: name });
    // Hash with the reference's algorithm (name@sha512:… is valid), sha256 for a tag.
    const digest = digestOf(bytes, ref.digest ? parseDigest(ref.digest).algorithm : 'sha256');
    if (ref.digest && ref.digest !== digest) {
      throw new DigestMismatchError(`${name}: manifest content has digest ${digest}`, { expected: ref.digest, digest });
    }
    const dcd = header(get, 'docker-content-digest');
    if (!ref.digest && dcd && isDigest(dcd) && parseDigest(dcd).algorithm === 'sha256' && dcd !== digest) {
      throw new DigestMismatchError(`${name}: Docker-Content-Digest ${dcd} does not match the content's ${digest}`, { expected: dcd, digest });
    }
    const parsedManifest = parseManifest(bytes, header(get, 'content-type'));
    this.rememberManifest(digest, bytes);
    return { name, ref, repository: repo, descriptor: { mediaType: parsedManifest.mediaType, digest, size: bytes.length } };
  }

  /**
   * containerd's FetchByDigest fallback: a digest the manifests endpoint does not know (404) may still be
   * stored as a plain blob of the repository (registries that keep referrers or foreign manifests that
   * way). The blob endpoint answers application/octet-stream, so the media type comes from the JSON itself.
   */
  private async resolveFromBlobs(repo: Repository, ref: NamedReference, name: string, signal?: AbortSignal): Promise<Resolved> {
    const digest = ref.digest as Digest;
    const bytes = await this.manifestBlob(repo, digest, MAX_MANIFEST_SIZE, signal);
    if (!bytes) throw new NotFoundError(`${name}: not found`, { reference: name });
    const parsed = parseManifest(bytes);
    this.rememberManifest(digest, bytes);
    return { name, ref, repository: repo, descriptor: { mediaType: parsed.mediaType, digest, size: bytes.length } };
  }

  /**
   * GET /v2/<name>/blobs/<digest> for a manifest: at most `cap` bytes, verified against the digest.
   * Undefined when the registry has no such blob either.
   */
  private async manifestBlob(repo: Repository, digest: Digest, cap: number, signal?: AbortSignal): Promise<Buffer | undefined> {
    const res = await this.request(repo, {
      method: 'GET', url: `/v2/${repo.path}/blobs/${digest}`, headers: { accept: [...MANIFEST_ACCEPT, '*/*'].join(', ') },
      scopes: [pullScope(repo.path)], signal,
    });
    if (res.status === 404) { discard(res.body); return undefined; }
    if (res.status !== 200) await this.fail(res, `fetching ${digest}`, repo);
    const len = Number(header(res, 'content-length'));
    if (Number.isSafeInteger(len) && len > cap) {
      discard(res.body);
      throw new ResourceExhaustedError(`${digest}: blob is ${len} bytes, over the ${cap}-byte limit for a manifest`, { digest, size: len, limit: cap });
    }
    const bytes = await readBody(res.body, cap);
    if (!bytes) throw new ResourceExhaustedError(`${digest}: blob is over the ${cap}-byte limit for a manifest`, { digest, limit: cap });
    const got = digestOf(bytes, parseDigest(digest).algorithm);
    if (got !== digest) throw new DigestMismatchError(`${digest}: content has digest ${got}`, { expected: digest, digest: got });
    return bytes;
  }

  private rememberManifest(digest: Digest, bytes: Buffer): void {
    this.manifestCache.set(digest, bytes);
    if (this.manifestCache.size > 64) this.manifestCache.delete(this.manifestCache.keys().next().value!);
  }

  /**
   * Fetches bytes of a small blob (manifest, index, config) by descriptor, read whole but never beyond
   * `cap` nor the descriptor's size, and verified against its digest and size.
   */
  async fetchBytes(repo: Repository, desc: Descriptor, cap: number, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    // request() retries until the headers arrive; a connection lost in the body is retried here.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.fetchBytesOnce(repo, desc, cap, opts);
      } catch (e) {
        if (!isStowageError(e, 'Unavailable') || stowageErrorOf(e)?.data.reason !== BODY_READ_FAILED || attempt >= this.retry.attempts || opts.signal?.aborted) throw e;
        await sleep(this.backoffMs(attempt), undefined, { signal: opts.signal }).catch(() => { throwIfAborted(opts.signal); });
      }
    }
  }

  private async fetchBytesOnce(repo: Repository, desc: Descriptor, cap: number, opts: { signal?: AbortSignal }): Promise<Buffer> {
    if (desc.size > cap) throw new ResourceExhaustedError(`${desc.digest}: ${desc.size} bytes is over the ${cap}-byte limit for ${desc.mediaType}`, { digest: desc.digest, size: desc.size, limit: cap });
    const isManifest = (MANIFEST_ACCEPT as readonly string[]).includes(desc.mediaType);
    const cached = isManifest ? this.manifestCache.get(desc.digest) : undefined;
    if (cached && cached.length === desc.size) return cached;
    const url = `/v2/${repo.path}/${isManifest ? 'manifests' : 'blobs'}/${desc.digest}`;
    const accept = isManifest ? manifestAcceptHeader(desc.mediaType) : `${desc.mediaType}, */*`;
    const res = await this.request(repo, { method: 'GET', url, headers: { accept }, scopes: [pullScope(repo.path)], signal: opts.signal });
    if (res.status === 404 && isManifest) {
      // Fetching by digest: a manifest the manifests endpoint does not know may be stored as a blob.
      discard(res.body);
      const blob = await this.manifestBlob(repo, desc.digest, desc.size, opts.signal);
      if (!blob) throw new NotFoundError(`${desc.digest}: manifest unknown`, { digest: desc.digest });
      if (blob.length !== desc.size) throw new SizeMismatchError(`${desc.digest}: got ${blob.length} bytes, expected ${desc.size}`, { digest: desc.digest, size: blob.length, expected: desc.size });
      this.rememberManifest(desc.digest, blob);
      return blob;
    }
    if (res.status !== 200) await this.fail(res, `fetching ${desc.digest}`, repo);
    const bytes = await readBody(res.body, desc.size);
    if (!bytes) throw new SizeMismatchError(`${desc.digest}: registry sent more than the ${desc.size} bytes the descriptor says`, { digest: desc.digest, size: desc.size });
    if (bytes.length !== desc.size) throw new SizeMismatchError(`${desc.digest}: got ${bytes.length} bytes, expected ${desc.size}`, { digest: desc.digest, size: bytes.length, expected: desc.size });
    const digest = digestOf(bytes, parseDigest(desc.digest).algorithm);
    if (digest !== desc.digest) throw new DigestMismatchError(`${desc.digest}: content has digest ${digest}`, { expected: desc.digest, digest });
    if (isManifest) this.rememberManifest(desc.digest, bytes);
    return bytes;
  }

  /** A manifest or index by descriptor: verified, capped at 4 MiB, parsed. */
  async fetchManifest(repo: Repository, desc: Descriptor, opts: { signal?: AbortSignal } = {}): Promise<{ bytes: Buffer; parsed: ParsedManifest }> {
    const bytes = await this.fetchBytes(repo, desc, MAX_MANIFEST_SIZE, opts);
    return { bytes, parsed: parseManifest(bytes, desc.mediaType) };
  }

  /** An image config by descriptor: verified, capped at MAX_CONFIG_SIZE, parsed. */
  async fetchConfig(repo: Repository, desc: Descriptor, opts: { signal?: AbortSignal } = {}): Promise<{ bytes: Buffer; config: ImageConfig }> {
    const bytes = await this.fetchBytes(repo, desc, MAX_CONFIG_SIZE, opts);
    return { bytes, config: parseImageConfig(bytes) };
  }

  /** Lists tags (`/v2/<name>/tags/list`), following `Link` pagination. */
  async listTags(repository: string | Repository, opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    const repo = typeof repository === 'string' ? this.repository(repository) : repository;
    const tags: string[] = [];
    let url: string = `/v2/${repo.path}/tags/list`;
    for (let page = 0; page < 1000; page++) {
      const res = await this.request(repo, { method: 'GET', url, scopes: [pullScope(repo.path)], signal: opts.signal });
      if (res.status !== 200) await this.fail(res, `listing tags of ${repo.path}`, repo);
      const body = await readBody(res.body, 16 * 1024 * 1024);
      if (!body) throw new ResourceExhaustedError(`tag list of ${repo.path} is over 16 MiB`, { repository: repo.path });
      let v: { tags?: unknown };
      try { v = JSON.parse(body.toString('utf8')) as { tags?: unknown }; } catch (e) {
        throw new InvalidArgumentError(`tag list of ${repo.path}: invalid JSON: ${(e as Error).message}`, { repository: repo.path }, { cause: e });
      }
      if (v.tags != null && !(Array.isArray(v.tags) && v.tags.every((t) => typeof t === 'string'))) {
        throw new InvalidArgumentError(`tag list of ${repo.path}: "tags" is not a list of strings`, { repository: repo.path });
      }
      tags.push(...((v.tags ?? []) as string[]));
      const next = parseNextLink(header(res, 'link'));
      if (!next) break;
      url = new URL(next, this.baseUrl(repo)).toString();
    }
    return tags;
  }

  /** Checks credentials against a registry's `/v2/` (docker login's check). Unauthorized when refused. */
  async checkLogin(host: string, creds: Credentials, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const api = apiHost(host);
    const repo: Repository = { domain: host, host: api, path: '', scheme: this.schemes.current(api) };
    this.authorizer.setCredentials(api, creds);
    let res: HttpResponse;
    try {
      res = await this.request(repo, { method: 'GET', url: '/v2/', scopes: [], signal: opts.signal });
    } catch (e) {
      if (isStowageError(e, 'Unauthorized')) throw new UnauthorizedError(`login to ${host} failed: ${e.message}`, stowageErrorOf(e)!.data, { cause: e });
      throw e;
    }
    discard(res.body);
    if (res.status === 401) throw new UnauthorizedError(`login to ${host} failed: unauthorized: incorrect username or password`, { host });
    if (res.status !== 200) throw new UnavailableError(`login to ${host}: registry answered ${res.status}`, { host, status: res.status });
  }

  // ---- transfers (small functions in fetch.ts, pull.ts, push.ts; methods here for convenience)

  /** Streams one blob into the store's ingest (resume, retries, verified commit). */
  fetchBlobInto(store: BlobSink, repo: Repository, desc: Descriptor, opts?: FetchBlobOptions): Promise<FetchBlobResult> {
    return fetchBlobInto(this, repo, store, desc, opts);
  }

  /** Pulls the graph under a resolved descriptor into the store. */
  pullGraph(repo: Repository, root: Descriptor, store: PullSink, opts?: PullOptions): Promise<PullResult> {
    return pullGraph(this, repo, root, store, opts);
  }

  /** Resolve + pullGraph: `docker pull` without unpacking. */
  pull(reference: string | Reference, store: PullSink, opts?: PullOptions): Promise<PullResult & { name: string; repository: Repository }> {
    return pullImage(this, reference, store, opts);
  }

  pushBlob(repo: Repository, provider: Provider, desc: Descriptor, opts?: PushBlobOptions): Promise<PushBlobStatus> {
    return pushBlob(this, repo, provider, desc, opts);
  }

  pushManifest(repo: Repository, bytes: Buffer, mediaType: string, reference: string, opts?: { signal?: AbortSignal }): Promise<Descriptor> {
    return pushManifest(this, repo, bytes, mediaType, reference, opts);
  }

  /** Pushes the graph under `root` from the provider to a tag or digest reference. */
  push(reference: string | Reference, provider: Provider, root: Descriptor, opts?: PushOptions): Promise<PushResult> {
    return pushImage(this, reference, provider, root, opts);
  }
}
