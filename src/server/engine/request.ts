/**
 * One Engine API request as the handlers see it (negotiated version, query, an AbortSignal that fires when
 * the client goes away) and docker's parsing of query values: booleans, `filters` JSON, platforms.
 */
import type http from 'node:http';
import type { BuildBackend } from '../../build/index.js';
import type {
  BuilderSupport, ContainerLayers, Filters, ImageArchives, LocalImages, PlatformSpec, RegistryAccess, StoreMaintenance,
} from '../../images/index.js';
import { badParameter } from './errors.js';

/**
 * What the Engine API serves of the image service: images, registries, archives, the store's state and
 * events, `commit` of working containers, and the builder's methods for `POST /build`. Working
 * containers are otherwise not served (the API's container routes answer that this server manages images only).
 */
export type EngineBackend = LocalImages & RegistryAccess & ImageArchives & StoreMaintenance &
  Pick<ContainerLayers, 'commit'> & BuildBackend & Pick<BuilderSupport, 'scratchDir'>;

export interface EngineRequest {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  method: string;
  /** Path without the `/vX.Y` prefix. */
  path: string;
  /** The API version the client asked for (the server's maximum for unversioned paths). */
  version: string;
  query: URLSearchParams;
  /** Captures of the route's pattern (`{name}`). */
  params: string[];
  /** Fires when the client disconnects before the response is complete. */
  signal: AbortSignal;
  /** Fires when the server stops: endless answers (event streams) end then; others finish. */
  stopping: AbortSignal;
  store: EngineBackend;
}

/** `1.44` ≥ `1.40`, compared as numbers per component. */
export function versionAtLeast(version: string, min: string): boolean {
  const a = version.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/** docker's query booleans: false for absent, empty, 0, no, false, none (any case); anything else true. */
export function boolParam(q: URLSearchParams, name: string, absent = false): boolean {
  const v = q.get(name);
  if (v === null) return absent;
  return !['', '0', 'no', 'false', 'none'].includes(v.trim().toLowerCase());
}

/** `filters={"key":{"value":true}}` or the legacy `{"key":["value"]}`; anything else 400 `invalid filter`. */
export function filtersParam(q: URLSearchParams, name = 'filters'): Filters {
  const raw = q.get(name);
  if (raw === null || raw.trim() === '') return {};
  let v: unknown;
  try { v = JSON.parse(raw); } catch { throw badParameter('invalid filter', { filters: raw }); }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badParameter('invalid filter', { filters: raw });
  const out: Filters = {};
  for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
    if (Array.isArray(value) && value.every((x) => typeof x === 'string')) out[key] = value as string[];
    else if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((x) => typeof x === 'boolean')) {
      out[key] = value as Record<string, boolean>;
    } else throw badParameter('invalid filter', { filters: raw });
  }
  return out;
}

/** A JSON-encoded OCI platform (`platform=`/`platforms=`); os and architecture are both required. */
export function jsonPlatform(raw: string): PlatformSpec {
  let v: unknown;
  try { v = JSON.parse(raw); } catch (e) { throw badParameter(`failed to parse platform: ${(e as Error).message}`, { platform: raw }); }
  if (typeof v !== 'object' || v === null) throw badParameter('failed to parse platform: not an object', { platform: raw });
  const o = v as Record<string, unknown>;
  const os = typeof o.os === 'string' ? o.os : '';
  const architecture = typeof o.architecture === 'string' ? o.architecture : '';
  if (!os || !architecture) throw badParameter('failed to parse platform: both OS and Architecture must be provided', { platform: raw });
  return {
    os, architecture,
    ...(typeof o.variant === 'string' && o.variant ? { variant: o.variant } : {}),
    ...(typeof o['os.version'] === 'string' && o['os.version'] ? { 'os.version': o['os.version'] } : {}),
    ...(Array.isArray(o['os.features']) ? { 'os.features': (o['os.features'] as unknown[]).map(String) } : {}),
  };
}

/** Every non-empty `name=` value decoded as a JSON platform. */
export function jsonPlatforms(q: URLSearchParams, name: string): PlatformSpec[] {
  return q.getAll(name).filter((s) => s.trim() !== '').map(jsonPlatform);
}

/** Reads a small JSON body (docker's httputils.ReadJSON: Content-Type application/json, one value, nothing after). */
export async function readJSONBody(r: EngineRequest, cap = 4 * 1024 * 1024): Promise<unknown> {
  const type = r.req.headers['content-type'];
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of r.req) {
    size += (c as Buffer).length;
    if (size > cap) throw badParameter(`request body is over ${cap} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  // docker's CheckForJSON: a body must say it is JSON.
  if (!type || !/^application\/json$/i.test(type.split(';')[0]!.trim())) {
    throw badParameter(`unsupported Content-Type header (${type ?? ''}): must be 'application/json'`);
  }
  try { return JSON.parse(text); } catch (e) { throw badParameter(`invalid JSON: ${(e as Error).message}`); }
}

/** A JSON answer with its length. */
export function sendJSON(r: EngineRequest, status: number, value: unknown): void {
  const body = JSON.stringify(value) + '\n';
  r.res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  r.res.end(body);
}
