/**
 * Where the server listens: `unix:///path/docker.sock` (created 0600, or 0660 for the group given; a stale
 * socket left by a killed server is replaced, a live one or any other file is never touched) or
 * `tcp://127.0.0.1:PORT` (loopback only: the API has no authentication of its own).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type http from 'node:http';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, fromSystemError } from '../../errors/index.js';

export type ListenAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export function parseHost(host: string): ListenAddress {
  if (host.startsWith('unix://')) {
    const p = host.slice('unix://'.length);
    if (!p.startsWith('/')) throw new InvalidArgumentError(`invalid docker host ${host}: the socket path must be absolute`, { host });
    return { kind: 'unix', path: p };
  }
  if (host.startsWith('tcp://')) {
    let url: URL;
    try { url = new URL(`http://${host.slice('tcp://'.length)}`); } catch { throw new InvalidArgumentError(`invalid docker host ${host}`, { host }); }
    if (url.pathname !== '/' && url.pathname !== '') throw new InvalidArgumentError(`invalid docker host ${host}: no path allowed`, { host });
    const hostname = url.hostname.replace(/^\[|\]$/g, '');
    if (!(net.isIP(hostname) && (hostname.startsWith('127.') || hostname === '::1')) && hostname !== 'localhost') {
      throw new InvalidArgumentError(`refusing to listen on ${host}: the Engine API has no authentication, use a loopback address or a unix socket`, { host });
    }
    return { kind: 'tcp', host: hostname === 'localhost' ? '127.0.0.1' : hostname, port: url.port === '' ? 2375 : Number(url.port) };
  }
  throw new InvalidArgumentError(`invalid docker host ${host}: use unix:///path/to/docker.sock or tcp://127.0.0.1:PORT`, { host });
}

/** gid of a group name or number, from /etc/group. */
export function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  let text = '';
  try { text = fs.readFileSync('/etc/group', 'utf8'); } catch (e) { throw fromSystemError(e, '/etc/group'); }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined) return Number(gid);
  }
  throw new NotFoundError(`group ${group} not found`, { group });
}

/** Does something answer on this socket path? ECONNREFUSED means a stale file from a server that died. */
function socketAnswers(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(p);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

async function removeStaleSocket(p: string): Promise<void> {
  let st: fs.Stats;
  try { st = fs.lstatSync(p); } catch { return; }
  if (!st.isSocket()) throw new AlreadyExistsError(`${p} exists and is not a socket; not replacing it`, { path: p });
  if (await socketAnswers(p)) throw new AlreadyExistsError(`another server is listening on ${p}`, { path: p });
  // Stale: nothing listens. Remove only the file we examined (a new server may have replaced it meanwhile).
  const again = fs.lstatSync(p);
  if (again.ino === st.ino && again.dev === st.dev) fs.unlinkSync(p);
}

function listenOn(server: http.Server, arg: string | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => { server.off('error', reject); resolve(); };
    if (typeof arg === 'string') server.listen(arg, done);
    else server.listen(arg.port, arg.host, done);
  });
}

export interface Listening {
  /** `unix:///path` or `tcp://127.0.0.1:PORT` (the port chosen when 0 was asked). */
  address: string;
  /** Removes the socket file if it is still ours. */
  cleanup(): void;
}

export async function listen(server: http.Server, addr: ListenAddress, opts: { group?: string } = {}): Promise<Listening> {
  if (addr.kind === 'tcp') {
    await listenOn(server, { host: addr.host, port: addr.port });
    const a = server.address() as net.AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return { address: `tcp://${host}:${a.port}`, cleanup: () => undefined };
  }
  const gid = opts.group !== undefined ? groupId(opts.group) : undefined;
  await removeStaleSocket(addr.path);
  // Bind under a private name, set owner and mode, then rename into place: the socket is never reachable
  // at its public path with looser permissions than asked.
  const dir = path.dirname(addr.path);
  const tmp = path.join(dir, `.${path.basename(addr.path)}.${process.pid}.${Date.now()}.tmp`);
  await listenOn(server, tmp);
  try {
    if (gid !== undefined) { fs.chownSync(tmp, process.getuid?.() ?? -1, gid); fs.chmodSync(tmp, 0o660); } else fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, addr.path);
  } catch (e) {
    try { fs.unlinkSync(tmp); } catch { /* gone */ }
    server.close();
    throw fromSystemError(e, `socket ${addr.path}`);
  }
  const ours = fs.lstatSync(addr.path);
  return {
    address: `unix://${addr.path}`,
    cleanup() {
      try {
        const st = fs.lstatSync(addr.path);
        if (st.ino === ours.ino && st.dev === ours.dev) fs.unlinkSync(addr.path);
      } catch { /* already gone */ }
    },
  };
}
