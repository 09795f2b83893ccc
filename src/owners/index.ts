import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * Which process holds something (an ingest lock, the GC lock, a lease), recorded so that any later
 * process can tell a live holder from a dead one: the pid, the pid's start time (to see through pid
 * reuse) and the host (a pid means nothing on another host sharing the store).
 */
export interface ProcessOwner {
  pid: number;
  /** Start time of the process (clock ticks since boot, from /proc/<pid>/stat); absent where /proc is missing. */
  start?: string;
  host: string;
}

/** Process start time from /proc/<pid>/stat (field 22), or undefined where /proc is missing. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

const selfStart = processStartTime(process.pid);
const selfHost = hostname();

/** The process this code runs in. */
export function currentProcess(): ProcessOwner {
  return { pid: process.pid, ...(selfStart !== undefined ? { start: selfStart } : {}), host: selfHost };
}

/**
 * Whether a process with this pid exists on this host: signal 0 reaches it, or it exists but belongs to
 * someone else (EPERM). Only ESRCH proves it gone, so any other failure counts as alive.
 */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * 'dead' only when proven: same host and the pid is gone or now belongs to a process started at
 * another time. 'unknown' for another host (it cannot be probed from here); 'alive' otherwise.
 */
export function ownerState(o: ProcessOwner): 'alive' | 'dead' | 'unknown' {
  if (o.host !== selfHost) return 'unknown';
  if (o.pid === process.pid) return o.start !== undefined && selfStart !== undefined && o.start !== selfStart ? 'dead' : 'alive';
  if (!pidExists(o.pid)) return 'dead';
  const start = processStartTime(o.pid);
  return o.start !== undefined && start !== undefined && start !== o.start ? 'dead' : 'alive';
}
