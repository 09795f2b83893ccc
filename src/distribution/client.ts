import {
  DigestMismatchError, InvalidArgumentError, NotFoundError, ResourceExhaustedError, SizeMismatchError,
  UnauthorizedError, UnavailableError, isStowageError,
} from '../errors/index.js';
import {
  MANIFEST_ACCEPT, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, MediaType, baseMediaType, digestOf, isDigest, parseDigest, parseImageConfig,
  parseManifest, parseNormalizedNamed, referenceString, tagNameOnly, type Descriptor, type Digest, type ImageConfig,
  type NamedReference, type ParsedManifest, type Reference,
} from '../oci/index.js';
import type { Provider } from '../content/index.js';
import type { ManifestAccess, Repository, RequestOptions, TransferSettings } from './access.js';
import { Authorizer, pullScope } from './auth.js';
import { chainCredentials, dockerConfigCredentials, staticCredentials, type CredentialSource, type Credentials } from './credentials.js';
import {
  DEFAULT_CHUNK_SIZE, DEFAULT_CONCURRENCY, DEFAULT_MONOLITHIC_THRESHOLD, DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_BASE_DELAY_MS,
  DEFAULT_RETRY_MAX_DELAY_MS, DEFAULT_USER_AGENT, MANIFEST_CACHE_ENTRIES,
} from './defaults.js';
import { failResponse } from './errors.js';
import { HostSchemes, apiHost } from './hosts.js';
import { jsonPages } from './pages.js';
import { manifestAcceptHeader } from './protocol.js';
import { fetchBlobInto, type BlobSink, type FetchBlobOptions, type FetchBlobResult } from './fetch.js';
import { pullGraph, type PullOptions, type PullResult, type PullSink } from './pull.js';
import { pushBlob, pushGraph, pushManifest, type PushBlobOptions, type PushBlobStatus, type PushOptions, type PushResult } from './push.js';
import { backoffMs, pause, type RetryOptions } from './retry.js';
import { registryStack } from './stack.js';
import { BODY_READ_FAILED, discard, header, nodeTransport, readBody, type HttpResponse, type RoundTripper, type Transport } from './transport.js';

export interface RegistryClientOptions {
  /** A credential lookup, or fixed credentials by host. Default: docker's config file. */
  credentials?: CredentialSource | Record<string, Credentials>;
  /**
   * Hosts (`host[:port]` or bare hostnames) that may be spoken to without verified TLS, as loopback hosts
   * always may: HTTPS without certificate checks first, plain HTTP when that fails (docker's behaviour).
   */
  insecureRegistries?: string[];
  /** Blobs transferred at once by pull and push. Default DEFAULT_CONCURRENCY (3). */
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

export interface Resolved {
  /** Canonical reference string (`docker.io/library/alpine:latest`). */
  name: string;
  ref: NamedReference;
  repository: Repository;
  descriptor: Descriptor;
}

/**
 * The registry client, the friendly face over the distribution floor: references to repositories, one
 * request through the composed HTTP layers (stack.ts), resolve, verified manifest and config fetches with a
 * small cache, tags and the login check. Blob transfer, the pull graph and push are functions over the
 * narrow RegistryAccess / ManifestAccess interfaces it implements (fetch.ts, pull.ts, push.ts), also
 * offered here as methods.
 */
export class RegistryClient implements ManifestAccess {
  readonly transport: Transport;
  readonly authorizer: Authorizer;
  readonly userAgent: string;
  readonly insecureRegistries: readonly string[];
  readonly settings: TransferSettings;
  /** The scheme settled per host (one HTTPS probe per loopback/insecure host for the client's lifetime). */
  readonly schemes: HostSchemes;
  private readonly roundTrip: RoundTripper;
  private readonly manifestCache = new Map<Digest, Buffer>();

  constructor(opts: RegistryClientOptions = {}) {
    this.transport = opts.transport ?? nodeTransport();
    this.userAgent = opts.userAgent ?? DEFAULT_USER_AGENT;
    this.insecureRegistries = opts.insecureRegistries ?? [];
    this.schemes = new HostSchemes(this.insecureRegistries, this.transport.reportsTlsFailures === true);
    this.settings = {
      concurrency: Number.isFinite(opts.concurrency) ? Math.max(1, Math.floor(opts.concurrency!)) : DEFAULT_CONCURRENCY,
      retry: { attempts: DEFAULT_RETRY_ATTEMPTS, baseDelayMs: DEFAULT_RETRY_BASE_DELAY_MS, maxDelayMs: DEFAULT_RETRY_MAX_DELAY_MS, ...opts.retry },
      monolithicThreshold: opts.monolithicThreshold ?? DEFAULT_MONOLITHIC_THRESHOLD,
      chunkSize: opts.chunkSize ?? DEFAULT_CHUNK_SIZE,
    };
    const creds = opts.credentials;
    const source: CredentialSource = creds === undefined ? dockerConfigCredentials()
      : typeof creds === 'function' ? creds : chainCredentials(staticCredentials(creds));
    this.authorizer = new Authorizer({ credentials: source, transport: this.transport, userAgent: this.userAgent });
    this.roundTrip = registryStack({ transport: this.transport, authorizer: this.authorizer, schemes: this.schemes, userAgent: this.userAgent, retry: this.settings.retry });
  }

  /** The repository a reference names, with the API host and scheme settled. */
  repository(ref: string | Pick<Reference, 'domain' | 'path'>): Repository {
    const r = typeof ref === 'string' ? parseNormalizedNamed(ref) : ref;
    if (!r.domain || !r.path) throw new InvalidArgumentError('reference has no repository name', { reference: JSON.stringify(ref) });
    const host = apiHost(r.domain);
    return { domain: r.domain, host, path: r.path, scheme: this.schemes.current(host) };
  }

  baseUrl(repo: Pick<Repository, 'host' | 'scheme'>): string {
    return this.schemes.baseUrl(repo);
  }

  /**
   * One logical request through the layers: credentials only for the registry's origin, redirects
   * followed without them to other hosts, 401 challenges answered, transient failures (network errors,
   * 408/429/5xx with Retry-After) retried with backoff. Non-2xx answers that are not retried are returned
   * to the caller, who decides what they mean.
   */
  request(repo: Repository, o: RequestOptions): Promise<HttpResponse> {
    // A path below the registry root takes the host's scheme, which its first request may still have to settle.
    const isPath = typeof o.url === 'string' && o.url.startsWith('/');
    const url = isPath ? new URL(`${this.baseUrl(repo)}${o.url as string}`) : new URL(String(o.url));
    return this.roundTrip({
      method: o.method.toUpperCase(), url, headers: o.headers ?? {}, body: o.body, signal: o.signal,
      registry: { host: repo.host, scheme: repo.scheme }, scopes: o.scopes,
      ...(isPath ? { settleScheme: true } : {}),
      ...(o.followRedirects !== undefined ? { followRedirects: o.followRedirects } : {}),
      ...(o.noRetryStatuses ? { noRetryStatuses: o.noRetryStatuses } : {}),
    });
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
    if (head.status === 401) await failResponse(head, `resolving ${name}`, repo);
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
    if (get.status !== 200) await failResponse(get, `resolving ${name}`, repo);
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
    if (res.status !== 200) await failResponse(res, `fetching ${digest}`, repo);
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
    if (this.manifestCache.size > MANIFEST_CACHE_ENTRIES) this.manifestCache.delete(this.manifestCache.keys().next().value!);
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
        if (!isStowageError(e, 'Unavailable') || e.data?.reason !== BODY_READ_FAILED || attempt >= this.settings.retry.attempts || opts.signal?.aborted) throw e;
        await pause(backoffMs(this.settings.retry, attempt), opts.signal);
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
    if (res.status !== 200) await failResponse(res, `fetching ${desc.digest}`, repo);
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
    for await (const page of jsonPages(this, repo, `/v2/${repo.path}/tags/list`, [pullScope(repo.path)], `listing tags of ${repo.path}`, opts.signal)) {
      const v = page as { tags?: unknown };
      if (v.tags != null && !(Array.isArray(v.tags) && v.tags.every((t) => typeof t === 'string'))) {
        throw new InvalidArgumentError(`tag list of ${repo.path}: "tags" is not a list of strings`, { repository: repo.path });
      }
      tags.push(...((v.tags ?? []) as string[]));
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
      if (isStowageError(e, 'Unauthorized')) throw new UnauthorizedError(`login to ${host} failed: ${e.message}`, e.data, { cause: e });
      throw e;
    }
    discard(res.body);
    if (res.status === 401) throw new UnauthorizedError(`login to ${host} failed: unauthorized: incorrect username or password`, { host });
    if (res.status !== 200) throw new UnavailableError(`login to ${host}: registry answered ${res.status}`, { host, status: res.status });
  }

  // ---- transfers: the functions of fetch.ts, pull.ts and push.ts over this client

  /** Streams one blob into the store's ingest (resume, retries, verified commit). */
  fetchBlobInto(store: BlobSink, repo: Repository, desc: Descriptor, opts?: FetchBlobOptions): Promise<FetchBlobResult> {
    return fetchBlobInto(this, repo, store, desc, opts);
  }

  /** Pulls the graph under a resolved descriptor into the store. */
  pullGraph(repo: Repository, root: Descriptor, store: PullSink, opts?: PullOptions): Promise<PullResult> {
    return pullGraph(this, repo, root, store, opts);
  }

  /** Resolve + pullGraph: `docker pull` without unpacking. */
  async pull(reference: string | Reference, store: PullSink, opts: PullOptions = {}): Promise<PullResult & { name: string; repository: Repository }> {
    const resolved = await this.resolve(reference, opts.signal ? { signal: opts.signal } : {});
    const r = await pullGraph(this, resolved.repository, resolved.descriptor, store, opts);
    return { ...r, name: resolved.name, repository: resolved.repository };
  }

  pushBlob(repo: Repository, provider: Provider, desc: Descriptor, opts?: PushBlobOptions): Promise<PushBlobStatus> {
    return pushBlob(this, repo, provider, desc, opts);
  }

  pushManifest(repo: Repository, bytes: Buffer, mediaType: string, reference: string, opts?: { signal?: AbortSignal }): Promise<Descriptor> {
    return pushManifest(this, repo, bytes, mediaType, reference, opts);
  }

  /** Pushes the graph under `root` from the provider to a tag or digest reference. */
  push(reference: string | Reference, provider: Provider, root: Descriptor, opts?: PushOptions): Promise<PushResult> {
    const parsed = typeof reference === 'string' ? parseNormalizedNamed(reference) : reference;
    const ref = tagNameOnly(parsed) as NamedReference;
    return pushGraph(this, this.repository(ref), ref, provider, root, opts);
  }
}
