import { Blobs } from './content.js';
import { Containers } from './containers.js';
import { MetadataDB } from './db.js';
import { Events } from './events.js';
import { Images } from './images.js';
import { LeaseBook, Leases } from './leases.js';
import { Snapshots } from './snapshots.js';
import type { Metadata } from './types.js';
import { InvalidArgumentError } from '../errors/index.js';

/** The one implementation of `Metadata`; GC and check reach its internals through `internalsOf`. */
export class MetadataStore implements Metadata {
  readonly db: MetadataDB;
  readonly book: LeaseBook;
  readonly images: Images;
  readonly leases: Leases;
  readonly content: Blobs;
  readonly snapshots: Snapshots;
  readonly containers: Containers;
  readonly events: Events;

  constructor(readonly root: string) {
    this.db = new MetadataDB(root);
    this.book = new LeaseBook(this.db.db);
    this.images = new Images(this.db, this.book);
    this.leases = new Leases(this.db, this.book);
    this.content = new Blobs(this.db, this.book);
    this.snapshots = new Snapshots(this.db, this.book);
    this.containers = new Containers(this.db);
    this.events = new Events(this.db);
  }

  generation(): number { return this.db.read(() => this.db.generation()); }

  batch<T>(fn: () => T): T {
    return this.db.write(() => {
      const r = fn();
      if (r instanceof Promise) throw new InvalidArgumentError('batch: the function must be synchronous');
      return r;
    });
  }

  close(): void { this.db.close(); }
}

export function internalsOf(md: Metadata): MetadataStore {
  if (!(md instanceof MetadataStore)) throw new InvalidArgumentError('not a metadata store opened by openMetadata()');
  return md;
}
