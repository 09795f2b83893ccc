import type Database from 'better-sqlite3';
import {
  AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError,
} from '../errors/index.js';
import type { MetadataDB } from './db.js';
import { labelField, matchFilters, parseFilters } from '../filters/index.js';
import { applyLabelPath, LabelTable, validateLabels } from './labels.js';
import type { LeaseBook } from './leases.js';
import type { Labels, LeaseOption, SnapshotKind, SnapshotRecord, SnapshotRecords } from './types.js';

interface Row { id: number; key: string; kind: SnapshotKind; parent_key: string | null; created_at: number; updated_at: number }

const SELECT = `SELECT s.id, s.key, s.kind, p.key AS parent_key, s.created_at, s.updated_at
  FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id`;

export class Snapshots implements SnapshotRecords {
  private readonly labels: LabelTable;
  private readonly byKey: Database.Statement;
  private readonly bySnapshotter: Database.Statement;
  private readonly rawByKey: Database.Statement;
  private readonly insert: Database.Statement;
  private readonly toCommitted: Database.Statement;
  private readonly touch: Database.Statement;
  private readonly hasChildren: Database.Statement;
  private readonly deleteRow: Database.Statement;
  private readonly idsOf: Database.Statement;

  constructor(private readonly m: MetadataDB, private readonly leases: LeaseBook) {
    const db = m.db;
    this.labels = new LabelTable(db, 'snapshot_labels');
    this.byKey = db.prepare(`${SELECT} WHERE s.snapshotter = ? AND s.key = ?`);
    this.bySnapshotter = db.prepare(`${SELECT} WHERE s.snapshotter = ? ORDER BY s.id`);
    this.rawByKey = db.prepare('SELECT id, kind FROM snapshots WHERE snapshotter = ? AND key = ?');
    this.insert = db.prepare(`INSERT INTO snapshots (snapshotter, key, kind, parent_id, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?)`);
    this.toCommitted = db.prepare(`UPDATE snapshots SET key = ?, kind = 'committed', created_at = ?, updated_at = ? WHERE id = ?`);
    this.touch = db.prepare('UPDATE snapshots SET updated_at = ? WHERE id = ?');
    this.hasChildren = db.prepare('SELECT 1 FROM snapshots WHERE parent_id = ? LIMIT 1');
    this.deleteRow = db.prepare('DELETE FROM snapshots WHERE id = ?');
    this.idsOf = db.prepare('SELECT id FROM snapshots WHERE snapshotter = ?');
  }

  create(snapshotter: string, key: string, kind: 'active' | 'view', parent: string | undefined, labels: Labels, opts: LeaseOption = {}): SnapshotRecord {
    checkName('snapshotter', snapshotter);
    checkName('key', key);
    if (kind !== 'active' && kind !== 'view') throw new InvalidArgumentError(`invalid snapshot kind ${JSON.stringify(kind)}`);
    validateLabels(labels);
    return this.m.write(() => {
      if (opts.lease !== undefined) this.leases.requireLive(opts.lease);
      if (this.rawByKey.get(snapshotter, key)) throw new AlreadyExistsError(`snapshot ${JSON.stringify(key)}: already exists`, { snapshotter, key });
      let parentId: number | null = null;
      if (parent !== undefined && parent !== '') {
        const p = this.rawByKey.get(snapshotter, parent) as { id: number; kind: SnapshotKind } | undefined;
        if (!p) throw new NotFoundError(`parent snapshot ${JSON.stringify(parent)}: not found`, { snapshotter, parent });
        if (p.kind !== 'committed') throw new InvalidArgumentError(`parent snapshot ${JSON.stringify(parent)} is not committed`, { snapshotter, parent });
        parentId = p.id;
      }
      const now = Date.now();
      const id = Number(this.insert.run(snapshotter, key, kind, parentId, now, now).lastInsertRowid);
      this.labels.replace(id, labels);
      if (opts.lease !== undefined) this.leases.attach(opts.lease, `snapshots/${snapshotter}`, key);
      return this.load(snapshotter, key);
    });
  }

  get(snapshotter: string, key: string): SnapshotRecord {
    return this.m.read(() => this.load(snapshotter, key));
  }

  commit(snapshotter: string, key: string, name: string, labels: Labels | undefined, opts: LeaseOption = {}): SnapshotRecord {
    checkName('name', name);
    validateLabels(labels);
    return this.m.write(() => {
      if (opts.lease !== undefined) this.leases.requireLive(opts.lease);
      const cur = this.rawByKey.get(snapshotter, key) as { id: number; kind: SnapshotKind } | undefined;
      if (!cur) throw new NotFoundError(`snapshot ${JSON.stringify(key)}: not found`, { snapshotter, key });
      if (cur.kind !== 'active') throw new FailedPreconditionError(`snapshot ${JSON.stringify(key)} is ${cur.kind}, only active snapshots can be committed`, { snapshotter, key });
      if (this.rawByKey.get(snapshotter, name)) throw new AlreadyExistsError(`snapshot ${JSON.stringify(name)}: already exists`, { snapshotter, key: name });
      // A committed snapshot is a new object: fresh, equal created and updated times (as containerd).
      const now = Date.now();
      this.toCommitted.run(name, now, now, cur.id);
      if (labels !== undefined) this.labels.replace(cur.id, labels);
      // Leases that protected the active key now protect the committed name.
      this.leases.renameEverywhere(`snapshots/${snapshotter}`, key, name);
      if (opts.lease !== undefined) this.leases.attach(opts.lease, `snapshots/${snapshotter}`, name);
      return this.load(snapshotter, name);
    });
  }

  update(snapshotter: string, key: string, labels: Labels, ...fieldpaths: string[]): SnapshotRecord {
    return this.m.write(() => {
      const cur = this.load(snapshotter, key);
      let next = cur.labels;
      for (const p of fieldpaths.length ? fieldpaths : ['labels']) {
        const applied = applyLabelPath(next, labels, p);
        if (!applied) throw new InvalidArgumentError(`cannot update ${JSON.stringify(p)} field on snapshot ${JSON.stringify(key)}`, { fieldpath: p });
        next = applied;
      }
      validateLabels(next);
      this.labels.apply(cur.id, cur.labels, next);
      this.touch.run(Math.max(Date.now(), cur.updatedAt.getTime()), cur.id);
      return this.load(snapshotter, key);
    });
  }

  remove(snapshotter: string, key: string): SnapshotRecord {
    // Durable: the caller deletes the directory next; the record must not come back after a crash.
    return this.m.durably(() => this.m.write(() => {
      const rec = this.load(snapshotter, key);
      if (this.hasChildren.get(rec.id)) {
        throw new FailedPreconditionError(`snapshot ${JSON.stringify(key)} has children`, { snapshotter, key });
      }
      this.deleteRow.run(rec.id);
      this.leases.detachEverywhere(`snapshots/${snapshotter}`, key);
      return rec;
    }));
  }

  walk(snapshotter: string, ...filters: string[]): SnapshotRecord[] {
    const filter = parseFilters(...filters);
    const all = this.m.read(() => (this.bySnapshotter.all(snapshotter) as Row[]).map((r) => this.toRecord(r)));
    return all.filter((s) => matchFilters(filter, (p) => snapshotField(s, p)));
  }

  ids(snapshotter: string): Set<number> {
    return this.m.read(() => new Set((this.idsOf.all(snapshotter) as { id: number }[]).map((r) => r.id)));
  }

  private load(snapshotter: string, key: string): SnapshotRecord {
    const row = this.byKey.get(snapshotter, key) as Row | undefined;
    if (!row) throw new NotFoundError(`snapshot ${JSON.stringify(key)}: not found`, { snapshotter, key });
    return this.toRecord(row);
  }

  private toRecord(r: Row): SnapshotRecord {
    const rec: SnapshotRecord = {
      id: r.id, key: r.key, kind: r.kind, labels: this.labels.get(r.id),
      createdAt: new Date(r.created_at), updatedAt: new Date(r.updated_at),
    };
    if (r.parent_key !== null) rec.parent = r.parent_key;
    return rec;
  }
}

function checkName(what: string, v: string): void {
  if (typeof v !== 'string' || v === '') throw new InvalidArgumentError(`snapshot ${what} must not be empty`);
}

function snapshotField(s: SnapshotRecord, path: string[]): string | undefined {
  switch (path[0]) {
    case 'kind': return s.kind;
    case 'name': case 'key': return s.key;
    case 'parent': return s.parent;
    case 'labels': return labelField(s.labels, path.slice(1));
    default: return undefined;
  }
}
