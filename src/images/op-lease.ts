import type { Lease } from '../metadata/index.js';
import { currentProcess } from '../owners/index.js';
import type { Ctx } from './context.js';
import { LEASE_PURPOSE } from '../content/index.js';

/**
 * How long an operation's lease protects its work when the process that holds it does not end it (a day,
 * so that an interrupted pull or load can be resumed; a dead holder's lease is released sooner by gc).
 */
export const OPERATION_LEASE_TTL_MS = 24 * 3600_000;

/**
 * The lease of one operation of this process (pull, load, import, commit, checkout...). It records the
 * process, so that once the process dies the lease is known to be a leftover (`check` reports it as
 * reclaimable, `gc` releases it after DEAD_LEASE_GRACE_MS). And it takes over the leases of the same
 * operation (same purpose) whose process died: their finished blobs and snapshots are kept and their
 * ingests resume, so a re-run fetches or writes nothing twice, and no leftover lease stays behind.
 */
export function operationLease(ctx: Ctx, purpose: string, expiresInMs: number): Lease {
  const labels = { [LEASE_PURPOSE]: purpose };
  const lease = ctx.md.leases.create({ expiresInMs, owner: currentProcess(), labels });
  ctx.md.leases.adoptDead(lease.id, labels);
  return lease;
}
