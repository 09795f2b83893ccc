import type Database from 'better-sqlite3';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import { parseDigest, type Descriptor, type Digest } from '../oci/index.js';
import type { MetadataDB } from './db.js';
import { labelField, matchFilters, parseFilters } from '../filters/index.js';
import { GC_EXPIRE } from '../content/index.js';
import { applyLabelPath, LabelTable, validateLabels } from './labels.js';
import type { LeaseBook } from './leases.js';
import type { ImageRecord, ImageStore, Labels, LeaseOption } from './types.js';

interface Row { name: string; target: string; created_at: number; updated_at: number }

export class Images implements ImageStore {
  private readonly labels: LabelTable;
  private readonly byName: Database.Statement;
  private readonly all: Database.Statement;
  private readonly insert: Database.Statement;
  private readonly save: Database.Statement;
  private readonly remove: Database.Statement;

  constructor(private readonly m: MetadataDB, private readonly leases: LeaseBook) {
    const db = m.db;
    this.labels = new LabelTable(db, 'image_labels');
    this.byName = db.prepare('SELECT name, target, created_at, updated_at FROM images WHERE name = ?');
    this.all = db.prepare('SELECT name, target, created_at, updated_at FROM images ORDER BY name');
    this.insert = db.prepare(`INSERT INTO images (name, target, target_digest, target_media_type, target_size, created_at, updated_at)
      VALUES (@name, @target, @digest, @mediaType, @size, @now, @now)`);
    this.save = db.prepare(`UPDATE images SET target = @target, target_digest = @digest, target_media_type = @mediaType,
      target_size = @size, updated_at = @now WHERE name = @name`);
    this.remove = db.prepare('DELETE FROM images WHERE name = ?');
  }

  get(name: string): ImageRecord {
    return this.m.read(() => {
      const row = this.byName.get(name) as Row | undefined;
      if (!row) throw new NotFoundError(`image ${JSON.stringify(name)}: not found`, { name });
      return this.toRecord(row);
    });
  }

  list(...filters: string[]): ImageRecord[] {
    const filter = parseFilters(...filters);
    return this.m.read(() => (this.all.all() as Row[]).map((r) => this.toRecord(r)))
      .filter((img) => matchFilters(filter, (p) => imageField(img, p)));
  }

  create(rec: Pick<ImageRecord, 'name' | 'target'> & { labels?: Labels }, opts: LeaseOption = {}): ImageRecord {
    validateImage(rec.name, rec.target, rec.labels);
    return this.m.write(() => {
      if (this.byName.get(rec.name)) throw new AlreadyExistsError(`image ${JSON.stringify(rec.name)}: already exists`, { name: rec.name });
      const now = Date.now();
      this.insert.run({ name: rec.name, ...targetColumns(rec.target), now });
      const labels: Labels = {};
      for (const [k, v] of Object.entries(rec.labels ?? {})) if (v !== '') { this.labels.set(rec.name, k, v); labels[k] = v; }
      // As containerd: an image joins the lease only when it is meant to expire; a plain image is a root anyway.
      if (opts.lease !== undefined) {
        this.leases.requireLive(opts.lease);
        if (rec.labels?.[GC_EXPIRE]) this.leases.attach(opts.lease, 'images', rec.name);
      }
      return { name: rec.name, target: JSON.parse(JSON.stringify(rec.target)) as Descriptor, labels, createdAt: new Date(now), updatedAt: new Date(now) };
    });
  }

  update(rec: Pick<ImageRecord, 'name'> & Partial<Pick<ImageRecord, 'target' | 'labels'>>, ...fieldpaths: string[]): ImageRecord {
    if (!rec.name) throw new InvalidArgumentError('image name is required');
    return this.m.write(() => {
      const row = this.byName.get(rec.name) as Row | undefined;
      if (!row) throw new NotFoundError(`image ${JSON.stringify(rec.name)}: not found`, { name: rec.name });
      const cur = this.toRecord(row);
      let target: Descriptor = cur.target;
      let labels: Labels = cur.labels;
      if (fieldpaths.length === 0) {
        // No paths: replace everything but createdAt.
        if (rec.target === undefined) throw new InvalidArgumentError('image target is required when replacing the whole image');
        target = rec.target;
        labels = { ...(rec.labels ?? {}) };
      }
      for (const p of fieldpaths) {
        const asLabels = applyLabelPath(labels, rec.labels ?? {}, p);
        if (asLabels) { labels = asLabels; continue; }
        if (p === 'target') {
          if (rec.target === undefined) throw new InvalidArgumentError('fieldpath "target" needs a target');
          target = rec.target;
        } else if (p === 'annotations') {
          target = withAnnotations(target, { ...(rec.target?.annotations ?? {}) });
        } else if (p.startsWith('annotations.')) {
          const key = p.slice('annotations.'.length);
          const next = { ...(target.annotations ?? {}) };
          const v = rec.target?.annotations?.[key];
          if (v === undefined || v === '') delete next[key]; else next[key] = v;
          target = withAnnotations(target, next);
        } else {
          throw new InvalidArgumentError(`cannot update ${JSON.stringify(p)} field on image ${JSON.stringify(rec.name)}`, { fieldpath: p });
        }
      }
      validateImage(rec.name, target, labels);
      this.save.run({ name: rec.name, ...targetColumns(target), now: Math.max(Date.now(), cur.updatedAt.getTime()) });
      this.labels.apply(rec.name, cur.labels, labels);
      return this.toRecord(this.byName.get(rec.name) as Row);
    });
  }

  delete(name: string, opts: { target?: Digest } = {}): void {
    this.m.write(() => {
      const row = this.byName.get(name) as Row | undefined;
      if (!row) throw new NotFoundError(`image ${JSON.stringify(name)}: not found`, { name });
      if (opts.target !== undefined && (JSON.parse(row.target) as Descriptor).digest !== opts.target) {
        throw new NotFoundError(`image ${JSON.stringify(name)}: not found with target ${opts.target}`, { name, target: opts.target });
      }
      this.remove.run(name);
      this.leases.detachEverywhere('images', name);
    });
  }

  private toRecord(row: Row): ImageRecord {
    return {
      name: row.name,
      target: JSON.parse(row.target) as Descriptor,
      labels: this.labels.get(row.name),
      createdAt: new Date(row.created_at),
      updatedAt: new Date(row.updated_at),
    };
  }
}

function withAnnotations(d: Descriptor, annotations: Record<string, string>): Descriptor {
  const next: Descriptor = { ...d };
  if (Object.keys(annotations).length > 0) next.annotations = annotations;
  else delete next.annotations;
  return next;
}

function targetColumns(t: Descriptor) {
  return { target: JSON.stringify(t), digest: t.digest, mediaType: t.mediaType, size: t.size };
}

function validateImage(name: string, target: Descriptor | undefined, labels: Labels | undefined): void {
  if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('image name must not be empty');
  if (!target || typeof target !== 'object') throw new InvalidArgumentError(`image ${JSON.stringify(name)}: target is required`, { name });
  if (typeof target.digest !== 'string') throw new InvalidArgumentError(`image ${JSON.stringify(name)}: target digest is required`, { name });
  parseDigest(target.digest);
  if (!Number.isSafeInteger(target.size) || target.size <= 0) {
    throw new InvalidArgumentError(`image ${JSON.stringify(name)}: target size must be > 0`, { name, size: target.size });
  }
  if (typeof target.mediaType !== 'string' || target.mediaType === '') {
    throw new InvalidArgumentError(`image ${JSON.stringify(name)}: target media type is required`, { name });
  }
  if (target.annotations !== undefined) validateLabels(target.annotations);
  validateLabels(labels);
}

function imageField(img: ImageRecord, path: string[]): string | undefined {
  switch (path[0]) {
    case 'name': return path.length === 1 ? img.name : undefined;
    case 'target':
      if (path[1] === 'digest') return img.target.digest;
      if (path[1] === 'mediatype' || path[1] === 'mediaType') return img.target.mediaType;
      return undefined;
    case 'labels': return labelField(img.labels, path.slice(1));
    case 'annotations': return path.length < 2 ? undefined : img.target.annotations?.[path.slice(1).join('.')];
    default: return undefined;
  }
}
