// An in-process registry transport for faults a real registry cannot produce: each test answers the
// client's requests itself.
import { Readable } from 'node:stream';
import { MediaType, digestOf } from '../../src/oci/index.js';
import type { HttpRequest, HttpResponse } from '../../src/distribution/index.js';

/** An answer to `req` (header names lower-cased, as the client reads them). */
export function response(req: HttpRequest, status: number, headers: Record<string, string> = {}, body: Buffer | string = ''): HttpResponse {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  return { status, headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])), body: Readable.from(b.length ? [b] : []), url: req.url };
}

/** A small valid OCI manifest (empty config, no layers). */
export const manifest = Buffer.from(JSON.stringify({
  schemaVersion: 2, mediaType: MediaType.OciManifest,
  config: { mediaType: MediaType.OciConfig, digest: digestOf('{}'), size: 2 }, layers: [],
}));
