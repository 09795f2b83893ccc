/**
 * A loopback reverse proxy in front of a real registry that injects the faults a real registry will not
 * produce on demand: a connection dropped after N body bytes, a flipped byte, 5xx/429 bursts, a redirect
 * to a separate "storage" host (which records the headers it receives, to prove no credentials leak),
 * an oversized manifest, and a server that ignores Range. Clients use `proxy.host` as the registry host;
 * the Host header is passed through so the registry's upload Locations point back at the proxy.
 *
 *   const proxy = await startFaultProxy(reg.url);
 *   proxy.addFault({ method: 'GET', path: /\/blobs\/sha256:/, fault: { kind: 'drop', afterBytes: 1 << 20 } });
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MediaType, digestOf } from '../../src/oci/index.js';

export type Fault =
  | { kind: 'drop'; afterBytes: number }
  | { kind: 'flip'; at: number }
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  | { kind: 'redirect' }
  | { kind: 'oversize'; bytes: number }
  | { kind: 'ignoreRange' }
  | { kind: 'delay'; ms: number }
  /** Sends the body at no more than `bytesPerSecond` (a slow network, for what only a slow download does). */
  | { kind: 'throttle'; bytesPerSecond: number }
  /** Sends the first `afterBytes` of the body, then nothing more until the client goes away. */
  | { kind: 'stall'; afterBytes: number }
  /** Never answers, not even the headers: the request hangs until the client goes away (`clientClosed`). */
  | { kind: 'hang' }
  /** Holds the request until `until` settles, then forwards it (an ordering a test controls, not a delay). */
  | { kind: 'hold'; until: Promise<unknown> };

export interface FaultRule {
  method?: string;
  /** Substring or regex matched against the request path + query. */
  path?: string | RegExp;
  /** How many requests this rule hits; default 1. */
  times?: number;
  /** Let this many matching requests through untouched first. */
  skip?: number;
  fault: Fault;
}

export interface ProxyRecord {
  method: string;
  path: string;
  status: number;
  /** Response body bytes sent to the client. */
  bytesSent: number;
  range?: string;
  authorization?: string;
  fault?: Fault['kind'];
  /** A hung request whose client closed the connection. */
  clientClosed?: boolean;
}

export interface StorageRecord {
  path: string;
  /** The raw query string as received (presigned URLs must arrive byte-exact). */
  rawQuery: string;
  authorization?: string;
  cookie?: string;
  range?: string;
  bytesSent: number;
}

export interface FaultProxy {
  host: string;
  url: string;
  requests: ProxyRecord[];
  /** The host redirects point at (a different host name than the proxy). */
  storage: { host: string; url: string; requests: StorageRecord[] };
  /** The query the redirect Location carries, so tests can compare it byte for byte. */
  presignedQuery: string;
  addFault(rule: FaultRule): void;
  clearFaults(): void;
  /** Body bytes sent for requests whose path matches. */
  bytesSentFor(path: string | RegExp): number;
  stop(): Promise<void>;
}

function matches(p: string | RegExp | undefined, s: string): boolean {
  if (p === undefined) return true;
  return typeof p === 'string' ? s.includes(p) : p.test(s);
}

async function listen(server: http.Server, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, host, () => resolve()); });
  return (server.address() as AddressInfo).port;
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
}

/** Serves buffered bodies under random keys, honouring Range, recording what it was sent. */
async function startStorageHost(): Promise<{ server: http.Server; host: string; url: string; requests: StorageRecord[]; put(body: Buffer, contentType: string): string }> {
  const bodies = new Map<string, { body: Buffer; contentType: string }>();
  const requests: StorageRecord[] = [];
  const server = http.createServer((req, res) => {
    const [p, q = ''] = (req.url ?? '/').split('?', 2) as [string, string?];
    const rec: StorageRecord = { path: p, rawQuery: q, authorization: req.headers.authorization, cookie: req.headers.cookie, range: req.headers.range, bytesSent: 0 };
    requests.push(rec);
    const entry = bodies.get(p.slice(1));
    if (!entry) { res.writeHead(404).end(); return; }
    let { body } = entry;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const headers: Record<string, string | number> = { 'Content-Type': entry.contentType };
    let status = 200;
    if (m) {
      const start = Number(m[1]);
      const end = m[2] ? Number(m[2]) : body.length - 1;
      if (start >= body.length) { res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end(); return; }
      headers['Content-Range'] = `bytes ${start}-${end}/${body.length}`;
      body = body.subarray(start, end + 1);
      status = 206;
    }
    headers['Content-Length'] = body.length;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') { res.end(); return; }
    rec.bytesSent = body.length;
    res.end(body);
  });
  // A different host name than the registry's 127.0.0.1 (127.0.0.2 is loopback on Linux).
  let hostname = '127.0.0.2';
  let port: number;
  try { port = await listen(server, hostname); } catch { hostname = 'localhost'; port = await listen(server, hostname); }
  return {
    server, host: `${hostname}:${port}`, url: `http://${hostname}:${port}`, requests,
    put(body, contentType) { const key = randomBytes(8).toString('hex'); bodies.set(key, { body, contentType }); return key; },
  };
}

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const up = new URL(upstream);
  const rules: Array<FaultRule & { left: number; skipLeft: number }> = [];
  const requests: ProxyRecord[] = [];
  const storage = await startStorageHost();
  const presignedQuery = 'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20240101%2Fus-east-1&X-Amz-Signature=ab%2Bcd%3D%3D&X-Amz-Expires=300';

  const take = (method: string, p: string): Fault | undefined => {
    const r = rules.find((x) => x.left > 0 && (x.method === undefined || x.method === method) && matches(x.path, p));
    if (!r) return undefined;
    if (r.skipLeft > 0) { r.skipLeft--; return undefined; }
    r.left--;
    return r.fault;
  };

  const forward = (req: http.IncomingMessage, headers: http.OutgoingHttpHeaders): Promise<http.IncomingMessage> =>
    new Promise((resolve, reject) => {
      const out = http.request({ hostname: up.hostname, port: up.port, method: req.method, path: req.url, headers }, resolve);
      out.on('error', reject);
      req.pipe(out);
    });

  const server = http.createServer(async (req, res) => {
    const p = req.url ?? '/';
    const rec: ProxyRecord = { method: req.method ?? '', path: p, status: 0, bytesSent: 0, range: req.headers.range, authorization: req.headers.authorization };
    requests.push(rec);
    const fault = take(req.method ?? '', p);
    if (fault) rec.fault = fault.kind;
    try {
      if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));
      if (fault?.kind === 'hold') await fault.until.catch(() => undefined);
      if (fault?.kind === 'hang') {
        req.resume();
        res.on('close', () => { rec.clientClosed = true; });
        return;
      }
      if (fault?.kind === 'status') {
        rec.status = fault.status;
        req.resume();
        res.writeHead(fault.status, { 'Content-Type': 'application/json', ...fault.headers });
        res.end(fault.body ?? JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected fault' }] }));
        return;
      }
      if (fault?.kind === 'oversize') {
        req.resume();
        const pad = Math.max(0, fault.bytes - 200);
        const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: digestOf('x'), size: 1 }, layers: [], annotations: { pad: 'a'.repeat(pad) } }));
        rec.status = 200;
        res.writeHead(200, { 'Content-Type': MediaType.OciManifest, 'Content-Length': body.length, 'Docker-Content-Digest': digestOf(body) });
        if (req.method === 'HEAD') { res.end(); return; }
        rec.bytesSent = body.length;
        res.end(body);
        return;
      }
      const headers: http.OutgoingHttpHeaders = { ...req.headers };
      if (fault?.kind === 'ignoreRange' || fault?.kind === 'redirect') delete headers.range;
      const upRes = await forward(req, headers);
      if (fault?.kind === 'redirect' && upRes.statusCode === 200) {
        const chunks: Buffer[] = [];
        for await (const c of upRes) chunks.push(c as Buffer);
        const key = storage.put(Buffer.concat(chunks), String(upRes.headers['content-type'] ?? 'application/octet-stream'));
        rec.status = 307;
        res.writeHead(307, { Location: `${storage.url}/${key}?${presignedQuery}`, 'Content-Length': 0 });
        res.end();
        return;
      }
      rec.status = upRes.statusCode ?? 0;
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      let offset = 0;
      const started = Date.now();
      for await (const c of upRes) {
        let chunk = c as Buffer;
        if (fault?.kind === 'throttle') {
          const wait = started + ((offset + chunk.length) * 1000) / fault.bytesPerSecond - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        if (fault?.kind === 'flip' && fault.at >= offset && fault.at < offset + chunk.length) {
          chunk = Buffer.from(chunk);
          chunk[fault.at - offset] = chunk[fault.at - offset]! ^ 0xff;
        }
        if (fault?.kind === 'drop' && offset + chunk.length >= fault.afterBytes) {
          const part = chunk.subarray(0, fault.afterBytes - offset);
          rec.bytesSent += part.length;
          await new Promise<void>((r) => res.write(part, () => r()));
          // A FIN after the bytes, not a reset: a reset may make the client's kernel discard bytes it
          // received but its process had not read yet, and the client must see exactly `afterBytes`.
          res.socket?.end();
          upRes.destroy();
          return;
        }
        if (fault?.kind === 'stall' && offset + chunk.length >= fault.afterBytes) {
          const part = chunk.subarray(0, fault.afterBytes - offset);
          rec.bytesSent += part.length;
          res.write(part);
          upRes.destroy();
          if (!res.destroyed) await new Promise<void>((r) => res.once('close', () => r()));
          return;
        }
        offset += chunk.length;
        rec.bytesSent += chunk.length;
        if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
      }
      res.end();
    } catch {
      rec.status = 502;
      if (!res.headersSent) res.writeHead(502).end(); else res.destroy();
    }
  });
  const port = await listen(server, '127.0.0.1');
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    storage: { host: storage.host, url: storage.url, requests: storage.requests },
    presignedQuery,
    addFault(rule) { rules.push({ ...rule, left: rule.times ?? 1, skipLeft: rule.skip ?? 0 }); },
    clearFaults() { rules.length = 0; },
    bytesSentFor(path) { return requests.filter((r) => matches(path, r.path)).reduce((n, r) => n + r.bytesSent, 0); },
    async stop() { await closeServer(server); await closeServer(storage.server); },
  };
}
