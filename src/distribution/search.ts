/**
 * Finding repositories on a registry: docker's index search (`GET /v1/search?q=&n=`, Docker Hub and
 * registries that kept the v1 search API) and the distribution API's catalog (`GET /v2/_catalog`, paged
 * with `n` and `Link`), which is all a plain distribution registry offers.
 */
import { InvalidArgumentError, ResourceExhaustedError } from '../errors/index.js';
import { DEFAULT_DOMAIN } from '../oci/index.js';
import type { RegistryClient, Repository } from './client.js';
import { discard, header, readBody } from './transport.js';

/** One result of docker's index search. */
export interface IndexSearchResult {
  name: string;
  description: string;
  is_official: boolean;
  is_automated: boolean;
  star_count: number;
}

const MAX_BODY = 16 * 1024 * 1024;

/** Docker Hub's search lives on index.docker.io; other registries answer on their own host. */
function searchRepository(client: RegistryClient, domain: string): Repository {
  const host = domain === DEFAULT_DOMAIN || domain === 'index.docker.io' ? 'index.docker.io' : domain;
  return { domain, host, path: '', scheme: client.schemes.current(host) };
}

async function jsonBody(res: { body: import('node:stream').Readable }, what: string): Promise<unknown> {
  const body = await readBody(res.body, MAX_BODY);
  if (!body) throw new ResourceExhaustedError(`${what}: answer is over 16 MiB`);
  try { return JSON.parse(body.toString('utf8')); } catch (e) {
    throw new InvalidArgumentError(`${what}: invalid JSON: ${(e as Error).message}`, {}, { cause: e });
  }
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
  if (res.status !== 200) await client.fail(res, `searching ${domain}`);
  const v = await jsonBody(res, `search on ${domain}`) as { results?: unknown };
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
  let url: string = `/v2/_catalog?n=${opts.pageSize ?? 100}`;
  for (let page = 0; page < 100_000; page++) {
    const res = await client.request(repo, { method: 'GET', url, scopes: ['registry:catalog:*'], signal: opts.signal });
    if (res.status !== 200) await client.fail(res, `listing the catalog of ${domain}`);
    const v = await jsonBody(res, `catalog of ${domain}`) as { repositories?: unknown };
    const names = v.repositories ?? [];
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
      throw new InvalidArgumentError(`catalog of ${domain}: "repositories" is not a list of strings`);
    }
    if (!onPage(names as string[])) return;
    const link = /<([^>]+)>;\s*rel="?next"?/.exec(header(res, 'link') ?? '');
    if (!link || names.length === 0) return;
    url = new URL(link[1]!, client.baseUrl(repo)).toString();
  }
}
