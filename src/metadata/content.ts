import type Database from 'better-sqlite3';
import { InvalidArgumentError } from '../errors/index.js';
import { parseDigest, type Digest } from '../oci/index.js';
import type { LabelStore } from '../content/index.js';
import type { MetadataDB } from './db.js';
import { LabelTable, validateLabel, validateLabels } from './labels.js';
import type { LeaseBook } from './leases.js';
import type { ContentRecords, Labels, LeaseOption } from './types.js';

export interface BlobRow { digest: Digest; size: number | null; createdAt: Date; updatedAt: Date }

export class Blobs implements ContentRecords {
  readonly labelTable: LabelTable;
  private readonly upsert: Database.Statement;
  private readonly setSize: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly byDigest: Database.Statement;
  private readonly all: Database.Statement;
  private readonly leased: Database.Statement;

  constructor(private readonly m: MetadataDB, private readonly leases: LeaseBook) {
    const db = m.db;
    this.labelTable = new LabelTable(db, 'blob_labels');
    this.upsert = db.prepare(`INSERT INTO blobs (digest, size, created_at, updated_at) VALUES (?, NULL, ?, ?)
      ON CONFLICT (digest) DO UPDATE SET updated_at = excluded.updated_at`);
    this.setSize = db.prepare('UPDATE blobs SET size = ? WHERE digest = ?');
    this.remove = db.prepare('DELETE FROM blobs WHERE digest = ?');
    this.byDigest = db.prepare('SELECT digest, size, created_at, updated_at FROM blobs WHERE digest = ?');
    this.all = db.prepare('SELECT digest, size, created_at, updated_at FROM blobs ORDER BY digest');
    this.leased = db.prepare(`SELECT 1 FROM lease_resources WHERE type = 'content' AND id = ? LIMIT 1`);
  }

  labels(digest: Digest): Labels {
    return this.m.read(() => this.labelTable.get(digest));
  }

  setLabels(digest: Digest, labels: Labels): void {
    parseDigest(digest);
    validateLabels(labels);
    this.m.write(() => {
      this.touch(digest);
      this.labelTable.replace(digest, labels);
    });
  }

  setLabel(digest: Digest, key: string, value: string): void {
    parseDigest(digest);
    validateLabel(key, value);
    this.m.write(() => {
      this.touch(digest);
      this.labelTable.set(digest, key, value);
    });
  }

  recordBlob(digest: Digest, size: number, opts: LeaseOption & { labels?: Labels } = {}): void {
    parseDigest(digest);
    if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`blob ${digest}: invalid size ${size}`, { digest, size });
    validateLabels(opts.labels);
    this.m.write(() => {
      if (opts.lease !== undefined) this.leases.requireLive(opts.lease);
      this.touch(digest);
      this.setSize.run(size, digest);
      for (const [k, v] of Object.entries(opts.labels ?? {})) this.labelTable.set(digest, k, v);
      if (opts.lease !== undefined) this.leases.attach(opts.lease, 'content', digest);
    });
  }

  forget(digest: Digest): void {
    // Nothing to forget is common (the content store calls this after GC already dropped the record):
    // skip the write transaction and the generation bump then.
    if (!this.m.read(() => this.byDigest.get(digest) ?? this.leased.get(digest))) return;
    this.m.write(() => {
      this.remove.run(digest);
      this.leases.detachEverywhere('content', digest);
    });
  }

  /** The blob's record, or undefined. */
  record(digest: Digest): BlobRow | undefined {
    return this.m.read(() => {
      const r = this.byDigest.get(digest) as RawRow | undefined;
      return r && toRow(r);
    });
  }

  /** Every blob record (for check and tools). */
  records(): BlobRow[] {
    return this.m.read(() => (this.all.all() as RawRow[]).map(toRow));
  }

  /**
   * Creates the record if missing. Refuses while GC is deleting the file of this digest: a record
   * made now would outlive the file. The caller retries (and writes the blob again).
   */
  private touch(digest: Digest): void {
    this.m.assertNotCollecting(digest);
    const now = Date.now();
    this.upsert.run(digest, now, now);
  }
}

interface RawRow { digest: Digest; size: number | null; created_at: number; updated_at: number }
function toRow(r: RawRow): BlobRow {
  return { digest: r.digest, size: r.size, createdAt: new Date(r.created_at), updatedAt: new Date(r.updated_at) };
}

/** The content store's LabelStore, backed by the blob records. */
export function labelStoreFor(md: { content: ContentRecords }): LabelStore {
  const c = md.content;
  return {
    get: (digest) => c.labels(digest),
    set: (digest, labels) => c.setLabels(digest, labels),
    update: (digest, key, value) => c.setLabel(digest, key, value),
    delete: (digest) => c.forget(digest),
  };
}
