/**
 * The image endpoints of the Engine API (`/images/...`, `/commit`, `/build`), each a thin translation between the HTTP request and
 * one image-service call. Streaming endpoints (pull, push) write docker's JSON messages as they come.
 */
import { isDigest, parseNormalizedNamed, parsePlatform, referenceString } from '../../oci/index.js';
import { credentialsFromHeader } from './auth-header.js';
import { badParameter } from './errors.js';
import { MessageStream } from './json-messages.js';
import { TRANSFER_ROUTES, importFromSource } from './transfer.js';
import { boolParam, filtersParam, jsonPlatform, jsonPlatforms, readJSONBody, sendJSON, versionAtLeast, type EngineRequest } from './request.js';
import type { Route } from './router.js';
import { inspectFor, summaryFor } from './versions.js';

/** The platform query of inspect/history/push: one JSON platform, honoured from API `since`. */
function onePlatform(r: EngineRequest, since: string): { platform?: ReturnType<typeof jsonPlatform> } {
  if (!versionAtLeast(r.version, since)) return {};
  const all = jsonPlatforms(r.query, 'platform');
  if (all.length > 1) throw badParameter('multiple platforms are not supported');
  return all[0] ? { platform: all[0] } : {};
}

/** The storage driver name `/info` and legacy inspect report. */
export const STORAGE_DRIVER = 'overlayfs';

async function list(r: EngineRequest): Promise<void> {
  const manifests = versionAtLeast(r.version, '1.47') && boolParam(r.query, 'manifests');
  const items = await r.store.images({
    all: boolParam(r.query, 'all'),
    filters: filtersParam(r.query),
    sharedSize: versionAtLeast(r.version, '1.42') && boolParam(r.query, 'shared-size'),
    manifests,
  });
  sendJSON(r, 200, items.map((s) => summaryFor(s, r.version)));
}

/**
 * A name from the path or `fromImage` with the `tag` query, as docker's router joins them: a tag given
 * replaces one the name carries (reference.WithTag), a tag that is a digest becomes `@digest`.
 */
function withTag(name: string, tag: string): string {
  const image = name.replace(/:$/, '');
  if (!tag) return image;
  let ref;
  try { ref = parseNormalizedNamed(image); } catch (e) { throw badParameter((e as Error).message); }
  return referenceString(isDigest(tag) ? { domain: ref.domain, path: ref.path, digest: tag } : { domain: ref.domain, path: ref.path, tag });
}

async function create(r: EngineRequest): Promise<void> {
  const fromImage = r.query.get('fromImage');
  if (fromImage === null || fromImage === '') return importFromSource(r, r.query.get('fromSrc') ?? '');
  const tag = r.query.get('tag') ?? '';
  const platformText = r.query.get('platform') ?? '';
  const platform = platformText ? parsePlatform(platformText) : undefined;
  const ref = withTag(fromImage, tag);
  // `docker pull -a` sends the bare name with no tag: every tag of the repository.
  const allTags = tag === '' && !/[:@]/.test(ref.slice(ref.lastIndexOf('/') + 1));
  const credentials = credentialsFromHeader(r.req.headers['x-registry-auth']);
  const out = new MessageStream(r.res);
  try {
    await r.store.pull(ref, {
      ...(platform ? { platform } : {}), ...(allTags ? { allTags } : {}), ...(credentials ? { credentials } : {}),
      signal: r.signal, onProgress: (m) => out.write(m),
    });
    out.end();
  } catch (e) { out.fail(e); }
}

async function push(r: EngineRequest): Promise<void> {
  const ref = withTag(r.params[0]!, r.query.get('tag') ?? '');
  const platform = onePlatform(r, '1.46');
  const credentials = credentialsFromHeader(r.req.headers['x-registry-auth']);
  const out = new MessageStream(r.res);
  try {
    await r.store.push(ref, { ...platform, ...(credentials ? { credentials } : {}), signal: r.signal, onProgress: (m) => out.write(m) });
    out.end();
  } catch (e) { out.fail(e); }
}

async function inspect(r: EngineRequest): Promise<void> {
  const manifests = versionAtLeast(r.version, '1.48') && boolParam(r.query, 'manifests');
  const platform = onePlatform(r, '1.49');
  const result = await r.store.inspect(r.params[0]!, { ...platform, manifests });
  sendJSON(r, 200, inspectFor(result, r.version, STORAGE_DRIVER));
}

async function history(r: EngineRequest): Promise<void> {
  sendJSON(r, 200, await r.store.history(r.params[0]!, onePlatform(r, '1.48')));
}

async function tag(r: EngineRequest): Promise<void> {
  const repo = r.query.get('repo') ?? '';
  const tagName = r.query.get('tag') ?? '';
  if (repo === '') throw badParameter('repository name must have at least one component');
  await r.store.tag(r.params[0]!, tagName ? `${repo}:${tagName}` : repo);
  r.res.writeHead(201);
  r.res.end();
}

async function remove(r: EngineRequest): Promise<void> {
  const name = r.params[0]!;
  if (name.trim() === '') throw badParameter('image name cannot be blank');
  const platforms = versionAtLeast(r.version, '1.50') ? jsonPlatforms(r.query, 'platforms') : [];
  const result = await r.store.delete(name, {
    force: boolParam(r.query, 'force'),
    pruneChildren: !boolParam(r.query, 'noprune'),
    ...(platforms.length ? { platforms } : {}),
  });
  sendJSON(r, 200, result);
}

async function prune(r: EngineRequest): Promise<void> {
  sendJSON(r, 200, await r.store.prune({ filters: filtersParam(r.query), signal: r.signal }));
}

async function search(r: EngineRequest): Promise<void> {
  const term = r.query.get('term') ?? '';
  const limitText = r.query.get('limit');
  let limit = 25;
  if (limitText !== null && limitText !== '') {
    if (!/^-?\d+$/.test(limitText) || Number(limitText) < 0) throw badParameter('invalid limit specified');
    limit = Number(limitText) || 25;
  }
  const credentials = credentialsFromHeader(r.req.headers['x-registry-auth']);
  const results = await r.store.search(term, { limit, filters: filtersParam(r.query), signal: r.signal, ...(credentials ? { credentials } : {}) });
  sendJSON(r, 200, results);
}

async function distribution(r: EngineRequest): Promise<void> {
  const credentials = credentialsFromHeader(r.req.headers['x-registry-auth']);
  sendJSON(r, 200, await r.store.distributionInspect(r.params[0]!, { signal: r.signal, ...(credentials ? { credentials } : {}) }));
}

/** `POST /auth` (docker login): checks the credentials with the registry; storing them is the client's business. */
async function auth(r: EngineRequest): Promise<void> {
  const body = await readJSONBody(r);
  const o = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const str = (k: string): string => (typeof o[k] === 'string' ? o[k] as string : '');
  const credentials = {
    ...(str('username') ? { username: str('username') } : {}), ...(str('password') ? { password: str('password') } : {}),
    ...(str('identitytoken') ? { identityToken: str('identitytoken') } : {}),
  };
  await r.store.authenticate(str('serveraddress'), credentials, { signal: r.signal });
  sendJSON(r, 200, { Status: 'Login Succeeded', IdentityToken: '' });
}

export const IMAGE_ROUTES: Route[] = [
  { method: 'GET', path: /^\/images\/json$/, handle: list },
  { method: 'POST', path: /^\/images\/create$/, handle: create },
  { method: 'GET', path: /^\/images\/search$/, handle: search },
  { method: 'POST', path: /^\/images\/prune$/, handle: prune },
  ...TRANSFER_ROUTES,
  { method: 'GET', path: /^\/images\/(.+)\/json$/, handle: inspect },
  { method: 'GET', path: /^\/images\/(.+)\/history$/, handle: history },
  { method: 'POST', path: /^\/images\/(.+)\/push$/, handle: push },
  { method: 'POST', path: /^\/images\/(.+)\/tag$/, handle: tag },
  { method: 'DELETE', path: /^\/images\/(.*)$/, handle: remove },
  { method: 'GET', path: /^\/distribution\/(.+)\/json$/, handle: distribution },
  { method: 'POST', path: /^\/auth$/, handle: auth },
];
