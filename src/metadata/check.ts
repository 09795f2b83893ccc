import type { Readable } from 'node:stream';
import { isStowageError, throwIfAborted } from '../errors/index.js';
import { Digester, parseDigest, type Digest } from '../oci/index.js';
import { ownerState } from '../owners/index.js';
import { DEAD_LEASE_GRACE_MS, type GcSnapshotBackend } from './gc.js';
import { Graph, keeps, splitNode, type GraphData, type Node } from './gcgraph.js';
import { expiryOf } from './labels.js';
import { ownerOf } from './leases.js';
import { internalsOf } from './store.js';
import type { Metadata } from './types.js';

/** What check needs from the content store (a ContentStore fits). */
export interface CheckContentBackend {
  walk(fn: (info: { digest: Digest; size: number }) => void | Promise<void>): Promise<void>;
  readerAt(desc: { digest: Digest }): Promise<{ stream(): Readable; close(): Promise<void> }>;
  delete(digest: Digest): Promise<void>;
  listStatuses(): Promise<{ ref: string }[]>;
}

export type ProblemKind =
  | 'database-corrupt'
  | 'image-target-missing'      // an image's target blob is not on disk
  | 'blob-missing'              // a blob an image (or a root) references through labels is not on disk
  | 'snapshot-missing'          // a reachable reference names a snapshot record that does not exist
  | 'digest-mismatch'           // the bytes on disk do not hash to their name
  | 'blob-record-without-file'  // a blob record (labels) with no bytes
  | 'lease-resource-dangling'   // a lease lists something that does not exist (yet: work in progress)
  | 'lease-holder-dead'         // a lease whose owner process is gone (adopted by the next pull, released by gc)
  | 'lease-expired'             // a lease past its containerd.io/gc.expire (gc removes it)
  | 'foreign-key-violation'     // e.g. a snapshot whose parent record is gone
  | 'snapshot-directory-missing' // a snapshot record whose directory is gone
  | 'snapshot-directory-orphan'; // a snapshot directory with no record

/**
 * How serious a finding is. Only 'damage' is a problem (check exits non-zero for it): something an
 * image or root needs is missing or corrupt, or a record points at nothing. 'reclaimable': leftovers
 * of an interrupted operation that gc removes (a dead holder's lease, an orphan directory).
 * 'in-progress': work a live operation is doing right now.
 */
export type FindingClass = 'damage' | 'reclaimable' | 'in-progress';

export interface Problem { kind: ProblemKind; class: FindingClass; subject: string; detail: string; repaired: boolean }

export interface CheckOptions {
  /** Fix what is safe: drop dangling records, remove corrupted blobs (bytes and record) so a re-pull fixes them. */
  repair?: boolean;
  /** Re-hash every blob (reads everything). Default true. */
  verifyDigests?: boolean;
  /** Records younger than this are left alone by repair (another process may be mid-pull). Default 10 min. */
  minAgeMs?: number;
  /** Also compare snapshot records with their directories (the GC's view of them; repair removes orphans). */
  snapshots?: GcSnapshotBackend;
  signal?: AbortSignal;
  /** Told when each phase starts and after each blob is hashed. A listener that throws is ignored. */
  onProgress?: (step: CheckStep) => void;
}

/**
 * One step of a check, for progress: a phase starting (the database, hashing blobs, references from
 * images and roots, leases, snapshot directories), or one blob hashed (`checked` of `total` on disk).
 */
export type CheckStep =
  | { phase: 'database' | 'blobs' | 'references' | 'leases' | 'snapshots' }
  | { phase: 'blob'; digest: Digest; size: number; checked: number; total: number };

export interface CheckReport { problems: Problem[]; blobsChecked: number; bytesHashed: number }

/**
 * Verifies the store: every image target and every blob reachable from images and roots is present
 * and hashes to its name; no dangling records. Lease-held work in progress is not required to be
 * complete (a pull fills it in), so completeness is checked only from images, gc.root and containers.
 */
export async function checkStore(md: Metadata, content: CheckContentBackend, opts: CheckOptions = {}): Promise<CheckReport> {
  const store = internalsOf(md);
  const m = store.db;
  const db = m.db;
  const repair = opts.repair ?? false;
  const minAge = opts.minAgeMs ?? 10 * 60_000;
  const problems: Problem[] = [];
  const report: CheckReport = { problems, blobsChecked: 0, bytesHashed: 0 };
  const add = (kind: ProblemKind, subject: string, detail: string, repaired = false, cls: FindingClass = 'damage') => problems.push({ kind, class: cls, subject, detail, repaired });
  const tell = (step: CheckStep) => { try { opts.onProgress?.(step); } catch { /* a failing listener never breaks the check */ } };

  tell({ phase: 'database' });
  const integrity = db.pragma('quick_check', { simple: true });
  if (integrity !== 'ok') add('database-corrupt', 'metadata.db', String(integrity));
  for (const v of db.pragma('foreign_key_check') as { table: string; rowid: number; parent: string }[]) {
    add('foreign-key-violation', `${v.table}#${v.rowid}`, `references a missing ${v.parent} row`);
  }

  // What is on disk (and whether its bytes are right).
  const onDisk = new Map<Digest, number>();
  tell({ phase: 'blobs' });
  await content.walk((info) => { onDisk.set(info.digest, info.size); });
  const corrupt = new Set<Digest>();
  if (opts.verifyDigests ?? true) {
    const total = onDisk.size;
    for (const [digest] of onDisk) {
      throwIfAborted(opts.signal);
      const got = await hashBlob(content, digest);
      if (got === undefined) { onDisk.delete(digest); continue; } // deleted meanwhile
      report.blobsChecked++;
      report.bytesHashed += got.size;
      if (got.digest !== digest) corrupt.add(digest);
      tell({ phase: 'blob', digest, size: got.size, checked: report.blobsChecked, total });
    }
  }
  for (const d of corrupt) {
    let repaired = false;
    if (repair) {
      // Bytes and record go: the next pull writes the blob again instead of trusting these bytes.
      try { await content.delete(d); } catch (e) { if (!isStowageError(e, 'NotFound')) throw e; }
      store.content.forget(d);
      onDisk.delete(d);
      repaired = true;
    }
    add('digest-mismatch', d, 'the bytes on disk hash to something else', repaired);
  }

  // Completeness from images and roots (not leases: their work may be in progress).
  throwIfAborted(opts.signal);
  tell({ phase: 'references' });
  const data = m.read(() => loadForCheck(store));
  const rootsOnly: GraphData = { ...data.graph, leases: [], ingests: [] };
  const marked = new Graph(rootsOnly).mark();
  for (const img of data.graph.images) {
    if (!onDisk.has(img.target)) add('image-target-missing', img.name, `target ${img.target} is not in the content store`);
  }
  const targets = new Set(data.graph.images.map((i) => i.target));
  const snapshotKeys = new Set(data.graph.snapshots.map((s) => `${s.snapshotter}/${s.key}`));
  for (const n of marked) {
    const { type, key } = splitNode(n as Node);
    if (type === 'content' && !onDisk.has(key as Digest) && !targets.has(key as Digest) && isDigestLike(key)) {
      add('blob-missing', key, 'referenced from an image or root but not in the content store');
    }
    if (type === 'snapshot' && !snapshotKeys.has(key)) add('snapshot-missing', key, 'referenced but has no record');
  }

  // Blob records without bytes.
  const now = Date.now();
  for (const b of data.blobRecords) {
    if (onDisk.has(b.digest)) continue;
    const old = now - b.updatedAt >= minAge;
    const needed = keeps(marked).blob(b.digest);
    const repaired = repair && old && !needed;
    if (repaired) store.content.forget(b.digest);
    // Needed by an image or root: damage. Otherwise garbage gc removes, or (recent) a pull mid-way.
    add('blob-record-without-file', b.digest, old ? 'record has no bytes' : 'record has no bytes (recent: maybe mid-pull)', repaired,
      needed ? 'damage' : old ? 'reclaimable' : 'in-progress');
  }

  tell({ phase: 'leases' });
  // Lease resources naming nothing. Ingests are only reported: a live pull may not have created its ingest yet.
  const ingests = new Set((await content.listStatuses()).map((s) => s.ref));
  const imageNames = new Set(data.graph.images.map((i) => i.name));
  const recorded = new Set(data.blobRecords.map((b) => b.digest));
  for (const l of data.graph.leases) {
    // A live holder's (or an ownerless lease's) missing resources are work in progress; a dead
    // holder's or an expired lease's are leftovers gc reclaims. Neither is damage.
    const owner = data.leaseOwners.get(l.id);
    const dead = owner !== undefined && ownerState(owner) === 'dead';
    const expiry = expiryOf(l.labels);
    const expired = expiry !== undefined && expiry <= now;
    if (dead) {
      add('lease-holder-dead', l.id, `lease ${l.id}${l.labels['io.stowage.purpose'] ? ` (${l.labels['io.stowage.purpose']})` : ''} belongs to process ${owner.pid} on ${owner.host}, which is gone: the next pull of the same image adopts its work, gc releases it ${Math.round(DEAD_LEASE_GRACE_MS / 60_000)} min after it was made`, false, 'reclaimable');
    } else if (expired) {
      add('lease-expired', l.id, `lease ${l.id} expired at ${new Date(expiry).toISOString()}: gc removes it`, false, 'reclaimable');
    }
    const cls: FindingClass = dead || expired ? 'reclaimable' : 'in-progress';
    for (const r of l.resources) {
      let missing: boolean;
      if (r.type === 'content') missing = !onDisk.has(r.id as Digest) && !recorded.has(r.id as Digest);
      else if (r.type === 'images') missing = !imageNames.has(r.id);
      else if (r.type === 'ingests') missing = !ingests.has(r.id);
      else missing = !snapshotKeys.has(`${r.type.slice('snapshots/'.length)}/${r.id}`);
      if (!missing) continue;
      const old = now - (data.leaseCreated.get(l.id) ?? now) >= minAge;
      const repaired = repair && old && r.type !== 'ingests';
      if (repaired) store.leases.deleteResource(l.id, r);
      add('lease-resource-dangling', `${l.id}/${r.type}/${r.id}`, `lease ${l.id} lists a ${r.type} that does not exist`, repaired, cls);
    }
  }
  // Snapshot records against directories. Records are made before directories, so list the disk
  // first and read the records after: a directory without a record is then truly orphaned.
  if (opts.snapshots) {
    tell({ phase: 'snapshots' });
    const sb = opts.snapshots;
    const names = new Set([...(sb.snapshotters?.() ?? []), ...data.snapshotIds.map((s) => s.snapshotter)]);
    for (const sn of names) {
      const onDiskIds = new Set(await sb.listDirectories(sn));
      const records = store.snapshots.walk(sn);
      const known = new Set(records.map((r) => r.id));
      for (const r of records) {
        // An active snapshot may be between its record and its directory.
        if (!onDiskIds.has(r.id) && (r.kind === 'committed' || now - r.createdAt.getTime() >= minAge)) {
          add('snapshot-directory-missing', `${sn}/${r.key}`, `directory ${r.id} is gone`);
        }
      }
      for (const id of onDiskIds) {
        if (known.has(id)) continue;
        if (repair) await sb.removeDirectory(sn, id);
        add('snapshot-directory-orphan', `${sn}/${id}`, 'a directory no record names (gc removes it)', repair, 'reclaimable');
      }
    }
  }
  return report;
}

function isDigestLike(s: string): boolean {
  try { parseDigest(s); return true; } catch { return false; }
}

async function hashBlob(content: CheckContentBackend, digest: Digest): Promise<{ digest: Digest; size: number } | undefined> {
  let ra;
  try { ra = await content.readerAt({ digest }); } catch (e) { if (isStowageError(e, 'NotFound')) return undefined; throw e; }
  try {
    const h = new Digester(parseDigest(digest).algorithm);
    for await (const chunk of ra.stream()) h.update(chunk as Buffer);
    return { digest: h.digest(), size: h.size };
  } finally {
    await ra.close();
  }
}

function loadForCheck(store: ReturnType<typeof internalsOf>) {
  const db = store.db.db;
  const all = <T>(sql: string) => db.prepare(sql).all() as T[];
  const labelsOf = (table: string) => {
    const by = new Map<string | number, Record<string, string>>();
    for (const r of all<{ owner: string | number; key: string; value: string }>(`SELECT owner, key, value FROM ${table}`)) {
      const l = by.get(r.owner); if (l) l[r.key] = r.value; else by.set(r.owner, { [r.key]: r.value });
    }
    return by;
  };
  const blobLabels = labelsOf('blob_labels');
  const leaseLabels = labelsOf('lease_labels');
  const imageLabels = labelsOf('image_labels');
  const snapLabels = labelsOf('snapshot_labels');
  const ctrLabels = labelsOf('container_labels');
  const leaseRows = all<{ id: string; created_at: number; owner_pid: number | null; owner_start: string | null; owner_host: string | null }>(
    'SELECT id, created_at, owner_pid, owner_start, owner_host FROM leases');
  const resources = all<{ lease: string; type: GraphData['leases'][number]['resources'][number]['type']; id: string }>('SELECT lease, type, id FROM lease_resources');
  const graph: GraphData = {
    now: Date.now(),
    leases: leaseRows.map((l) => ({ id: l.id, labels: leaseLabels.get(l.id) ?? {}, resources: resources.filter((r) => r.lease === l.id).map((r) => ({ type: r.type, id: r.id })) })),
    images: all<{ name: string; target_digest: Digest }>('SELECT name, target_digest FROM images').map((i) => ({ name: i.name, target: i.target_digest, labels: imageLabels.get(i.name) ?? {} })),
    blobs: [...blobLabels].map(([d, labels]) => ({ digest: d as Digest, labels })),
    snapshots: all<{ id: number; snapshotter: string; key: string; parent: string | null }>(
      'SELECT s.id, s.snapshotter, s.key, p.key AS parent FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id')
      .map((s) => ({ snapshotter: s.snapshotter, key: s.key, parent: s.parent ?? undefined, labels: snapLabels.get(s.id) ?? {} })),
    containers: all<{ id: string; snapshotter: string; snapshot_key: string }>('SELECT id, snapshotter, snapshot_key FROM containers')
      .map((c) => ({ id: c.id, snapshotter: c.snapshotter, snapshotKey: c.snapshot_key, labels: ctrLabels.get(c.id) ?? {} })),
    ingests: [],
  };
  return {
    graph,
    blobRecords: all<{ digest: Digest; updated_at: number }>('SELECT digest, updated_at FROM blobs').map((b) => ({ digest: b.digest, updatedAt: b.updated_at })),
    leaseCreated: new Map(leaseRows.map((l) => [l.id, l.created_at])),
    leaseOwners: new Map(leaseRows.flatMap((l) => { const o = ownerOf(l).owner; return o ? [[l.id, o] as const] : []; })),
    snapshotIds: all<{ snapshotter: string }>('SELECT DISTINCT snapshotter FROM snapshots'),
  };
}
