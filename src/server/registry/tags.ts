/** Content discovery: tag lists and the catalog (with `n`/`last` pagination and `Link`), and the referrers API. */
import { Header, formatNextLink } from '../../distribution/index.js';
import { MediaType } from '../../oci/index.js';
import { checkDigest } from './blobs.js';
import { RegistryError } from './errors.js';
import { send, sendJson, type Exchange } from './exchange.js';

/** Applies `last` (strictly after) and `n` to a sorted list; the Link names the next page when one may follow. */
function paginate(ex: Exchange, all: string[], path: string): { items: string[]; link?: string } {
  const last = ex.url.searchParams.get('last');
  const nParam = ex.url.searchParams.get('n');
  let items = last !== null ? all.filter((t) => t > last) : all;
  if (nParam === null) return { items };
  const n = Number(nParam);
  if (!Number.isSafeInteger(n) || n < 0) throw new RegistryError('PAGINATION_NUMBER_INVALID', `invalid page size n=${JSON.stringify(nParam)}`);
  const more = items.length > n;
  items = items.slice(0, n);
  if (!more || n === 0) return { items };
  const next = new URLSearchParams({ n: String(n), last: items[items.length - 1]! });
  return { items, link: formatNextLink(`${path}?${next.toString()}`) };
}

export function listTags(ex: Exchange, name: string): void {
  const tags = ex.view.tags(name);
  if (tags === undefined) throw new RegistryError('NAME_UNKNOWN', `repository ${name} not known to registry`, { name });
  const page = paginate(ex, tags, `/v2/${name}/tags/list`);
  sendJson(ex, 200, { name, tags: page.items }, page.link ? { link: page.link } : {});
}

export function catalog(ex: Exchange): void {
  const page = paginate(ex, ex.view.repositories(), '/v2/_catalog');
  sendJson(ex, 200, { repositories: page.items }, page.link ? { link: page.link } : {});
}

/** Referrers of a digest (200 with an empty index for an unknown one), filtered by `artifactType` when asked. */
export async function referrers(ex: Exchange, _name: string, digestParam: string): Promise<void> {
  const digest = checkDigest(digestParam);
  const artifactType = ex.url.searchParams.get('artifactType') ?? undefined;
  const manifests = await ex.view.referrers(digest, artifactType);
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
  send(ex, 200, { 'content-type': MediaType.OciIndex, ...(artifactType !== undefined ? { [Header.OciFiltersApplied]: 'artifactType' } : {}) }, body);
}
