/**
 * A private dockerd (Debian's docker.io, 20.10) for interop tests: its own data root, exec root,
 * pid file and unix socket under a temporary directory, no iptables, no bridge. Driven with the docker
 * CLI on the machine. Root only (dockerd needs it); callers skip when `dockerdAvailable()` is false.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface Dockerd {
  socket: string;
  /** `unix://<socket>`, for DOCKER_HOST. */
  host: string;
  /** Runs the docker CLI against this daemon; rejects with stderr on failure. */
  docker(args: string[], opts?: { input?: Buffer }): Promise<{ stdout: Buffer; stderr: string }>;
  stop(): Promise<void>;
}

export function dockerdAvailable(): boolean {
  return process.geteuid?.() === 0
    && spawnSync('dockerd', ['--version']).status === 0
    && spawnSync('docker', ['--version']).status === 0;
}

export interface DockerdOptions {
  /** `--insecure-registry` entries (loopback registries are insecure for dockerd anyway). */
  insecureRegistries?: string[];
  /** `--registry-mirror` URLs: where Docker Hub pulls go first. */
  registryMirrors?: string[];
  /** vfs by default (works everywhere); overlay2 where the kernel allows it (benchmarks). */
  storageDriver?: string;
}

export async function startDockerd(opts: DockerdOptions = {}): Promise<Dockerd> {
  // Short paths: unix socket paths are limited to 108 bytes.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dkd-'));
  const socket = path.join(dir, 'd.sock');
  const log = fs.openSync(path.join(dir, 'dockerd.log'), 'a');
  const child: ChildProcess = spawn('dockerd', [
    '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--pidfile', path.join(dir, 'd.pid'),
    '-H', `unix://${socket}`, '--iptables=false', '--ip6tables=false', '--bridge=none', `--storage-driver=${opts.storageDriver ?? 'vfs'}`,
    '--containerd-namespace', `stowage-${path.basename(dir)}`,
    ...(opts.insecureRegistries ?? []).flatMap((r) => ['--insecure-registry', r]),
    ...(opts.registryMirrors ?? []).flatMap((m) => ['--registry-mirror', m]),
  ], { stdio: ['ignore', log, log], detached: false });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let dead = false;
  void exited.then(() => { dead = true; });

  const docker: Dockerd['docker'] = async (args, o = {}) => {
    if (o.input) {
      return new Promise((resolve, reject) => {
        const p = spawn('docker', ['-H', `unix://${socket}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
        const out: Buffer[] = [];
        let err = '';
        p.stdout.on('data', (c: Buffer) => out.push(c));
        p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
        p.on('error', reject);
        p.on('close', (code) => (code === 0 ? resolve({ stdout: Buffer.concat(out), stderr: err }) : reject(new Error(`docker ${args.join(' ')}: exit ${code}: ${err}`))));
        p.stdin.end(o.input);
      });
    }
    try {
      const r = await execFileP('docker', ['-H', `unix://${socket}`, ...args], { encoding: 'buffer', maxBuffer: 1 << 30 });
      return { stdout: r.stdout, stderr: r.stderr.toString() };
    } catch (e) {
      throw new Error(`docker ${args.join(' ')}: ${(e as { stderr?: Buffer }).stderr?.toString() ?? (e as Error).message}`);
    }
  };

  const stop = async () => {
    if (!dead) {
      child.kill('SIGTERM');
      await exited;
    }
    fs.closeSync(log);
    fs.rmSync(dir, { recursive: true, force: true });
  };

  // Ready when the API answers; dockerd takes a few seconds (it starts its own containerd).
  for (let i = 0; ; i++) {
    if (dead) {
      const text = fs.readFileSync(path.join(dir, 'dockerd.log'), 'utf8');
      await stop();
      throw new Error(`dockerd exited during start-up:\n${text.slice(-2000)}`);
    }
    try {
      await docker(['version', '--format', '{{.Server.Version}}']);
      break;
    } catch (e) {
      if (i > 600) { await stop(); throw e; }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { socket, host: `unix://${socket}`, docker, stop };
}
