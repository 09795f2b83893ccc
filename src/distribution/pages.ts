import { InvalidArgumentError, ResourceExhaustedError } from '../errors/index.js';
import type { RepositoryAccess, Repository } from './access.js';
import { MAX_LIST_BODY, MAX_LIST_PAGES } from './defaults.js';
import { failResponse } from './errors.js';
import { parseNextLink } from './protocol.js';
import { readBody, header, type HttpResponse } from './transport.js';

/** A JSON answer of at most MAX_LIST_BODY bytes, parsed; `what` names it in errors. */
export async function readJson(res: HttpResponse, what: string): Promise<unknown> {
  const body = await readBody(res.body, MAX_LIST_BODY);
  if (!body) throw new ResourceExhaustedError(`${what}: answer is over ${MAX_LIST_BODY} bytes`, {});
  try { return JSON.parse(body.toString('utf8')); } catch (e) {
    throw new InvalidArgumentError(`${what}: invalid JSON: ${(e as Error).message}`, {}, { cause: e });
  }
}

/**
 * GETs a paginated list (tags, catalog) from `first`, following `Link: <…>; rel="next"` up to
 * MAX_LIST_PAGES pages, and yields each page's JSON. A non-200 page is the registry's typed error.
 */
export async function* jsonPages(access: RepositoryAccess, repo: Repository, first: string, scopes: string[], what: string, signal?: AbortSignal): AsyncGenerator<unknown> {
  let url = first;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const res = await access.request(repo, { method: 'GET', url, scopes, ...(signal ? { signal } : {}) });
    if (res.status !== 200) await failResponse(res, what, repo.path ? repo : undefined);
    yield await readJson(res, what);
    const next = parseNextLink(header(res, 'link'));
    if (!next) return;
    url = new URL(next, res.url).toString();
  }
}
