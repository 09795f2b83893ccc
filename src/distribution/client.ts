import { InvalidArgumentError, UnauthorizedError, UnavailableError, isStowageError, stowageErrorOf } from '../errors/index.js';
import {
  MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, parseImageConfig, parseManifest, parseNormalizedNamed, tagNameOnly,
  type Descriptor, type ImageConfig, type NamedReference, type ParsedManifest, type Reference,
} from '../oci/index.js';
import type { Provider } from '../content/index.js';
import type { ManifestAccess, Repository, RequestOptions, TransferSettings } from './access.js';
import { Authorizer, pullScope } from './auth.js';
import { chainCredentials, dockerConfigCredentials, staticCredentials, type CredentialSource, type Credentials } from './credentials.js';
import {
  DEFAULT_CHUNK_SIZE, DEFAULT_CONCURRENCY, DEFAULT_MONOLITHIC_THRESHOLD, DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_BASE_DELAY_MS,
  DEFAULT_RETRY_MAX_DELAY_MS, DEFAULT_USER_AGENT,
} from './defaults.js';
import { fetchBlobInto, type BlobSink, type FetchBlobOptions, type FetchBlobResult } from './fetch.js';
import { HostSchemes, apiHost } from './hosts.js';
import { ManifestReader, type Resolved } from './manifests.js';
import { jsonPages } from './pages.js';
import { pullGraph, type PullOptions, type PullResult, type PullSink } from './pull.js';
import { pushBlob, pushGraph, pushManifest, type PushBlobOptions, type PushBlobStatus, type PushOptions, type PushResult } from './push.js';
import type { RetryOptions } from './retry.js';
import { registryStack } from './stack.js';
import { discard, nodeTransport, type HttpResponse, type RoundTripper, type Transport } from './transport.js';

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

/**
 * The registry client, the friendly face over the distribution floor: references to repositories, one
 * request through the composed HTTP layers (stack.ts), resolve, verified manifest and config fetches with a
 * small cache, tags and the login check. Blob transfer, the pull graph and push are functions over the
 * narrow RepositoryAccess / ManifestAccess interfaces it implements (fetch.ts, pull.ts, push.ts), also
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
  private readonly manifests: ManifestReader;

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
    this.manifests = new ManifestReader(this);
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
  async request(repo: Repository, o: RequestOptions): Promise<HttpResponse> {
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
   * Resolves a reference to the descriptor of its manifest or index (HEAD first, GET when HEAD cannot
   * answer; schema 1 refused, digests verified, sizes capped).
   */
  async resolve(reference: string | Reference, opts: { signal?: AbortSignal } = {}): Promise<Resolved> {
    const parsed = typeof reference === 'string' ? parseNormalizedNamed(reference) : reference;
    const ref = tagNameOnly(parsed) as NamedReference;
    return this.manifests.resolve(this.repository(ref), ref, opts);
  }

  /**
   * Fetches bytes of a small blob (manifest, index, config) by descriptor, read whole but never beyond
   * `cap` nor the descriptor's size, and verified against its digest and size.
   */
  fetchBytes(repo: Repository, desc: Descriptor, cap: number, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    return this.manifests.fetchBytes(repo, desc, cap, opts);
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
      if (isStowageError(e, 'Unauthorized')) throw new UnauthorizedError(`login to ${host} failed: ${e.message}`, stowageErrorOf(e)!.data, { cause: e });
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
  async push(reference: string | Reference, provider: Provider, root: Descriptor, opts?: PushOptions): Promise<PushResult> {
    const parsed = typeof reference === 'string' ? parseNormalizedNamed(reference) : reference;
    const ref = tagNameOnly(parsed) as NamedReference;
    return pushGraph(this, this.repository(ref), ref, provider, root, opts);
  }
}
