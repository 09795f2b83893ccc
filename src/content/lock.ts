import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { UnavailableError, fromSystemError, isNotFound } from '../errors/index.js';
import { currentProcess, ownerState } from '../owners/index.js';

/**
 * A per-ref lock shared by every process that opens the same store root.
 *
 * A lock is a file created with O_EXCL that records who holds it. A holder whose process is gone
 * (same host, `kill(pid, 0)` → ESRCH, or the pid now belongs to a process started at another time)
 * is stale and gets taken over, so a crashed writer never wedges a ref. Holders on another host
 * (a shared filesystem) cannot be probed: they are stale only after FOREIGN_LOCK_IDLE_MS without activity.
 */
export interface LockHolder {
  pid: number;
  hostname: string;
  /** Start time of the holder process (jiffies since boot, from /proc), to detect pid reuse. */
  procStart?: string;
  heldSince: string;
  ref: string;
  token: string;
}

export class RefLock {
  private released = false;
  constructor(readonly path: string, readonly holder: LockHolder) {}

  /** Removes the lock file if it is still ours. Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      const current = JSON.parse(await fsp.readFile(this.path, 'utf8')) as LockHolder;
      if (current.token !== this.holder.token) return; // taken over (we were judged dead): not ours any more
      await fsp.unlink(this.path);
    } catch {
      // already gone or unreadable: nothing we may safely remove
    }
  }
}

const self = currentProcess();
const host = self.host;

/** True when the holder's process is known to be gone. */
export function isStale(holder: LockHolder): boolean {
  return ownerState({ pid: holder.pid, host: holder.hostname, ...(holder.procStart !== undefined ? { start: holder.procStart } : {}) }) === 'dead';
}

/** A lock file that is empty or torn (its creator died between open and write) counts as stale after this age. */
const TORN_LOCK_AGE_MS = 5_000;

/**
 * A holder on another host cannot be probed. When neither its lock nor its ingest has moved for this
 * long, it is presumed gone: else a vanished host, or a container restarted under a new hostname, would
 * wedge the ref for good. (GC abandons ingests untouched for as long; a holder that wakes up after a
 * takeover can at worst spoil the ingest, which commit's digest check catches.)
 */
export const FOREIGN_LOCK_IDLE_MS = 24 * 60 * 60_000;

/**
 * Tries once to take the lock. Throws UnavailableError (data: ref, heldSince, holder pid/host) if a live
 * holder has it.
 */
export async function acquireRefLock(path: string, ref: string, lastActivityMs?: () => Promise<number | undefined>): Promise<RefLock> {
  const holder: LockHolder = {
    pid: process.pid,
    hostname: host,
    ...(self.start !== undefined ? { procStart: self.start } : {}),
    heldSince: new Date().toISOString(),
    ref,
    token: randomBytes(12).toString('hex'),
  };
  const body = JSON.stringify(holder);
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fh = await fsp.open(path, 'wx', 0o644);
      try {
        await fh.writeFile(body);
      } catch (e) {
        // The file is ours and empty or torn (e.g. ENOSPC): left behind it would pass for a live holder.
        await fh.close().catch(() => {});
        await fsp.unlink(path).catch(() => {});
        throw fromSystemError(e, `lock ${ref}`);
      }
      await fh.close();
      return new RefLock(path, holder);
    } catch (e) {
      const err = fromSystemError(e, `lock ${ref}`);
      if (err.code !== 'AlreadyExists') throw err;
    }
    let raw: string;
    let current: LockHolder | undefined;
    try {
      raw = await fsp.readFile(path, 'utf8');
    } catch (e) {
      if (isNotFound(e)) continue; // released meanwhile: try again
      throw fromSystemError(e, `lock ${ref}`);
    }
    try {
      current = JSON.parse(raw) as LockHolder;
    } catch {
      current = undefined;
    }
    let stale: boolean;
    if (current === undefined) {
      const st = await fsp.stat(path).catch(() => undefined);
      stale = st === undefined || Date.now() - st.mtimeMs > TORN_LOCK_AGE_MS;
    } else {
      stale = isStale(current);
      if (!stale && current.hostname !== host) {
        const lockAt = (await fsp.stat(path).catch(() => undefined))?.mtimeMs ?? Date.now();
        const activity = Math.max(lockAt, (await lastActivityMs?.().catch(() => undefined)) ?? 0);
        stale = Date.now() - activity > FOREIGN_LOCK_IDLE_MS;
      }
    }
    if (!stale) {
      throw new UnavailableError(`ref ${JSON.stringify(ref)} is locked${current ? ` by pid ${current.pid}@${current.hostname} since ${current.heldSince}` : ''}`, {
        ref,
        heldSince: current?.heldSince,
        heldForMs: current ? Date.now() - Date.parse(current.heldSince) : undefined,
        holderPid: current?.pid,
        holderHost: current?.hostname,
      });
    }
    await takeOver(path, raw);
  }
  throw new UnavailableError(`ref ${JSON.stringify(ref)}: lock contended`, { ref });
}

/**
 * Removes a stale lock, but only if it is still the same stale lock: a `.takeover` file (O_EXCL) makes
 * the check-and-unlink exclusive, so two processes can never both remove-and-recreate.
 */
async function takeOver(path: string, staleRaw: string): Promise<void> {
  const guard = `${path}.takeover`;
  let fh;
  try {
    fh = await fsp.open(guard, 'wx');
  } catch (e) {
    const err = fromSystemError(e, 'lock takeover');
    if (err.code !== 'AlreadyExists') throw err;
    const st = await fsp.stat(guard).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > TORN_LOCK_AGE_MS) await fsp.unlink(guard).catch(() => {});
    await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
    return;
  }
  try {
    const now = await fsp.readFile(path, 'utf8').catch(() => undefined);
    if (now === staleRaw) await fsp.unlink(path).catch(() => {});
  } finally {
    await fh.close();
    await fsp.unlink(guard).catch(() => {});
  }
}
