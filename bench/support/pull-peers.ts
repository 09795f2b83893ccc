// Child processes for bench/pull.ts: timed runs under /usr/bin/time -v; the private containerd lives in
// test/harness/containerd.ts (the tests compare with it too).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Wall time, peak RSS, and CPU time (user + system, the process and the children it waited for). */
export interface Timed { ms: number; maxRssMiB: number; cpuS: number }

/** CPU seconds (user + system) a process has used so far, from /proc (for a daemon /usr/bin/time cannot wrap). */
export function processCpuS(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the command name.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Runs a command under `/usr/bin/time -v`; its report goes to a file in `scratch` (a directory the
 * caller removes, also when interrupted), not mixed with the command's stderr.
 */
export function timed(cmd: string, args: string[], scratch: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Timed> {
  const report = path.join(fs.mkdtempSync(path.join(scratch, 'time-')), 'time');
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn('/usr/bin/time', ['-v', '-o', report, cmd, ...args], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stdout!.resume();
    p.stderr!.on('data', (c: Buffer) => { err = (err + c.toString()).slice(-4000); });
    p.once('error', reject);
    p.once('close', (code) => {
      const ms = performance.now() - t0;
      const text = fs.existsSync(report) ? fs.readFileSync(report, 'utf8') : '';
      fs.rmSync(path.dirname(report), { recursive: true, force: true });
      if (code !== 0) { reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${err}`)); return; }
      const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(text)?.[1] ?? 0);
      const user = Number(/User time \(seconds\): ([\d.]+)/.exec(text)?.[1] ?? 0);
      const sys = Number(/System time \(seconds\): ([\d.]+)/.exec(text)?.[1] ?? 0);
      resolve({ ms, maxRssMiB: kb / 1024, cpuS: user + sys });
    });
  });
}

export { ctr, startContainerd, mountsUnder, unmountAll, type Containerd } from '../../test/harness/containerd.js';
