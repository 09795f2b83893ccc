/**
 * The registry server: an HTTP(S) listener that routes the distribution API to the handlers, with
 * optional Basic auth, read-only mode, a pull-through mirror, one log line per request, and a graceful
 * stop (no new requests; those in flight finish; open upload writers are closed, their ingests kept).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { LocalImages } from '../../images/index.js';
import { InvalidArgumentError, fromSystemError } from '../../errors/index.js';
import { Htpasswd } from './auth.js';
import { deleteBlob, getBlob } from './blobs.js';
import { RegistryError, toRegistryError } from './errors.js';
import { send, sendError, type Exchange } from './exchange.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import { Mirror, type MirrorOptions } from './mirror.js';
import { isValidName, route, type Route } from './routes.js';
import { catalog, listTags, referrers } from './tags.js';
import { Uploads, cancelUpload, patchUpload, putUpload, startUpload, uploadStatus } from './uploads.js';

export interface RegistryServerOptions {
  /** `HOST:PORT`, `:PORT` or `PORT` (port 0: any free port). Default `127.0.0.1:0`. */
  listen?: string;
  /**
   * The registry name pushed images are recorded under. Default the address listened on
   * (`localhost:PORT` when listening on every interface).
   */
  name?: string;
  /** Upstream registry URL: serve as its pull-through mirror. */
  mirrorOf?: string;
  /** Mirror only: the server's own upstream credentials (default: docker's config.json). */
  mirrorCredentials?: MirrorOptions['credentials'];
  /** Refuse every write (405 UNSUPPORTED). */
  readOnly?: boolean;
  /** An htpasswd file (bcrypt): every request must carry Basic credentials from it. */
  htpasswd?: string;
  /** Serve HTTPS with this certificate and key (PEM text). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Receives one line per request (common log format, with the duration). */
  log?: (line: string) => void;
  /** How long a graceful stop waits for requests in flight before cutting them. Default 30 s. */
  stopGraceMs?: number;
}

export interface RegistryServer {
  /** `http://127.0.0.1:PORT` (https with tls). */
  url: string;
  /** `HOST:PORT` as clients name the registry in image references. */
  address: string;
  /** The registry name pushed images are recorded under. */
  name: string;
  /** Resolves when background work has ended (a mirror completing the images it fetched). */
  settled(): Promise<void>;
  /** Graceful stop: resolves when every request in flight and the background work have finished. */
  close(): Promise<void>;
}

/** Splits `HOST:PORT`, `:PORT`, `PORT`, `[v6]:PORT`. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*))?:?(\d+)$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`invalid listen address ${JSON.stringify(listen)}: want HOST:PORT or :PORT`, { listen });
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Starts serving `store` over the OCI distribution API. */
export async function startRegistryServer(store: Pick<LocalImages, 'repositories'>, opts: RegistryServerOptions = {}): Promise<RegistryServer> {
  const { host, port } = parseListen(opts.listen ?? '127.0.0.1:0');
  const htpasswd = opts.htpasswd ? Htpasswd.load(opts.htpasswd) : undefined;
  let closing = false;
  const inFlight = new Set<Promise<void>>();
  let handlers: { view: ReturnType<LocalImages['repositories']>; uploads: Uploads; mirror?: Mirror } | undefined;

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const started = process.hrtime.bigint();
    const who = req.socket.remoteAddress ?? '-';
    if (closing) res.setHeader('connection', 'close');
    const p = handle(req, res).finally(() => {
      inFlight.delete(p);
      if (opts.log) {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        const user = (res as { user?: string }).user ?? '-';
        opts.log(`${who} - ${user} [${new Date().toISOString()}] "${req.method} ${req.url} HTTP/${req.httpVersion}" ${res.statusCode} ${res.getHeader('content-length') ?? '-'} ${ms.toFixed(1)}ms "${req.headers['user-agent'] ?? ''}"`);
      }
    });
    inFlight.add(p);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const ctrl = new AbortController();
    res.once('close', () => { if (!res.writableFinished) ctrl.abort(new Error('client went away')); });
    const ex: Exchange = {
      req, res, url: new URL(req.url ?? '/', 'http://registry'), view: handlers!.view, uploads: handlers!.uploads,
      ...(handlers!.mirror ? { mirror: handlers!.mirror } : {}), signal: ctrl.signal,
    };
    const r = route(ex.url.pathname);
    try {
      if (htpasswd) (res as { user?: string }).user = await htpasswd.authenticate(req.headers.authorization);
      if (!r) throw new RegistryError('UNSUPPORTED', `no such endpoint: ${req.method} ${ex.url.pathname}`, undefined, { status: 404 });
      if (opts.readOnly && WRITES.has(req.method ?? '')) throw new RegistryError('UNSUPPORTED', 'the registry is read-only');
      await dispatch(ex, r);
    } catch (e) {
      req.resume();
      sendError(ex, toRegistryError(e, aboutOf(r)));
    }
  };

  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, onRequest) : http.createServer(onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(fromSystemError(e, `listening on ${host}:${port}`)));
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  const everywhere = host === '0.0.0.0' || host === '::';
  const address = `${everywhere ? 'localhost' : shown}:${bound}`;
  const name = opts.name ?? address;
  const view = store.repositories({ registry: name });
  const uploads = new Uploads(view);
  const mirror = opts.mirrorOf
    ? new Mirror(view, { upstream: opts.mirrorOf, passClientCredentials: !htpasswd, ...(opts.mirrorCredentials ? { credentials: opts.mirrorCredentials } : {}) })
    : undefined;
  handlers = { view, uploads, ...(mirror ? { mirror } : {}) };

  let closed: Promise<void> | undefined;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${address}`,
    address,
    name,
    settled: async () => { await mirror?.settle(); },
    close() {
      closed ??= (async () => {
        closing = true;
        const listenerClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const grace = setTimeout(() => server.closeAllConnections(), opts.stopGraceMs ?? 30_000);
        grace.unref();
        while (inFlight.size > 0) {
          await Promise.allSettled([...inFlight]);
          server.closeIdleConnections();
        }
        await listenerClosed;
        clearTimeout(grace);
        await mirror?.settle();
        await uploads.closeAll();
      })();
      return closed;
    },
  };
}

async function dispatch(ex: Exchange, r: Route): Promise<void> {
  const method = ex.req.method ?? 'GET';
  const read = method === 'GET' || method === 'HEAD';
  if (r.kind === 'base') { if (read) return send(ex, 200, { 'content-type': 'application/json' }, Buffer.from('{}')); return notAllowed(method); }
  if (r.kind === 'catalog') { if (read) return catalog(ex); return notAllowed(method); }
  if (!isValidName(r.name)) throw new RegistryError('NAME_INVALID', `invalid repository name ${JSON.stringify(r.name)}`, { name: r.name });
  switch (r.kind) {
    case 'manifest':
      if (read) return getManifest(ex, r.name, r.reference);
      if (method === 'PUT') return putManifest(ex, r.name, r.reference);
      if (method === 'DELETE') return deleteManifest(ex, r.name, r.reference);
      break;
    case 'blob':
      if (read) return getBlob(ex, r.name, r.digest);
      if (method === 'DELETE') return deleteBlob(ex, r.name, r.digest);
      break;
    case 'uploads':
      if (method === 'POST') return startUpload(ex, r.name);
      break;
    case 'upload':
      if (method === 'GET') return uploadStatus(ex, r.name, r.id);
      if (method === 'PATCH') return patchUpload(ex, r.name, r.id);
      if (method === 'PUT') return putUpload(ex, r.name, r.id);
      if (method === 'DELETE') return cancelUpload(ex, r.name, r.id);
      break;
    case 'tags':
      if (read) return listTags(ex, r.name);
      break;
    case 'referrers':
      if (read) return referrers(ex, r.name, r.digest);
      break;
  }
  return notAllowed(method);
}

/** What a store failure of this route was about (a NotFound from a blob read is BLOB_UNKNOWN, ...). */
function aboutOf(r: Route | undefined): Parameters<typeof toRegistryError>[1] {
  switch (r?.kind) {
    case 'manifest': return 'manifest';
    case 'blob': case 'referrers': return 'blob';
    case 'uploads': case 'upload': return 'upload';
    default: return 'name';
  }
}

function notAllowed(method: string): never {
  throw new RegistryError('UNSUPPORTED', `method ${method} not allowed here`, undefined, { status: 405 });
}
