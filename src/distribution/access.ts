import type { Descriptor } from '../oci/index.js';
import type { RetrySettings } from './retry.js';
import type { HttpRequest, HttpResponse } from './transport.js';

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
   * first request (HTTPS, else HTTP); requests always use the client's settled scheme.
   */
  scheme: 'http' | 'https';
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

/** How transfers behave: how many blobs at once, how often to try, how pushes cut blobs. */
export interface TransferSettings {
  /** Blobs transferred at once by pull and push. */
  concurrency: number;
  retry: RetrySettings;
  /** Push: blobs up to this size go in one PUT; larger ones in PATCH chunks. */
  monolithicThreshold: number;
  /** Push: PATCH chunk size. */
  chunkSize: number;
}

/**
 * What blob transfers (fetch, push) need to reach a repository: one request through the client's layers
 * (credentials, retries, redirects, scheme), and the transfer settings. The RegistryClient is one.
 */
export interface RepositoryAccess {
  request(repo: Repository, o: RequestOptions): Promise<HttpResponse>;
  readonly settings: TransferSettings;
}

/** What pulling a graph needs besides: small documents (manifests, indexes, configs) by descriptor, capped and verified. */
export interface ManifestAccess extends RepositoryAccess {
  fetchBytes(repo: Repository, desc: Descriptor, cap: number, opts?: { signal?: AbortSignal }): Promise<Buffer>;
}
