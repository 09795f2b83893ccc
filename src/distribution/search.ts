/**
 * Finding repositories on a registry: docker's index search (`GET /v1/search?q=&n=`, Docker Hub and
 * registries that kept the v1 search API) and the distribution API's catalog (`GET /v2/_catalog`, paged
 * with `n` and `Link`), which is all a plain distribution registry offers.
 */
import { InvalidArgumentError } from '../errors/index.js';
import { DEFAULT_DOMAIN } from '../oci/index.js';
import type { Repository } from './access.js';
import type { RegistryClient } from './client.js';
import { DEFAULT_CATALOG_PAGE } from './defaults.js';
import { failResponse } from './errors.js';
import { jsonPages, readJson } from './pages.js';
import { discard } from './transport.js';

/** One result of docker's index search. */
export interface IndexSearchResult {
  name: string;
  description: string;
  is_official: boolean;
  is_automated: boolean;
  star_count: number;
}

/** Docker Hub's search lives on index.docker.io; other registries answer on their own host. */
function searchRepository(client: RegistryClient, domain: string): Repository {
  const host = domain === DEFAULT_DOMAIN || domain === 'index.docker.io' ? 'index.docker.io' : domain;
  return { domain, host, path: '', scheme: client.schemes.current(host) };
}

/**
 * `/v1/search`. Resolves `undefined` when the registry has no such API (404, 405 or 501), so that the
 * caller can fall back to the catalog.
 */
export async function indexSearch(client: RegistryClient, domain: string, term: string, limit: number, opts: { signal?: AbortSignal } = {}): Promise<IndexSearchResult[] | undefined> {
  const repo = searchRepository(client, domain);
  const url = `/v1/search?q=${encodeURIComponent(term)}&n=${limit}`;
  const res = await client.request(repo, { method: 'GET', url, scopes: [], signal: opts.signal, noRetryStatuses: [404, 405, 501] });
  if (res.status === 404 || res.status === 405 || res.status === 501) { discard(res.body); return undefined; }
  if (res.status !== 200) await failResponse(res, `searching ${domain}`);
  const v = await readJson(res, `search on ${domain}`) as { results?: unknown };
  if (!Array.isArray(v.results)) throw new InvalidArgumentError(`search on ${domain}: answer has no "results" list`);
  return v.results.map((r: Record<string, unknown>) => ({
    name: String(r.name ?? ''),
    description: String(r.description ?? ''),
    is_official: r.is_official === true,
    is_automated: r.is_automated === true,
    star_count: typeof r.star_count === 'number' ? r.star_count : 0,
  }));
}

/**
 * Walks `/v2/_catalog` page by page (`pageSize` names each), handing each page to `onPage`; stops when
 * `onPage` returns false or the registry has no next page.
 */
export async function walkCatalog(client: RegistryClient, domain: string, onPage: (names: string[]) => boolean, opts: { pageSize?: number; signal?: AbortSignal } = {}): Promise<void> {
  const repo: Repository = { domain, host: domain, path: '', scheme: client.schemes.current(domain) };
  const first = `/v2/_catalog?n=${opts.pageSize ?? DEFAULT_CATALOG_PAGE}`;
  for await (const page of jsonPages(client, repo, first, ['registry:catalog:*'], `listing the catalog of ${domain}`, opts.signal)) {
    const names = (page as { repositories?: unknown }).repositories ?? [];
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
      throw new InvalidArgumentError(`catalog of ${domain}: "repositories" is not a list of strings`);
    }
    if (!onPage(names as string[]) || names.length === 0) return;
  }
}
