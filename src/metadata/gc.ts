import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type Database from 'better-sqlite3';
import { isStowageError, throwIfAborted, UnavailableError } from '../errors/index.js';
import type { Digest } from '../oci/index.js';
import type { MetadataDB } from './db.js';
import { Graph, keeps, type GraphData, type Node } from './gcgraph.js';
import { GC_EXPIRE, GC_LABEL_PREFIX } from '../content/index.js';
import { ownerOf } from './leases.js';
import { internalsOf } from './store.js';
import { ownerState, pidExists } from '../owners/index.js';
import type { Labels, LeaseResource, Metadata } from './types.js';

/**
 * What GC needs from the content store. A `ContentStore` from src/content fits as is
 * (walk, delete, listStatuses, abort); GC never imports it.
 */
export interface GcContentBackend {
  /** Every committed blob on disk. `updatedAt` (the file's mtime) drives the grace period for unrecorded blobs. */
  walk(fn: (info: { digest: Digest; size: number; createdAt?: Date; updatedAt: Date }) => void | Promise<void>): Promise<void>;
  delete(digest: Digest): Promise<void>;
  listStatuses(): Promise<{ ref: string; updatedAt: Date; expected?: Digest }[]>;
  abort(ref: string): Promise<void>;
}

/** What GC needs from the snapshotters: directories named by snapshot record ids. */
export interface GcSnapshotBackend {
  /** Snapshotter names whose directories GC should also scan for orphans (records name the rest). */
  snapshotters?(): string[];
  listDirectories(snapshotter: string): Promise<number[]>;
  removeDirectory(snapshotter: string, id: number): Promise<void>;
}

export interface GcBackends { content?: GcContentBackend; snapshots?: GcSnapshotBackend }

export interface GcOptions {
  /** A blob file with no record is kept while younger than this (another process may be about to record it). Default 10 min. */
  gracePeriodMs?: number;
  /** An ingest untouched for this long, outside any live lease, is aborted. Default 24 h. */
  abandonIngestsAfterMs?: number;
  /**
   * A lease whose owner process is proven dead (same host, pid gone or reused) stops protecting its
   * resources once it is this old, so a crashed pull's committed blobs and snapshots are released.
   * Until then the next pull of the same image adopts it. Its ingests stay resumable regardless: an
   * ingest outside any lease is kept for `abandonIngestsAfterMs`. Default 1 h.
   */
  deadLeaseGraceMs?: number;
  /** Records deleted per write transaction. Default 500. */
  batchSize?: number;
  /** Compute and report, delete nothing. */
  dryRun?: boolean;
  signal?: AbortSignal;
  /**
   * Told the candidates once the mark is done, then each record and file as it goes (after its
   * transaction commits). A listener that throws is ignored.
   */
  onProgress?: (step: GcStep) => void;
  /** Test hook: runs after the mark, before the first delete transaction. */
  afterMark?: () => void | Promise<void>;
  /** Test hook: runs after the record sweep (tombstones standing), before any file is deleted. */
  beforeFileDeletes?: () => void | Promise<void>;
}

/** One step of a collection, for progress: the mark's candidates, then one removal at a time. */
export type GcStep =
  | { step: 'marked'; candidates: { blobs: number; snapshots: number; images: number; leases: number; ingests: number } }
  /**
   * `id`: a blob's digest, `<snapshotter>/<key>` of a snapshot record, `<snapshotter>/<id>` of an orphan
   * snapshot directory (`snapshot-directory`), an image name, a lease id or an ingest ref. `size`: bytes
   * of a removed blob file.
   */
  | { step: 'removed'; kind: 'blob' | 'snapshot' | 'snapshot-directory' | 'image' | 'lease' | 'ingest'; id: string; size?: number };

export interface GcReport {
  removed: { blobs: number; snapshots: number; ingests: number; images: number; leases: number };
  bytesReclaimed: number;
  /** How often a delete batch found writes since the mark and marked again. */
  remarks: number;
  /** File deletions that failed (the files stay; the next run retries them as orphans). */
  errors: string[];
  durations: { scanMs: number; markMs: number; sweepMs: number; contentMs: number; snapshotsMs: number; totalMs: number; longestWriteTxMs: number };
  /** In dry runs, what would go (also filled in real runs). */
  candidates: { blobs: Digest[]; images: string[]; leases: string[]; snapshots: string[]; ingests: string[] };
}

const MINUTE = 60_000;
/** See GcOptions.deadLeaseGraceMs. */
export const DEAD_LEASE_GRACE_MS = 60 * MINUTE;

interface SnapshotRow { id: number; snapshotter: string; key: string; parent?: string; labels: Labels }

/**
 * Mark and sweep without a stop-the-world lock:
 * 1. list the backends (file I/O, no transaction);
 * 2. mark on one read snapshot of the database;
 * 3. delete unmarked records in small IMMEDIATE transactions; each first compares the generation
 *    counter with the mark's and marks again (inside that transaction) if anything was written since,
 *    so a record re-referenced after the mark survives;
 * 4. delete files outside transactions. A blob's record deletion and its tombstone commit together;
 *    while the tombstone stands no process can record or lease-protect the digest (Unavailable, with
 *    `data.retry`), so a record never points at a file that is about to vanish.
 *
 * Writers in other processes stay safe by protecting before looking: put the digest in the lease
 * (`leases.addResource(lease, {type: 'content', id})`, retrying on Unavailable) BEFORE opening the
 * writer or trusting an AlreadyExists, then record it. A blob committed without that is covered only by
 * the grace period (fresh files) — an old file seen as AlreadyExists could be deleted under the caller.
 */
export async function collectGarbage(md: Metadata, backends: GcBackends = {}, opts: GcOptions = {}): Promise<GcReport> {
  const store = internalsOf(md);
  const token = opts.dryRun ? undefined : acquireGcLock(store.db);
  try {
    return await collect(store, backends, opts);
  } finally {
    if (token) releaseGcLock(store.db, token);
  }
}

async function collect(store: ReturnType<typeof internalsOf>, backends: GcBackends, opts: GcOptions): Promise<GcReport> {
  const t0 = performance.now();
  const m = store.db;
  const grace = opts.gracePeriodMs ?? 10 * MINUTE;
  const abandonAfter = opts.abandonIngestsAfterMs ?? 24 * 60 * MINUTE;
  const batchSize = Math.max(1, opts.batchSize ?? 500);
  const report: GcReport = {
    removed: { blobs: 0, snapshots: 0, ingests: 0, images: 0, leases: 0 },
    bytesReclaimed: 0, remarks: 0, errors: [],
    durations: { scanMs: 0, markMs: 0, sweepMs: 0, contentMs: 0, snapshotsMs: 0, totalMs: 0, longestWriteTxMs: 0 },
    candidates: { blobs: [], images: [], leases: [], snapshots: [], ingests: [] },
  };

  // 1. Backends first: what is on disk now. Anything created later is younger than the grace period
  //    or recorded (and then judged by the database).
  const files = new Map<Digest, { size: number; mtimeMs: number }>();
  if (backends.content) {
    await backends.content.walk((info) => { files.set(info.digest, { size: info.size, mtimeMs: Math.max(info.updatedAt.getTime(), info.createdAt?.getTime() ?? 0) }); });
  }
  const ingests = backends.content ? await backends.content.listStatuses() : [];
  report.durations.scanMs = performance.now() - t0;
  throwIfAborted(opts.signal);

  // 2. Mark on one consistent read snapshot.
  const tm = performance.now();
  const loader = new Loader(m.db, opts.deadLeaseGraceMs ?? DEAD_LEASE_GRACE_MS);
  const now = Date.now();
  const ingestData = ingests.map((s) => ({ ref: s.ref, expected: s.expected, expiresAt: s.updatedAt.getTime() + abandonAfter }));
  let state = m.read(() => {
    const generation = m.generation();
    const data = loader.load(now, ingestData);
    return { generation, data, marked: new Graph(data).mark() };
  });
  // Tombstones of a collector that died mid-sweep (we hold the GC lock, so nobody else owns them).
  const inherited = new Set(loader.tombstones);
  report.durations.markMs = performance.now() - tm;

  // Candidates from the mark.
  let keep = keeps(state.marked);
  const recorded = new Set(loader.recordedDigests);
  const blobCandidates = new Set<Digest>();
  for (const d of recorded) if (!keep.blob(d)) blobCandidates.add(d);
  for (const [d, f] of files) {
    if (recorded.has(d) || keep.blob(d)) continue;
    // Perhaps committed by another process that has not recorded it yet; unless a dead GC already condemned it.
    if (now - f.mtimeMs < grace && !inherited.has(d)) continue;
    blobCandidates.add(d);
  }
  const snapshotRows = loader.snapshotRows;
  const snapshotCandidates = snapshotRows.filter((s) => !keep.snapshot(s.snapshotter, s.key)).sort((a, b) => b.id - a.id);
  const imageCandidates = state.data.images.filter((i) => !keep.image(i.name)).map((i) => i.name);
  const leaseCandidates = state.data.leases.filter((l) => !keep.lease(l.id)).map((l) => l.id);
  const ingestCandidates = ingests.filter((s) => !keep.ingest(s.ref)).map((s) => s.ref);
  report.candidates = {
    blobs: [...blobCandidates].sort(), images: imageCandidates, leases: leaseCandidates,
    snapshots: snapshotCandidates.map((s) => `${s.snapshotter}/${s.key}`), ingests: ingestCandidates,
  };
  const tell = (step: GcStep) => { try { opts.onProgress?.(step); } catch { /* a failing listener never breaks GC */ } };
  tell({ step: 'marked', candidates: {
    blobs: blobCandidates.size, snapshots: snapshotCandidates.length, images: imageCandidates.length,
    leases: leaseCandidates.length, ingests: ingestCandidates.length,
  } });
  if (opts.dryRun) { report.durations.totalMs = performance.now() - t0; return report; }
  await opts.afterMark?.();

  // 3. Delete records in batches. Each batch re-validates the mark.
  const ts = performance.now();
  const del = new Deleter(m.db);
  const tombstoned: Digest[] = [];
  const removedSnapshots: { snapshotter: string; id: number }[] = [];
  const remarkIfStale = () => {
    const g = m.generation();
    if (g === state.generation) return;
    const data = loader.load(Date.now(), ingestData);
    state = { generation: g, data, marked: new Graph(data).mark() };
    keep = keeps(state.marked);
    report.remarks++;
  };
  type Job = () => void;
  const jobs: Job[] = [];
  // Removals of the batch in flight, told once its transaction has committed.
  let done: GcStep[] = [];
  // Order matters only for snapshots: children (higher ids) before parents.
  for (const s of snapshotCandidates) jobs.push(() => {
    if (keep.snapshot(s.snapshotter, s.key)) return;
    if (del.snapshot(s.id)) {
      removedSnapshots.push({ snapshotter: s.snapshotter, id: s.id });
      report.removed.snapshots++;
      done.push({ step: 'removed', kind: 'snapshot', id: `${s.snapshotter}/${s.key}` });
    }
  });
  for (const name of imageCandidates) jobs.push(() => {
    if (!keep.image(name) && del.image(name)) { report.removed.images++; done.push({ step: 'removed', kind: 'image', id: name }); }
  });
  for (const id of leaseCandidates) jobs.push(() => {
    if (!keep.lease(id) && del.lease(id)) { report.removed.leases++; done.push({ step: 'removed', kind: 'lease', id }); }
  });
  for (const d of blobCandidates) jobs.push(() => {
    if (keep.blob(d)) return;
    const hadRecord = del.blob(d);
    if (backends.content && files.has(d)) { del.tombstone(d, Date.now()); tombstoned.push(d); }
    else if (hadRecord) { report.removed.blobs++; done.push({ step: 'removed', kind: 'blob', id: d }); }
  });
  for (let i = 0; i < jobs.length; i += batchSize) {
    throwIfAborted(opts.signal);
    const batch = jobs.slice(i, i + batchSize);
    const tx0 = performance.now();
    done = [];
    m.durably(() => m.writeQuiet(() => { done = []; remarkIfStale(); for (const j of batch) j(); }));
    report.durations.longestWriteTxMs = Math.max(report.durations.longestWriteTxMs, performance.now() - tx0);
    for (const step of done) tell(step);
    // Let other work on this process (and the event loop) breathe between batches.
    await new Promise((r) => setImmediate(r));
  }
  report.durations.sweepMs = performance.now() - ts;

  // 4a. Blob files, outside any transaction; tombstones cleared per chunk.
  await opts.beforeFileDeletes?.();
  const tc = performance.now();
  if (backends.content) {
    const content = backends.content;
    for (let i = 0; i < tombstoned.length; i += 64) {
      const chunk = tombstoned.slice(i, i + 64);
      await Promise.all(chunk.map(async (d) => {
        try {
          await content.delete(d);
          report.removed.blobs++;
          const size = files.get(d)?.size ?? 0;
          report.bytesReclaimed += size;
          tell({ step: 'removed', kind: 'blob', id: d, size });
        } catch (err) {
          // A file we could not delete stays, unrecorded: lifting its tombstone below is then harmless.
          if (!isStowageError(err, 'NotFound')) report.errors.push(`delete ${d}: ${(err as Error).message}`);
        }
      }));
      m.writeQuiet(() => { for (const d of chunk) del.clearTombstone(d); });
    }
    // Inherited tombstones not swept above (their blob is wanted again, or already gone) are lifted.
    const swept = new Set(tombstoned);
    m.writeQuiet(() => { for (const d of inherited) if (!swept.has(d)) del.clearTombstone(d); });

    // Abandoned ingests: not in a live lease and untouched for too long. Judged on a fresh listing:
    // a writer may have resumed one of them since step 1, and aborting it would drop its bytes.
    const fresh = new Map((await content.listStatuses()).map((s) => [s.ref, s.updatedAt.getTime()]));
    for (const s of ingests) {
      const updated = fresh.get(s.ref);
      if (updated === undefined) continue; // gone meanwhile
      if (keep.ingest(s.ref) || Date.now() - Math.max(updated, s.updatedAt.getTime()) < abandonAfter) continue;
      try { await content.abort(s.ref); report.removed.ingests++; tell({ step: 'removed', kind: 'ingest', id: s.ref }); } catch (err) {
        if (!isStowageError(err, 'NotFound') && !isStowageError(err, 'Unavailable')) report.errors.push(`abort ${s.ref}: ${(err as Error).message}`);
      }
    }
  }
  report.durations.contentMs = performance.now() - tc;

  // 4b. Snapshot directories: those whose records went now, and orphans (a directory whose record is gone).
  const tsn = performance.now();
  if (backends.snapshots) {
    const sb = backends.snapshots;
    const rmdir = async (sn: string, id: number) => {
      try { await sb.removeDirectory(sn, id); return true; } catch (err) {
        report.errors.push(`remove snapshot directory ${sn}/${id}: ${(err as Error).message}`); // an orphan for the next run
        return false;
      }
    };
    for (const s of removedSnapshots) await rmdir(s.snapshotter, s.id);
    const names = new Set([...(sb.snapshotters?.() ?? []), ...snapshotRows.map((s) => s.snapshotter)]);
    const gone = new Set(removedSnapshots.map((s) => `${s.snapshotter}/${s.id}`));
    for (const sn of names) {
      const onDisk = await sb.listDirectories(sn);
      const known = store.snapshots.ids(sn); // read after listing: records are created before their directories
      for (const id of onDisk) {
        if (known.has(id) || gone.has(`${sn}/${id}`)) continue;
        if (await rmdir(sn, id)) { report.removed.snapshots++; tell({ step: 'removed', kind: 'snapshot-directory', id: `${sn}/${id}` }); }
      }
    }
  }
  report.durations.snapshotsMs = performance.now() - tsn;
  report.durations.totalMs = performance.now() - t0;
  return report;
}

interface LeaseRow { id: string; created_at: number; owner_pid: number | null; owner_start: string | null; owner_host: string | null }

/** Reads the graph's records. Only GC labels (GC_LABEL_PREFIX) matter to GC, so only those are read. */
class Loader {
  private readonly q: Record<string, Database.Statement>;
  recordedDigests: Digest[] = [];
  tombstones: Digest[] = [];
  snapshotRows: SnapshotRow[] = [];

  constructor(db: Database.Database, private readonly deadLeaseGrace: number) {
    // The keys with the GC prefix, as an index range: from the prefix up to the prefix with its last character incremented.
    const end = GC_LABEL_PREFIX.slice(0, -1) + String.fromCharCode(GC_LABEL_PREFIX.charCodeAt(GC_LABEL_PREFIX.length - 1) + 1);
    const gcLabels = (t: string) => db.prepare(`SELECT owner, key, value FROM ${t} WHERE key >= ? AND key < ?`).bind(GC_LABEL_PREFIX, end);
    this.q = {
      leases: db.prepare('SELECT id, created_at, owner_pid, owner_start, owner_host FROM leases'),
      leaseLabels: gcLabels('lease_labels'),
      resources: db.prepare('SELECT lease, type, id FROM lease_resources'),
      images: db.prepare('SELECT name, target_digest FROM images'),
      imageLabels: gcLabels('image_labels'),
      blobs: db.prepare('SELECT digest FROM blobs'),
      blobLabels: gcLabels('blob_labels'),
      snapshots: db.prepare('SELECT s.id, s.snapshotter, s.key, p.key AS parent FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id'),
      snapshotLabels: gcLabels('snapshot_labels'),
      containers: db.prepare('SELECT id, snapshotter, snapshot_key FROM containers'),
      containerLabels: gcLabels('container_labels'),
      tombstones: db.prepare('SELECT digest FROM blob_tombstones'),
    };
  }

  load(now: number, ingests: GraphData['ingests']): GraphData {
    const q = this.q;
    const group = (stmt: Database.Statement) => {
      const by = new Map<string | number, Labels>();
      for (const r of stmt.all() as { owner: string | number; key: string; value: string }[]) {
        const l = by.get(r.owner);
        if (l) l[r.key] = r.value; else by.set(r.owner, { [r.key]: r.value });
      }
      return by;
    };
    const leaseLabels = group(q.leaseLabels!);
    const resources = new Map<string, LeaseResource[]>();
    for (const r of q.resources!.all() as { lease: string; type: LeaseResource['type']; id: string }[]) {
      const l = resources.get(r.lease);
      if (l) l.push({ type: r.type, id: r.id }); else resources.set(r.lease, [{ type: r.type, id: r.id }]);
    }
    const imageLabels = group(q.imageLabels!);
    const blobLabels = group(q.blobLabels!);
    const snapshotLabels = group(q.snapshotLabels!);
    const containerLabels = group(q.containerLabels!);
    this.recordedDigests = (q.blobs!.all() as { digest: Digest }[]).map((r) => r.digest);
    this.tombstones = (q.tombstones!.all() as { digest: Digest }[]).map((r) => r.digest);
    this.snapshotRows = (q.snapshots!.all() as { id: number; snapshotter: string; key: string; parent: string | null }[])
      .map((r) => ({ id: r.id, snapshotter: r.snapshotter, key: r.key, parent: r.parent ?? undefined, labels: snapshotLabels.get(r.id) ?? {} }));
    return {
      now,
      leases: (q.leases!.all() as LeaseRow[]).map((r) => {
        const labels = leaseLabels.get(r.id) ?? {};
        const { owner } = ownerOf(r);
        // A dead holder's lease past its grace period counts as expired: it protects nothing and goes.
        const released = owner && now - r.created_at >= this.deadLeaseGrace && ownerState(owner) === 'dead';
        return { id: r.id, labels: released ? { ...labels, [GC_EXPIRE]: new Date(0).toISOString() } : labels, resources: resources.get(r.id) ?? [] };
      }),
      images: (q.images!.all() as { name: string; target_digest: Digest }[]).map((r) => ({ name: r.name, target: r.target_digest, labels: imageLabels.get(r.name) ?? {} })),
      // Only blobs with GC labels matter as graph nodes with edges; every recorded digest is a candidate.
      blobs: [...blobLabels].map(([digest, labels]) => ({ digest: digest as Digest, labels })),
      snapshots: this.snapshotRows,
      containers: (q.containers!.all() as { id: string; snapshotter: string; snapshot_key: string }[])
        .map((r) => ({ id: r.id, snapshotter: r.snapshotter, snapshotKey: r.snapshot_key, labels: containerLabels.get(r.id) ?? {} })),
      ingests,
    };
  }
}

/** The sweep's statements. Each returns whether it deleted something. */
class Deleter {
  private readonly s: Record<string, Database.Statement>;
  constructor(db: Database.Database) {
    this.s = {
      snapshot: db.prepare('DELETE FROM snapshots WHERE id = ? AND NOT EXISTS (SELECT 1 FROM snapshots c WHERE c.parent_id = ?)'),
      image: db.prepare('DELETE FROM images WHERE name = ?'),
      lease: db.prepare('DELETE FROM leases WHERE id = ?'),
      blob: db.prepare('DELETE FROM blobs WHERE digest = ?'),
      detachBlob: db.prepare(`DELETE FROM lease_resources WHERE type = 'content' AND id = ?`),
      tombstone: db.prepare('INSERT INTO blob_tombstones (digest, created_at) VALUES (?, ?) ON CONFLICT (digest) DO UPDATE SET created_at = excluded.created_at'),
      clearTombstone: db.prepare('DELETE FROM blob_tombstones WHERE digest = ?'),
    };
  }
  snapshot(id: number): boolean { return this.s.snapshot!.run(id, id).changes > 0; }
  image(name: string): boolean { return this.s.image!.run(name).changes > 0; }
  lease(id: string): boolean { return this.s.lease!.run(id).changes > 0; }
  blob(d: Digest): boolean { this.s.detachBlob!.run(d); return this.s.blob!.run(d).changes > 0; }
  tombstone(d: Digest, now: number): void { this.s.tombstone!.run(d, now); }
  clearTombstone(d: Digest): void { this.s.clearTombstone!.run(d); }
}

/** Beyond this age a lock holder we cannot probe (another host, or a reused pid) is presumed dead. */
const GC_LOCK_STALE_MS = 6 * 60 * MINUTE;

interface LockRow { owner: string; pid: number; host: string; acquired_at: number }

/**
 * Tokens of the collections running in this process. A lock row naming this pid is live only if its
 * token is here: a row left by a release that failed (database busy) or a store closed mid-collection
 * would otherwise block every collection of this (long-running) process for GC_LOCK_STALE_MS.
 */
const runningHere = new Set<string>();

/** One collector per root: the lock row names its process, and dies with it. */
function acquireGcLock(m: MetadataDB): string {
  const token = randomBytes(8).toString('hex');
  m.writeQuiet(() => {
    const row = m.db.prepare('SELECT owner, pid, host, acquired_at FROM gc_lock WHERE id = 1').get() as LockRow | undefined;
    if (row && holderAlive(row)) {
      throw new UnavailableError(`another garbage collection is running on this store (pid ${row.pid} on ${row.host})`, { pid: row.pid, host: row.host });
    }
    m.db.prepare('INSERT OR REPLACE INTO gc_lock (id, owner, pid, host, acquired_at) VALUES (1, ?, ?, ?, ?)')
      .run(token, process.pid, os.hostname(), Date.now());
  });
  runningHere.add(token);
  return token;
}

function releaseGcLock(m: MetadataDB, token: string): void {
  runningHere.delete(token);
  if (!m.db.open) return;
  m.writeQuiet(() => { m.db.prepare('DELETE FROM gc_lock WHERE id = 1 AND owner = ?').run(token); });
}

function holderAlive(row: LockRow): boolean {
  if (Date.now() - row.acquired_at > GC_LOCK_STALE_MS) return false;
  if (row.host !== os.hostname()) return true;
  if (row.pid === process.pid) return runningHere.has(row.owner); // another collection in this very process?
  return pidExists(row.pid);
}

export type { Node };
