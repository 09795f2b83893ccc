/**
 * Routing and API versioning: `/vX.Y` prefixes checked against the supported range, docker's common
 * headers on every response, fixed routes before the greedy `{name}` ones, 404 `page not found` for
 * unknown paths, and docker's error shape for the parts of the Engine API an image store does not serve.
 */
import type http from 'node:http';
import { InvalidArgumentError } from '../../errors/index.js';
import { NotAnImageEndpointError, writeError } from './errors.js';
import { versionAtLeast, type EngineBackend, type EngineRequest } from './request.js';

/** Newest API version served (docker 29.0's); the CLI negotiates min(its own, this). */
export const MAX_API_VERSION = '1.52';
/** Oldest API version served (dockerd's default minimum). */
export const MIN_API_VERSION = '1.40';

export interface Route {
  method: string | string[];
  /** Matched against the path without the version prefix; captures become `params`. */
  path: RegExp;
  handle(r: EngineRequest): Promise<void>;
}

export interface ServerIdentity {
  /** `Server:` header value, e.g. `Docker/stowage-0.1.0 (linux)`. */
  server: string;
}

/** Top-level paths of the Engine API that belong to containers, networks, volumes, swarm, plugins, builds. */
const NOT_IMAGES = /^\/(containers|exec|networks|volumes|swarm|services|tasks|nodes|secrets|configs|plugins|build|session|grpc)(\/|$)/;

const VERSIONED = /^\/v([0-9.]+)(\/.*)$/;

function checkVersion(version: string): void {
  if (!/^\d+\.\d+$/.test(version)) throw new InvalidArgumentError(`invalid API version: ${version}`);
  if (!versionAtLeast(version, MIN_API_VERSION)) {
    throw new InvalidArgumentError(`client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
  }
  if (!versionAtLeast(MAX_API_VERSION, version)) {
    throw new InvalidArgumentError(`client version ${version} is too new. Maximum supported API version is ${MAX_API_VERSION}`);
  }
}

/** The request handler for node's http server. */
export function createDispatcher(store: EngineBackend, routes: Route[], id: ServerIdentity, stopping: AbortSignal): http.RequestListener {
  return (req, res) => {
    res.setHeader('Api-Version', MAX_API_VERSION);
    res.setHeader('Server', id.server);
    res.setHeader('Ostype', 'linux');
    res.setHeader('Docker-Experimental', 'false');
    const aborter = new AbortController();
    // A response still open when the connection closes means the client went away: cancel its work.
    res.on('close', () => { if (!res.writableFinished) aborter.abort(new Error('client disconnected')); });
    let url: URL;
    try { url = new URL(req.url ?? '/', 'http://engine'); } catch { writeError(res, new InvalidArgumentError('invalid request URL')); return; }
    let path = url.pathname;
    let version = MAX_API_VERSION;
    const m = VERSIONED.exec(path);
    try {
      if (m) { version = m[1]!; path = m[2]!; checkVersion(version); }
    } catch (e) { writeError(res, e); return; }
    const method = (req.method ?? 'GET').toUpperCase();
    let decoded = path;
    try { decoded = decodeURIComponent(path); } catch { /* keep raw */ }
    for (const route of routes) {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      if (!methods.includes(method)) continue;
      const hit = route.path.exec(decoded);
      if (!hit) continue;
      const r: EngineRequest = { req, res, method, path: decoded, version, query: url.searchParams, params: hit.slice(1), signal: aborter.signal, stopping, store };
      route.handle(r).catch((e: unknown) => {
        if (!res.headersSent) writeError(res, e);
        else if (!res.writableEnded) res.destroy();
      });
      return;
    }
    req.resume();
    if (NOT_IMAGES.test(decoded)) writeError(res, new NotAnImageEndpointError(method, decoded));
    else writeError(res, new Error('page not found'), 404);
  };
}
