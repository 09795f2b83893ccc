/**
 * The distribution API's paths. Repository names contain `/`, so a path is read from the right: the
 * last known suffix (`/manifests/<ref>`, `/blobs/uploads/[<id>]`, `/blobs/<digest>`, `/tags/list`,
 * `/referrers/<digest>`) decides, and what comes before it is the name.
 */
export type Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

/** The route of a path, undefined for anything that is not part of the API. */
export function route(pathname: string): Route | undefined {
  if (pathname === '/v2/' || pathname === '/v2') return { kind: 'base' };
  if (pathname === '/v2/_catalog') return { kind: 'catalog' };
  if (!pathname.startsWith('/v2/')) return undefined;
  const p = pathname.slice(4);
  let m: RegExpExecArray | null;
  if ((m = /^(.+)\/manifests\/([^/]+)$/.exec(p))) return { kind: 'manifest', name: m[1]!, reference: decodeURIComponent(m[2]!) };
  if ((m = /^(.+)\/blobs\/uploads\/?$/.exec(p))) return { kind: 'uploads', name: m[1]! };
  if ((m = /^(.+)\/blobs\/uploads\/([^/]+)$/.exec(p))) return { kind: 'upload', name: m[1]!, id: m[2]! };
  if ((m = /^(.+)\/blobs\/([^/]+)$/.exec(p))) return { kind: 'blob', name: m[1]!, digest: decodeURIComponent(m[2]!) };
  if ((m = /^(.+)\/tags\/list$/.exec(p))) return { kind: 'tags', name: m[1]! };
  if ((m = /^(.+)\/referrers\/([^/]+)$/.exec(p))) return { kind: 'referrers', name: m[1]!, digest: decodeURIComponent(m[2]!) };
  return undefined;
}
