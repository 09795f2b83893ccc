import type Database from 'better-sqlite3';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import type { MetadataDB } from './db.js';
import { LabelTable, validateLabels } from './labels.js';
import type { ContainerRecord, ContainerRecords } from './types.js';

interface Row { id: string; image: string; snapshotter: string; snapshot_key: string; created_at: number }

/** Working-container records. GC treats every container as a root (its snapshot and labels stay). */
export class Containers implements ContainerRecords {
  private readonly labels: LabelTable;
  private readonly byId: Database.Statement;
  private readonly all: Database.Statement;
  private readonly insert: Database.Statement;
  private readonly remove: Database.Statement;

  constructor(private readonly m: MetadataDB) {
    const db = m.db;
    this.labels = new LabelTable(db, 'container_labels');
    this.byId = db.prepare('SELECT * FROM containers WHERE id = ?');
    this.all = db.prepare('SELECT * FROM containers ORDER BY created_at, id');
    this.insert = db.prepare('INSERT INTO containers (id, image, snapshotter, snapshot_key, created_at) VALUES (?, ?, ?, ?, ?)');
    this.remove = db.prepare('DELETE FROM containers WHERE id = ?');
  }

  create(rec: Omit<ContainerRecord, 'createdAt'>): ContainerRecord {
    if (!rec.id) throw new InvalidArgumentError('container id must not be empty');
    if (!rec.snapshotter) throw new InvalidArgumentError('container snapshotter must not be empty');
    validateLabels(rec.labels);
    return this.m.write(() => {
      if (this.byId.get(rec.id)) throw new AlreadyExistsError(`container ${JSON.stringify(rec.id)}: already exists`, { id: rec.id });
      this.insert.run(rec.id, rec.image ?? '', rec.snapshotter, rec.snapshotKey ?? '', Date.now());
      this.labels.replace(rec.id, rec.labels);
      return this.toRecord(this.byId.get(rec.id) as Row);
    });
  }

  get(id: string): ContainerRecord {
    return this.m.read(() => {
      const row = this.byId.get(id) as Row | undefined;
      if (!row) throw new NotFoundError(`container ${JSON.stringify(id)}: not found`, { id });
      return this.toRecord(row);
    });
  }

  list(): ContainerRecord[] {
    return this.m.read(() => (this.all.all() as Row[]).map((r) => this.toRecord(r)));
  }

  delete(id: string): void {
    this.m.write(() => {
      if (this.remove.run(id).changes === 0) throw new NotFoundError(`container ${JSON.stringify(id)}: not found`, { id });
    });
  }

  private toRecord(r: Row): ContainerRecord {
    return {
      id: r.id, image: r.image, snapshotter: r.snapshotter, snapshotKey: r.snapshot_key,
      labels: this.labels.get(r.id), createdAt: new Date(r.created_at),
    };
  }
}
