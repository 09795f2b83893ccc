import type { Descriptor, Digest } from '../oci/index.js';
import type { ProcessOwner } from '../owners/index.js';

/**
 * Contracts of the metadata database. One SQLite file per store root holds them all;
 * `openMetadata(root)` (src/metadata/index.ts) returns a `Metadata` implementing every store below.
 * Methods are synchronous (better-sqlite3): each is one short transaction with no file I/O inside.
 */

export type Labels = Record<string, string>;

/** Options every mutation takes: a live lease to attach the created resource to. */
export interface LeaseOption { lease?: string }

export interface ImageRecord {
  /** Canonical reference string (`docker.io/library/alpine:3.20`), or `dangling@<digest>` for kept untagged images. */
  name: string;
  target: Descriptor;
  labels: Labels;
  createdAt: Date;
  updatedAt: Date;
}

export interface ImageStore {
  get(name: string): ImageRecord;                           // NotFound
  /** Filters: `name`, `target.digest`, `target.mediatype`, `labels.<k>` (==, !=, ~=, presence). */
  list(...filters: string[]): ImageRecord[];
  create(rec: Pick<ImageRecord, 'name' | 'target'> & { labels?: Labels }, opts?: LeaseOption): ImageRecord; // AlreadyExists
  /** fieldpaths: `labels`, `labels.<k>`, `target`, `annotations`, `annotations.<k>`; none = replace all but createdAt. */
  update(rec: Pick<ImageRecord, 'name'> & Partial<Pick<ImageRecord, 'target' | 'labels'>>, ...fieldpaths: string[]): ImageRecord;
  /** With `target`, a compare-and-delete: a different stored target is NotFound. */
  delete(name: string, opts?: { target?: Digest }): void;
}

/** `owner`: the process holding the lease; absent for leases made without one (they live until their expiry). */
export interface Lease { id: string; createdAt: Date; labels: Labels; owner?: ProcessOwner }
export type LeaseResourceType = 'content' | 'ingests' | 'images' | `snapshots/${string}`;
export interface LeaseResource { type: LeaseResourceType; id: string }

export interface LeaseManager {
  /** `expiresInMs` sets `containerd.io/gc.expire`; a lease whose process died expires and stops protecting. */
  create(opts?: { id?: string; labels?: Labels; expiresInMs?: number; owner?: ProcessOwner }): Lease;  // AlreadyExists
  /**
   * Takes over the work of dead holders: every lease whose owner is proven dead and whose labels
   * include all of `match` has its resources moved into `into` and is deleted, in one transaction.
   * Returns the ids taken over.
   */
  adoptDead(into: string, match: Labels): string[];
  delete(id: string): void;                                                       // NotFound
  list(...filters: string[]): Lease[];
  addResource(lease: string, r: LeaseResource): void;
  deleteResource(lease: string, r: LeaseResource): void;
  listResources(lease: string): LeaseResource[];
}

/** Blob records in the database: labels (the content store's LabelStore) and presence for GC. */
export interface ContentRecords {
  labels(digest: Digest): Labels;
  setLabels(digest: Digest, labels: Labels): void;
  /** Sets one key; an empty value deletes it. */
  setLabel(digest: Digest, key: string, value: string): void;
  /** Called when a blob is committed (and attaches it to the lease, if any). */
  recordBlob(digest: Digest, size: number, opts?: LeaseOption & { labels?: Labels }): void;
  forget(digest: Digest): void;
}

export type SnapshotKind = 'view' | 'active' | 'committed';

export interface SnapshotRecord {
  /** Stable numeric id: names the snapshot's directory on disk (`snapshots/<id>`). */
  id: number;
  /** The key (active/view) or name (committed). Unique per snapshotter. */
  key: string;
  kind: SnapshotKind;
  /** Key of the parent, always a committed snapshot. */
  parent?: string;
  labels: Labels;
  createdAt: Date;
  updatedAt: Date;
}

export interface SnapshotRecords {
  /** Creates an active or view record; parent must exist and be committed (NotFound / InvalidArgument). AlreadyExists on key. */
  create(snapshotter: string, key: string, kind: 'active' | 'view', parent: string | undefined, labels: Labels, opts?: LeaseOption): SnapshotRecord;
  get(snapshotter: string, key: string): SnapshotRecord;  // NotFound
  /** Active -> committed under `name` (AlreadyExists if taken; FailedPrecondition unless active). Keeps the id. */
  commit(snapshotter: string, key: string, name: string, labels: Labels | undefined, opts?: LeaseOption): SnapshotRecord;
  /** fieldpaths: `labels`, `labels.<k>`; none = replace labels. */
  update(snapshotter: string, key: string, labels: Labels, ...fieldpaths: string[]): SnapshotRecord;
  /** FailedPrecondition while it has children. Returns the removed record (its id names the directory to delete). */
  remove(snapshotter: string, key: string): SnapshotRecord;
  /** Filters: `kind`, `name`, `parent`, `labels.<k>`. */
  walk(snapshotter: string, ...filters: string[]): SnapshotRecord[];
  /** Records whose directory should exist; GC and check compare this to the disk. */
  ids(snapshotter: string): Set<number>;
}

export interface ContainerRecord {
  id: string;
  image: string;           // image reference or ID it was created from
  snapshotter: string;
  snapshotKey: string;
  labels: Labels;
  createdAt: Date;
}

export interface ContainerRecords {
  create(rec: Omit<ContainerRecord, 'createdAt'>): ContainerRecord;  // AlreadyExists
  get(id: string): ContainerRecord;                                  // NotFound
  list(): ContainerRecord[];
  delete(id: string): void;
}

export type EventAction = 'pull' | 'push' | 'tag' | 'untag' | 'delete' | 'import' | 'load' | 'save' | 'prune' | 'create' | 'commit';
export interface StoredEvent {
  seq: number;
  time: Date;
  type: 'image' | 'container';
  action: EventAction;
  /** Image ID or container ID. */
  id: string;
  attributes: Labels;
}

export interface EventLog {
  append(e: Omit<StoredEvent, 'seq' | 'time'> & { time?: Date }): StoredEvent;
  /** Events with seq > after, optionally bounded by time. */
  list(opts?: { after?: number; since?: Date; until?: Date }): StoredEvent[];
  /** Follow new events (other processes too, by polling the table) until the signal fires. */
  follow(opts: { after?: number; signal: AbortSignal; pollMs?: number }): AsyncIterable<StoredEvent>;
  /** The newest sequence number (0 when empty): `follow({ after: lastSeq() })` sees only what comes next. */
  lastSeq(): number;
}

/** The opened database of one store root: `openMetadata(root)` in src/metadata/index.ts. */
export interface Metadata {
  /** The store root; the database file is `<root>/metadata.db`. */
  readonly root: string;
  readonly images: ImageStore;
  readonly leases: LeaseManager;
  readonly content: ContentRecords;
  readonly snapshots: SnapshotRecords;
  readonly containers: ContainerRecords;
  readonly events: EventLog;
  /** Bumped by every mutation from any process; a cheap "did anything change" check (the GC scheduler's mutation count). */
  generation(): number;
  /**
   * Runs `fn` as one write transaction: every store call inside commits together or not at all
   * (e.g. a pull's labels, image record and event). `fn` must be synchronous and do no file I/O.
   */
  batch<T>(fn: () => T): T;
  close(): void;
}
