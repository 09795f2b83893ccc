/**
 * A private dockerd (Debian's 20.10) for interop tests: its own data root, exec root, unix socket and
 * pidfile under a fresh directory, no iptables, no bridge, the vfs storage driver (works on any file
 * system). `docker(args)` runs the docker CLI against it. Root only.
 *
 *   const d = await startDockerd({ insecureRegistries: [reg.host], registryMirrors: [mirror.url] });
 *   await d.docker(['pull', `${reg.host}/app:1`]);
 *   await d.stop();
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Dockerd {
  socket: string;
  /** Runs the docker CLI against this daemon (asynchronously: servers it talks to may run in this process). */
  docker(args: string[]): Promise<string>;
  log(): string;
  stop(): Promise<void>;
}

export function canRunDockerd(): boolean {
  return process.getuid?.() === 0 && spawnSync('dockerd', ['--version'], { stdio: 'ignore' }).status === 0
    && spawnSync('docker', ['--version'], { stdio: 'ignore' }).status === 0;
}

export async function startDockerd(opts: { insecureRegistries?: string[]; registryMirrors?: string[] } = {}): Promise<Dockerd> {
  // Short paths: the socket path must stay under the 108-byte unix limit.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dkd-'));
  const socket = path.join(dir, 'd.sock');
  const logFile = path.join(dir, 'dockerd.log');
  const args = [
    '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'd.pid'),
    '-H', `unix://${socket}`, '--iptables=false', '--ip6tables=false', '--bridge=none', '--storage-driver=vfs',
    '--config-file', path.join(dir, 'daemon.json'),
    ...(opts.insecureRegistries ?? []).flatMap((r) => ['--insecure-registry', r]),
    ...(opts.registryMirrors ?? []).flatMap((m) => ['--registry-mirror', m]),
  ];
  fs.writeFileSync(path.join(dir, 'daemon.json'), '{}');
  const logFd = fs.openSync(logFile, 'w');
  const child: ChildProcess = spawn('dockerd', args, { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  const killOnExit = (): void => { child.kill('SIGKILL'); };
  process.once('exit', killOnExit);
  const env = { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: path.join(dir, 'cli') };
  const docker = (a: string[]): Promise<string> => new Promise((resolve, reject) => {
    execFile('docker', a, { env, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`docker ${a.join(' ')}: ${err.message}\n${stderr}${stdout}`));
      else resolve(stdout);
    });
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`dockerd exited with ${child.exitCode}:\n${fs.readFileSync(logFile, 'utf8').slice(-3000)}`);
    if (fs.existsSync(socket) && spawnSync('docker', ['version'], { env, stdio: 'ignore' }).status === 0) break;
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`dockerd did not start:\n${fs.readFileSync(logFile, 'utf8').slice(-3000)}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    socket,
    docker,
    log: () => fs.readFileSync(logFile, 'utf8'),
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await gone;
        clearTimeout(t);
      }
      for (const m of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m) => m?.startsWith(dir)).reverse()) {
        spawnSync('umount', ['-l', m!], { stdio: 'ignore' });
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
