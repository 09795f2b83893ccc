/**
 * The Docker Engine API server: the image surface of the API over an opened store, so that the docker
 * command line and docker client libraries drive Stowage with no daemon behind it.
 *
 *   const srv = await startEngineServer(store, { host: 'unix:///run/user/1000/stowage.sock' });
 *   // DOCKER_HOST=unix:///run/user/1000/stowage.sock docker images
 *   await srv.close();
 */
import http from 'node:http';
import { BUILD_ROUTES } from './build.js';
import { EVENT_ROUTES } from './events.js';
import { IMAGE_ROUTES } from './images.js';
import { listen, parseHost } from './listen.js';
import { createDispatcher, type Route } from './router.js';
import type { EngineBackend } from './request.js';
import { systemRoutes } from './system.js';

export { MAX_API_VERSION, MIN_API_VERSION } from './router.js';
export { parseHost } from './listen.js';
export type { EngineBackend } from './request.js';

export interface EngineServerOptions {
  /** `unix:///abs/path.sock` or `tcp://127.0.0.1:PORT` (port 0: any free port). */
  host: string;
  /** Group (name or gid) given read/write access to the unix socket (mode 0660 instead of 0600). */
  group?: string;
  /** Engine version reported by /version and /info (Stowage's). */
  version?: string;
}

export interface EngineServer {
  /** Where it listens, in DOCKER_HOST form. */
  address: string;
  /**
   * Stops accepting and removes the socket; requests in flight finish (a pull completes), event streams
   * end. `force` cancels the requests in flight instead (their pulls stop, partial downloads stay resumable).
   */
  close(opts?: { force?: boolean }): Promise<void>;
}

/** Go's net/http answers a request whose header is over 1 MiB with this (docker's daemon does too). */
const MAX_HEADER_BYTES = 1024 * 1024;

export async function startEngineServer(store: EngineBackend, opts: EngineServerOptions): Promise<EngineServer> {
  const addr = parseHost(opts.host);
  const version = opts.version ?? 'unknown';
  const routes: Route[] = [...systemRoutes({ version }), ...IMAGE_ROUTES, ...EVENT_ROUTES, ...BUILD_ROUTES];
  const stopping = new AbortController();
  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: 0 }, createDispatcher(store, routes, { server: `Docker/${version} (linux)` }, stopping.signal));
  // Once stopping, a connection closes as soon as its answer is complete instead of idling until its keep-alive timeout.
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    res.once('finish', () => { if (stopping.signal.aborted) req.socket.end(); });
  });
  // Malformed requests get Go's plain-text answers; the connection closes, the server keeps serving.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) { socket.destroy(); return; }
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const status = tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${status}`);
  });
  const listening = await listen(server, addr, opts.group !== undefined ? { group: opts.group } : {});
  let closing: Promise<void> | undefined;
  return {
    address: listening.address,
    close(o = {}) {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        listening.cleanup();
        stopping.abort();
        server.closeIdleConnections();
      });
      if (o.force) server.closeAllConnections();
      return closing;
    },
  };
}
