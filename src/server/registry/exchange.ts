import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorBody, Header } from '../../distribution/index.js';
import type { RepositoryView } from '../../images/index.js';
import { RegistryError } from './errors.js';
import type { Mirror } from './mirror.js';
import type { Uploads } from './uploads.js';

/** One request and what it is answered with, plus the server's parts the handlers use. */
export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  view: RepositoryView;
  uploads: Uploads;
  mirror?: Mirror;
  /** Fires when the client goes away before the answer is complete. */
  signal: AbortSignal;
}

/** Answers with a status, headers and an optional body (a HEAD answer keeps the headers, drops the body). */
export function send(ex: Exchange, status: number, headers: Record<string, string | number> = {}, body?: Buffer): void {
  const { res } = ex;
  res.statusCode = status;
  res.setHeader(Header.ApiVersion, 'registry/2.0');
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (body !== undefined && !res.hasHeader('content-length')) res.setHeader('content-length', body.length);
  if (body === undefined && !res.hasHeader('content-length')) res.setHeader('content-length', 0);
  res.end(ex.req.method === 'HEAD' ? undefined : body);
}

export function sendJson(ex: Exchange, status: number, value: unknown, headers: Record<string, string | number> = {}): void {
  // A Buffer, so that nothing adds `; charset=utf-8` to the exact type (the referrers API checks it).
  send(ex, status, { 'content-type': 'application/json', ...headers }, Buffer.from(JSON.stringify(value)));
}

export function sendError(ex: Exchange, err: RegistryError): void {
  if (ex.res.headersSent) { ex.res.destroy(); return; }
  send(ex, err.status, { 'content-type': 'application/json', ...err.headers }, errorBody(err.code, err.message, err.detail));
}

/** The request body, whole, refusing more than `cap` bytes (413). */
export async function readBodyCapped(ex: Exchange, cap: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of ex.req) {
    n += (c as Buffer).length;
    if (n > cap) throw new RegistryError('SIZE_INVALID', `request body over the ${cap}-byte limit`, undefined, { status: 413 });
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks, n);
}

/** The relative URL of a repository path below `/v2/`. */
export function v2Path(repo: string, rest: string): string { return `/v2/${repo}/${rest}`; }
