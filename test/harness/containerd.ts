// containerd 1.6 for tests and benches: a private daemon (root only), and ctr against it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Mount points at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const real = fs.existsSync(dir) ? fs.realpathSync(dir) : dir;
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && (m === real || m.startsWith(`${real}/`)))
    .sort((a, b) => b.length - a.length);
}

export function unmountAll(dir: string): void {
  for (const m of mountsUnder(dir)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
}

export interface Containerd {
  address: string;
  pid: number;
  /** containerd's own peak RSS so far (VmHWM). */
  peakRssMiB(): number;
  stop(): Promise<void>;
}

/**
 * containerd 1.6 as root with everything private under `dir`: root, state, sockets, opt; the CRI
 * plugin (needs cgroups and CNI) and the snapshotters that need other file systems are disabled.
 */
export async function startContainerd(dir: string): Promise<Containerd> {
  fs.mkdirSync(dir, { recursive: true });
  const address = path.join(dir, 'containerd.sock');
  const config = path.join(dir, 'config.toml');
  fs.writeFileSync(config, [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
    '[grpc]', `  address = "${address}"`,
    '[ttrpc]', `  address = "${address}.ttrpc"`,
    '[debug]', '  address = ""',
    '[metrics]', '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]', `  path = "${dir}/opt"`,
    '',
  ].join('\n'));
  const logFd = fs.openSync(path.join(dir, 'containerd.log'), 'w');
  const child: ChildProcess = spawn('containerd', ['--config', config], { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  const killOnExit = (): void => { child.kill('SIGKILL'); };
  process.once('exit', killOnExit);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`containerd exited with ${child.exitCode}:\n${fs.readFileSync(path.join(dir, 'containerd.log'), 'utf8').slice(-3000)}`);
    if (fs.existsSync(address) && spawnSync('ctr', ['--address', address, 'version'], { stdio: 'ignore' }).status === 0) break;
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error('containerd did not start'); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    address,
    pid: child.pid!,
    peakRssMiB: () => {
      const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return Number(m?.[1] ?? 0) / 1024;
    },
    stop: async () => {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(t);
      }
      unmountAll(dir);
    },
  };
}

/** `ctr --address ADDRESS -n NAMESPACE ARGS...`, its stdout; throws with its stderr on failure. */
export function ctr(address: string, args: string[], namespace = 'bench'): string {
  const r = spawnSync('ctr', ['--address', address, '-n', namespace, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`ctr ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
