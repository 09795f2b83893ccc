/**
 * A tiny read-only OCI distribution server on loopback for the offline demo: `GET/HEAD /v2/`,
 * manifests by tag or digest, blobs (with `Range`), tag lists; every write is refused. Only what a
 * puller needs; the real registry server is a separate piece of Stowage.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Blob } from './demo-image.js';

export interface Repository { manifests: Map<string, Blob>; blobs: Map<string, Blob> }

export interface DemoRegistry { host: string; close(): Promise<void> }

function sendError(res: http.ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ errors: [{ code, message, detail: null }] });
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Serves `repos` (name → tags and blobs) on 127.0.0.1, at `preferredPort` when it is free (so the image keeps
 * its name from one run to the next), else at any free port.
 */
export async function startDemoRegistry(repos: Map<string, Repository>, preferredPort = 0): Promise<DemoRegistry> {
  const server = http.createServer((req, res) => {
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    const url = new URL(req.url ?? '/', 'http://localhost');
    const p = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, 'UNSUPPORTED', 'this registry is read-only');
    if (p === '/v2/' || p === '/v2') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 2 });
      return res.end(req.method === 'HEAD' ? undefined : '{}');
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs|tags)\/(.+)$/.exec(p);
    if (!m) return sendError(res, 404, 'NOT_FOUND', 'not found');
    const [, name, kind, ref] = m as unknown as [string, string, string, string];
    const repo = repos.get(name);
    if (!repo) return sendError(res, 404, 'NAME_UNKNOWN', `repository name not known to registry: ${name}`);
    if (kind === 'tags') {
      const body = JSON.stringify({ name, tags: [...repo.manifests.keys()].filter((t) => !t.includes(':')) });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      return res.end(body);
    }
    const item = kind === 'manifests' ? repo.manifests.get(ref) ?? manifestByDigest(repo, ref) : repo.blobs.get(ref);
    if (!item) {
      return kind === 'manifests'
        ? sendError(res, 404, 'MANIFEST_UNKNOWN', `manifest unknown: ${ref}`)
        : sendError(res, 404, 'BLOB_UNKNOWN', `blob unknown to registry: ${ref}`);
    }
    const headers: http.OutgoingHttpHeaders = {
      'Docker-Content-Digest': item.digest,
      'Content-Type': kind === 'manifests' ? item.mediaType : 'application/octet-stream',
      'Accept-Ranges': 'bytes',
    };
    let body = item.bytes;
    let status = 200;
    const range = kind === 'blobs' ? /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '') : null;
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
      if (start >= body.length) return sendError(res, 416, 'RANGE_INVALID', 'range not satisfiable');
      headers['Content-Range'] = `bytes ${start}-${end}/${body.length}`;
      body = body.subarray(start, end + 1);
      status = 206;
    }
    headers['Content-Length'] = body.length;
    res.writeHead(status, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  const listen = (port: number): Promise<void> => new Promise<void>((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen(port, '127.0.0.1', () => { server.off('error', onError); resolve(); });
  });
  try {
    await listen(preferredPort);
  } catch (e) {
    if (preferredPort === 0 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    await listen(0);
  }
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function manifestByDigest(repo: Repository, ref: string): Blob | undefined {
  for (const b of repo.manifests.values()) if (b.digest === ref) return b;
  return undefined;
}
