import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, NotImplementedError } from '../errors/index.js';
import { isDigest } from '../oci/index.js';
import { ownerState, type ProcessOwner } from '../owners/index.js';
import type { MetadataDB } from './db.js';
import { labelField, matchFilters, parseFilters } from '../filters/index.js';
import { GC_EXPIRE } from '../content/index.js';
import { LabelTable, validateLabels } from './labels.js';
import type { Labels, Lease, LeaseManager, LeaseResource, LeaseResourceType } from './types.js';

const ID_RE = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
const MAX_ID = 76;

/**
 * The lease bookkeeping the other stores use inside their own transactions
 * (so a created resource and its lease membership commit together).
 */
export class LeaseBook {
  private readonly exists: Database.Statement;
  private readonly add: Database.Statement;
  private readonly drop: Database.Statement;
  private readonly dropAll: Database.Statement;
  private readonly rename: Database.Statement;

  constructor(db: Database.Database) {
    this.exists = db.prepare('SELECT 1 FROM leases WHERE id = ?');
    this.add = db.prepare('INSERT OR IGNORE INTO lease_resources (lease, type, id) VALUES (?, ?, ?)');
    this.drop = db.prepare('DELETE FROM lease_resources WHERE lease = ? AND type = ? AND id = ?');
    this.dropAll = db.prepare('DELETE FROM lease_resources WHERE type = ? AND id = ?');
    this.rename = db.prepare('UPDATE OR REPLACE lease_resources SET id = ? WHERE type = ? AND id = ?');
  }

  /** NotFound ("lease does not exist") unless the lease has a record. Call inside the write transaction. */
  requireLive(lease: string): void {
    if (!this.exists.get(lease)) throw new NotFoundError(`lease ${JSON.stringify(lease)}: lease does not exist`, { lease });
  }

  attach(lease: string, type: LeaseResourceType, id: string): void { this.add.run(lease, type, id); }
  detach(lease: string, type: LeaseResourceType, id: string): void { this.drop.run(lease, type, id); }
  /** The resource is gone: no lease refers to it any more. */
  detachEverywhere(type: LeaseResourceType, id: string): void { this.dropAll.run(type, id); }
  /** A snapshot committed under a new name keeps its lease protection. */
  renameEverywhere(type: LeaseResourceType, from: string, to: string): void { this.rename.run(to, type, from); }
}

export class Leases implements LeaseManager {
  private readonly labels: LabelTable;
  private readonly byId: Database.Statement;
  private readonly all: Database.Statement;
  private readonly insert: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly resources: Database.Statement;
  private readonly moveResources: Database.Statement;

  constructor(private readonly m: MetadataDB, readonly book: LeaseBook) {
    const db = m.db;
    this.labels = new LabelTable(db, 'lease_labels');
    this.byId = db.prepare('SELECT id, created_at FROM leases WHERE id = ?');
    this.all = db.prepare('SELECT id, created_at, owner_pid, owner_start, owner_host FROM leases ORDER BY id');
    this.insert = db.prepare('INSERT INTO leases (id, created_at, owner_pid, owner_start, owner_host) VALUES (?, ?, ?, ?, ?)');
    this.moveResources = db.prepare('INSERT OR IGNORE INTO lease_resources (lease, type, id) SELECT ?, type, id FROM lease_resources WHERE lease = ?');
    this.remove = db.prepare('DELETE FROM leases WHERE id = ?');
    this.resources = db.prepare('SELECT type, id FROM lease_resources WHERE lease = ? ORDER BY type, id');
  }

  create(opts: { id?: string; labels?: Labels; expiresInMs?: number; owner?: ProcessOwner } = {}): Lease {
    const id = opts.id ?? `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`;
    if (id.length > MAX_ID || !ID_RE.test(id)) throw new InvalidArgumentError(`invalid lease id ${JSON.stringify(id)}`, { id });
    const labels: Labels = { ...(opts.labels ?? {}) };
    if (opts.expiresInMs !== undefined) {
      if (!Number.isFinite(opts.expiresInMs)) throw new InvalidArgumentError('lease expiry must be a finite number of milliseconds');
      labels[GC_EXPIRE] = new Date(Date.now() + opts.expiresInMs).toISOString();
    }
    validateLabels(labels);
    return this.m.write(() => {
      if (this.byId.get(id)) throw new AlreadyExistsError(`lease ${JSON.stringify(id)}: already exists`, { id });
      const now = Date.now();
      const o = opts.owner;
      this.insert.run(id, now, o?.pid ?? null, o?.start ?? null, o?.host ?? null);
      this.labels.replace(id, labels);
      return { id, createdAt: new Date(now), labels: this.labels.get(id), ...(o ? { owner: { ...o } } : {}) };
    });
  }

  /** Removes the lease; what it protected becomes collectable at the next GC. */
  delete(id: string): void {
    this.m.write(() => {
      if (this.remove.run(id).changes === 0) throw new NotFoundError(`lease ${JSON.stringify(id)}: not found`, { id });
    });
  }

  list(...filters: string[]): Lease[] {
    const filter = parseFilters(...filters);
    const rows = this.m.read(() => (this.all.all() as LeaseRow[])
      .map((r) => ({ id: r.id, createdAt: new Date(r.created_at), labels: this.labels.get(r.id), ...ownerOf(r) })));
    return rows.filter((l) => matchFilters(filter, (p) => (p[0] === 'id' && p.length === 1 ? l.id : p[0] === 'labels' ? labelField(l.labels, p.slice(1)) : undefined)));
  }

  adoptDead(into: string, match: Labels): string[] {
    // Probing owners (kill(pid, 0), /proc) happens before the transaction; a dead process stays dead.
    const dead = this.list().filter((l) => l.id !== into && l.owner && ownerState(l.owner) === 'dead'
      && Object.entries(match).every(([k, v]) => l.labels[k] === v)).map((l) => l.id);
    if (dead.length === 0) return [];
    return this.m.write(() => {
      this.book.requireLive(into);
      const taken: string[] = [];
      for (const id of dead) {
        if (!this.byId.get(id)) continue; // adopted or collected by someone else meanwhile
        this.moveResources.run(into, id);
        this.remove.run(id);
        taken.push(id);
      }
      return taken;
    });
  }

  addResource(lease: string, r: LeaseResource): void {
    validateResource(r);
    this.m.write(() => {
      this.book.requireLive(lease);
      // Protecting a digest whose file GC is deleting right now would protect nothing: retry after.
      if (r.type === 'content') this.m.assertNotCollecting(r.id);
      this.book.attach(lease, r.type, r.id);
    });
  }

  deleteResource(lease: string, r: LeaseResource): void {
    validateResource(r);
    this.m.write(() => {
      this.book.requireLive(lease);
      this.book.detach(lease, r.type, r.id);
    });
  }

  listResources(lease: string): LeaseResource[] {
    return this.m.read(() => {
      this.book.requireLive(lease);
      return this.resources.all(lease) as LeaseResource[];
    });
  }
}

interface LeaseRow { id: string; created_at: number; owner_pid: number | null; owner_start: string | null; owner_host: string | null }

/** The owner columns of a lease row, as the Lease's `owner` (absent when the lease has none). */
export function ownerOf(r: Pick<LeaseRow, 'owner_pid' | 'owner_start' | 'owner_host'>): { owner?: ProcessOwner } {
  if (r.owner_pid === null || r.owner_host === null) return {};
  return { owner: { pid: r.owner_pid, host: r.owner_host, ...(r.owner_start !== null ? { start: r.owner_start } : {}) } };
}

export function validateResource(r: LeaseResource): void {
  if (!r || typeof r.id !== 'string' || r.id === '' || typeof r.type !== 'string') {
    throw new InvalidArgumentError('lease resource needs a type and an id');
  }
  if (r.type === 'content') {
    if (!isDigest(r.id)) throw new InvalidArgumentError(`lease resource content: ${JSON.stringify(r.id)} is not a digest`, { id: r.id });
    return;
  }
  if (r.type === 'ingests' || r.type === 'images') return;
  if (r.type.startsWith('snapshots')) {
    const sn = r.type.slice('snapshots'.length);
    if (!sn.startsWith('/') || sn.length < 2 || sn.indexOf('/', 1) >= 0) {
      throw new InvalidArgumentError(`invalid lease resource type ${JSON.stringify(r.type)}: want snapshots/<snapshotter>`, { type: r.type });
    }
    return;
  }
  throw new NotImplementedError(`lease resource type ${JSON.stringify(r.type)} is not supported`, { type: r.type });
}
