/**
 * `docker search` (the GD store's SearchRegistryForImages): the term names the registry (`host/term`, else
 * Docker Hub); registries with docker's index search answer it, registries that speak only the
 * distribution API are searched through their catalog. docker's filters and limits apply to both.
 */
import { InvalidArgumentError } from '../errors/index.js';
import { DEFAULT_DOMAIN } from '../oci/index.js';
import { indexSearch, walkCatalog } from '../distribution/index.js';
import { FilterArgs } from './filters.js';
import type { ClientFactory } from './registry.js';
import type { SearchOptions, SearchResult } from './types.js';

export const SEARCH_FILTERS = ['is-automated', 'is-official', 'stars'] as const;
export const DEFAULT_SEARCH_LIMIT = 25;

/** docker's splitReposSearchTerm: the first part is a registry only when it looks like a host. */
export function splitSearchTerm(term: string): { domain: string; query: string } {
  const i = term.indexOf('/');
  if (i === -1) return { domain: DEFAULT_DOMAIN, query: term };
  const first = term.slice(0, i);
  if (!first.includes('.') && !first.includes(':') && first !== 'localhost') return { domain: DEFAULT_DOMAIN, query: term };
  return { domain: first === 'index.docker.io' ? DEFAULT_DOMAIN : first, query: term.slice(i + 1) };
}

export async function searchRegistry(clients: ClientFactory, term: string, opts: SearchOptions = {}): Promise<SearchResult[]> {
  const f = new FilterArgs(opts.filters).validate(SEARCH_FILTERS);
  const limit = opts.limit === undefined || opts.limit === 0 ? DEFAULT_SEARCH_LIMIT : opts.limit;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new InvalidArgumentError(`limit ${limit} is outside the range of [1, 100]`, { limit });
  const official = f.bool('is-official');
  const automated = f.bool('is-automated');
  let minStars = 0;
  for (const s of f.get('stars')) {
    if (!/^-?\d+$/.test(s)) throw new InvalidArgumentError(`invalid filter 'stars=${s}'`, { filter: 'stars' });
    minStars = Math.max(minStars, Number(s));
  }
  // is-automated is deprecated: nothing is automated any more, so `true` matches nothing.
  if (automated === true) return [];
  if (term.trim() === '') throw new InvalidArgumentError('term is required', { term });

  const { domain, query } = splitSearchTerm(term);
  const client = clients(domain, opts.credentials ? { credentials: opts.credentials } : {});
  const signal = opts.signal ? { signal: opts.signal } : {};
  // Docker Hub knows official images as `alpine`, not `library/alpine`.
  const q = domain === DEFAULT_DOMAIN ? query.replace(/^library\//, '') : query;
  const keep = (r: SearchResult): boolean => (official === undefined || r.is_official === official) && r.star_count >= minStars;

  const indexed = await indexSearch(client, domain, q, limit, signal);
  if (indexed) return indexed.filter(keep).slice(0, limit);

  // A distribution registry: every repository whose name contains the term, as `host/name` (pullable as is).
  const needle = q.toLowerCase();
  const out: SearchResult[] = [];
  await walkCatalog(client, domain, (names) => {
    for (const name of names) {
      if (!name.toLowerCase().includes(needle)) continue;
      const r: SearchResult = { description: '', is_official: false, is_automated: false, name: `${domain}/${name}`, star_count: 0 };
      if (keep(r)) out.push(r);
      if (out.length >= limit) return false;
    }
    return true;
  }, signal);
  return out;
}
