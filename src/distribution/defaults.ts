/**
 * The distribution floor's defaults, named in one place: what the client, the transfers and the image
 * service fall back to when nothing else is configured.
 */

/** Blobs transferred at once per pull or push (docker's max-concurrent-downloads/uploads default). */
export const DEFAULT_CONCURRENCY = 3;

/** Attempts per request, the first included. */
export const DEFAULT_RETRY_ATTEMPTS = 5;
/** First backoff delay; doubled for each further attempt, with jitter. */
export const DEFAULT_RETRY_BASE_DELAY_MS = 200;
/** Cap for one backoff delay, and for a server's Retry-After. */
export const DEFAULT_RETRY_MAX_DELAY_MS = 10_000;
/** Statuses worth asking again after a pause: timeouts, throttling, and a server or gateway in trouble. */
export const RETRY_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/** Redirect hops followed for one request. */
export const MAX_REDIRECTS = 10;
/** Fresh credentials fetched for one request after 401s: a registry that keeps moving its realm gets no loop. */
export const MAX_AUTH_RETRIES = 3;

/** A bearer token is dropped this long before the expiry its server gave, so no request carries a dying one. */
export const TOKEN_EXPIRY_MARGIN_MS = 5000;

/** Push: blobs up to this size go in one PUT; larger ones in PATCH chunks. */
export const DEFAULT_MONOLITHIC_THRESHOLD = 32 * 1024 * 1024;
/** Push: the PATCH chunk size. */
export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;

/** Manifests a client remembers by digest (resolve's GET answers the pull's fetch of the same manifest). */
export const MANIFEST_CACHE_ENTRIES = 64;
/** Largest tag list page, catalog page or search answer read. */
export const MAX_LIST_BODY = 16 * 1024 * 1024;
/** Names asked for per catalog page. */
export const DEFAULT_CATALOG_PAGE = 100;
/** Pages of a list (tags, catalog) followed through `Link` before giving up. */
export const MAX_LIST_PAGES = 1000;
/** Largest error body read for the registry's own words. */
export const MAX_ERROR_BODY = 64 * 1024;

/** Sockets per host and keep-alive pool of the default transport. */
export const MAX_SOCKETS_PER_HOST = 32;

export const DEFAULT_USER_AGENT = 'stowage/0.1';
