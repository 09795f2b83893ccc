/**
 * A private dockerd (Debian's docker.io, 20.10) for comparison tests: its own data root, exec root,
 * unix socket and pid file, no iptables and no bridge, its own containerd under the exec root. Needs root
 * and /usr/sbin/dockerd (scripts/test.sh installs docker.io); starting fails loudly otherwise.
 *
 *   const d = await startDockerd();   // d.host = 'unix:///tmp/.../docker.sock'
 *   ... DOCKER_HOST=d.host docker images ...
 *   await d.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export interface Dockerd {
  host: string;
  socket: string;
  dir: string;
  log(): string;
  stop(): Promise<void>;
}

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath: socket, path: '/_ping', timeout: 1000 }, (res) => { res.resume(); resolve(res.statusCode === 200); });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
  });
}

export async function startDockerd(): Promise<Dockerd> {
  if (process.getuid?.() !== 0) throw new Error('startDockerd: dockerd needs root (run the tests as root, as scripts/test.sh does)');
  if (!fs.existsSync('/usr/sbin/dockerd')) throw new Error('startDockerd: /usr/sbin/dockerd missing (apt-get install docker.io)');
  // Short path: unix socket paths are limited to 108 bytes, and containerd's live under the exec root.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dd-'));
  const socket = path.join(dir, 'docker.sock');
  const ns = `stowage-test-${path.basename(dir)}`;
  let out = '';
  const child: ChildProcess = spawn('/usr/sbin/dockerd', [
    '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '-H', `unix://${socket}`,
    '--pidfile', path.join(dir, 'dockerd.pid'), '--iptables=false', '--ip6tables=false', '--bridge=none', '--ip-masq=false',
    '--containerd-namespace', ns, '--containerd-plugins-namespace', `${ns}-plugins`, '--log-level', 'warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DOCKER_CONFIG: path.join(dir, 'config') } });
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let dead = false;
  void exited.then(() => { dead = true; });
  const deadline = Date.now() + 60_000;
  while (!(await ping(socket))) {
    if (dead) throw new Error(`dockerd exited during start:\n${out}`);
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`dockerd did not answer within 60 s:\n${out}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host: `unix://${socket}`, socket, dir,
    log: () => out,
    async stop() {
      if (!dead) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
      // Overlay mounts under the data root are gone once dockerd stopped cleanly; anything left is kept out of the way.
      try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* busy mount: left for the OS tmp cleaner */ }
    },
  };
}
