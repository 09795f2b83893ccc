/**
 * Images in and out without a registry: `docker save` (`GET /images/get`,
 * `/images/{name}/get`), `docker load` (`POST /images/load`), `docker import` (`POST /images/create?fromSrc=`)
 * and `docker commit` (`POST /commit`) of a working container.
 */
import { Writable } from 'node:stream';
import type { CommitOptions } from '../../images/index.js';
import { badParameter } from './errors.js';
import { MessageStream } from './json-messages.js';
import { boolParam, jsonPlatforms, readJSONBody, sendJSON, versionAtLeast, type EngineRequest } from './request.js';
import type { Route } from './router.js';

/** The `platform` query of save and load: JSON platforms from 1.48, more than one from 1.52. */
function archivePlatforms(r: EngineRequest): ReturnType<typeof jsonPlatforms> {
  if (!versionAtLeast(r.version, '1.48')) return [];
  const all = jsonPlatforms(r.query, 'platform');
  if (all.length > 1 && !versionAtLeast(r.version, '1.52')) throw badParameter('multiple platform parameters need API 1.52 or newer');
  return all;
}

/**
 * The tar goes out as it is written; the 200 and its headers only with the first byte, so that a name that
 * does not resolve is still a JSON 404. A failure after that cuts the connection: the client's tar reader
 * sees a truncated archive, never a complete-looking one.
 */
async function save(r: EngineRequest, names: string[]): Promise<void> {
  const platforms = archivePlatforms(r);
  const res = r.res;
  const gone = (): Error => new Error('the client went away');
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (res.destroyed) { done(gone()); return; }
      if (!res.headersSent) res.writeHead(200, { 'Content-Type': 'application/x-tar' });
      if (res.write(chunk)) { done(); return; }
      // Wait for the client to take it, or for the client to leave (a drain that never comes).
      const onDrain = (): void => { res.off('close', onClose); done(); };
      const onClose = (): void => { res.off('drain', onDrain); done(gone()); };
      res.once('drain', onDrain);
      res.once('close', onClose);
    },
    final(done) {
      if (!res.headersSent) res.writeHead(200, { 'Content-Type': 'application/x-tar' });
      res.end(done);
    },
  });
  try {
    await r.store.save(names, out, { ...(platforms.length ? { platform: platforms.length === 1 ? platforms[0]! : platforms } : {}), signal: r.signal });
  } catch (e) {
    if (res.headersSent) { res.destroy(); return; }
    throw e;
  }
}

async function load(r: EngineRequest): Promise<void> {
  const platforms = archivePlatforms(r);
  if (platforms.length > 1) throw badParameter('loading more than one platform at once is not supported');
  const out = new MessageStream(r.res);
  out.open();
  try {
    await r.store.load(r.req, {
      // dockerd's default when the parameter is absent is quiet; the CLI always sends it.
      quiet: boolParam(r.query, 'quiet', true),
      ...(platforms[0] ? { platform: platforms[0] } : {}),
      signal: r.signal, onProgress: (m) => out.write(m),
    });
    out.end();
  } catch (e) { out.fail(e); }
}

/** `fromSrc`: `-` is the request body; anything else a URL the server fetches (`http://` added when bare). */
export async function importFromSource(r: EngineRequest, fromSrc: string): Promise<void> {
  if (fromSrc === '') throw badParameter('fromImage or fromSrc is required');
  let source: URL | undefined;
  if (fromSrc !== '-') {
    try { source = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(fromSrc) ? fromSrc : `http://${fromSrc}`); } catch { throw badParameter(`invalid source URL: ${fromSrc}`); }
    if (source.protocol !== 'http:' && source.protocol !== 'https:') throw badParameter(`unsupported import source ${fromSrc}: give the tarball in the request body or an http(s) URL`);
  }
  const repo = r.query.get('repo') ?? '';
  const tag = r.query.get('tag') ?? '';
  const platform = r.query.get('platform') ?? '';
  const message = r.query.get('message');
  const changes = r.query.getAll('changes').filter((c) => c.trim() !== '');
  const out = new MessageStream(r.res);
  try {
    // The service's last message is docker's final `{"status":"sha256:…"}`.
    await r.store.importImage(source ?? r.req, {
      ...(repo ? { ref: tag ? `${repo}:${tag}` : repo } : {}),
      ...(changes.length ? { changes } : {}),
      ...(message ? { message } : {}),
      ...(platform ? { platform } : {}),
      signal: r.signal, onProgress: (m) => out.write(m),
    });
    out.end();
  } catch (e) { out.fail(e); }
}

async function commit(r: EngineRequest): Promise<void> {
  const body = await readJSONBody(r);
  if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) throw badParameter('invalid JSON: the body must be a container config object');
  const repo = r.query.get('repo') ?? '';
  const tag = r.query.get('tag') ?? '';
  if (!repo && tag) throw badParameter('a tag needs a repository');
  const opts: CommitOptions = { signal: r.signal };
  if (repo) opts.ref = tag ? `${repo}:${tag}` : repo;
  const author = r.query.get('author');
  const comment = r.query.get('comment');
  if (author) opts.author = author;
  if (comment) opts.message = comment;
  const changes = r.query.getAll('changes').filter((c) => c.trim() !== '');
  if (changes.length) opts.changes = changes;
  if (body !== undefined) opts.config = body as NonNullable<CommitOptions['config']>;
  // `pause` is accepted and has nothing to do: working containers never run.
  const { id } = await r.store.commit(r.query.get('container') ?? '', opts);
  sendJSON(r, 201, { Id: id });
}

export const TRANSFER_ROUTES: Route[] = [
  { method: 'GET', path: /^\/images\/get$/, handle: (r) => save(r, r.query.getAll('names').filter((n) => n !== '')) },
  { method: 'POST', path: /^\/images\/load$/, handle: load },
  { method: 'GET', path: /^\/images\/(.+)\/get$/, handle: (r) => save(r, [r.params[0]!]) },
  { method: 'POST', path: /^\/commit$/, handle: commit },
];
