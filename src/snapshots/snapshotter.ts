import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  AlreadyExistsError, DigestMismatchError, FailedPreconditionError, InvalidArgumentError, isStowageError,
} from '../errors/index.js';
import { digestOf, type Digest } from '../oci/index.js';
import type { Labels, SnapshotKind, SnapshotRecord, SnapshotRecords } from '../metadata/index.js';
import { applyLayer, type ApplyOptions, type ApplyResult } from './apply.js';
import { layerChanges, treeSource, writeDiffLayer, type DiffLayer, type DiffTarOptions } from './diff.js';
import type { Compression } from './compression.js';
import type { Writer } from '../content/index.js';
import type { LayerFile } from './layer-file.js';
import { WH_PREFIX } from './merged.js';

/**
 * What a runtime needs to assemble the snapshot's root file system.
 * - `bind`: `mount --bind source target` (plus `ro` when asked).
 * - `overlay`: the kernel overlay, `mount -t overlay overlay -o <options> target`.
 * - `fuse3.fuse-overlayfs`: for chains whose layers hold deletions. Layer directories store them the
 *   OCI way (`.wh.<name>` files, `.wh..wh..opq` for opaque directories), which the kernel overlay does
 *   not understand but fuse-overlayfs does; runtimes run `fuse-overlayfs -o <options> <target>`, as
 *   podman/containers-storage do with `mount_program`. Same options as `overlay` (lowerdir, upperdir,
 *   workdir). With `FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT=1` in its environment, deletions made through
 *   the mount are written as `.wh.` files too (otherwise, as root, char 0/0 devices).
 */
export interface Mount {
  type: 'bind' | 'overlay' | 'fuse3.fuse-overlayfs';
  source: string;
  options: string[];
}

export interface SnapshotInfo {
  kind: SnapshotKind;
  name: string;
  parent?: string;
  labels: Labels;
  created: Date;
  updated: Date;
}

export interface Usage { size: number; inodes: number }

export interface SnapshotOptions {
  labels?: Labels;
  lease?: string;
  /**
   * Commit only: whether the layer directory holds deletion markers, when the caller knows (an apply
   * into a fresh layer does). Recorded instead of walking the layer for it on first demand.
   */
  markers?: boolean;
}

/**
 * containerd's snapshotter interface (kinds, key space and error classes). What a snapshotter can do
 * beyond it is in the optional interfaces below, as containerd keeps `Cleaner` apart.
 */
export interface Snapshotter {
  readonly name: string;
  readonly root: string;
  stat(key: string): Promise<SnapshotInfo>;
  /** Only labels change: fieldpaths `labels`, `labels.<k>`; none = replace all labels. Others: InvalidArgument. */
  update(info: Pick<SnapshotInfo, 'name'> & Partial<SnapshotInfo>, ...fieldpaths: string[]): Promise<SnapshotInfo>;
  usage(key: string): Promise<Usage>;
  mounts(key: string): Promise<Mount[]>;
  prepare(key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]>;
  view(key: string, parent?: string, opts?: SnapshotOptions): Promise<Mount[]>;
  commit(name: string, key: string, opts?: SnapshotOptions): Promise<void>;
  remove(key: string): Promise<void>;
  walk(fn: (info: SnapshotInfo) => void | Promise<void>, ...filters: string[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * A snapshotter whose snapshots are plain layer directories (the overlay layout): what apply, diff,
 * checkout and capture work on without mounting anything.
 */
export interface SnapshotLayout {
  /** The snapshot's own layer directory (`snapshots/<id>/fs`); for a view, empty. */
  layerDir(key: string): string;
  /**
   * The layer directories whose merged view is the snapshot, nearest first: its own `fs` (active and
   * committed) then every parent's.
   */
  layers(key: string): string[];
}

/** containerd's `Cleaner`: removes what a crash left on disk (directories without a record). */
export interface SnapshotCleaner {
  cleanup(): Promise<void>;
}

/** What the metadata GC's file sweep needs: the directories on disk, to compare with the records. */
export interface SnapshotDirectorySweep {
  /** Ids of the snapshot directories on disk (`snapshots/<id>`), records or not. */
  directoryIds(): number[];
  /** Deletes one snapshot directory whose record is already gone. Missing is fine. */
  removeDirectory(id: number): void;
}

/** The overlay-layout directory snapshotter: the core interface and every optional one. */
export type DirectorySnapshotter = Snapshotter & SnapshotLayout & SnapshotCleaner & SnapshotDirectorySweep;

/** Whether `sn` keeps its snapshots as plain layer directories. */
export function hasSnapshotLayout(sn: Snapshotter): sn is Snapshotter & SnapshotLayout {
  const o = sn as Partial<SnapshotLayout>;
  return typeof o.layerDir === 'function' && typeof o.layers === 'function';
}

/** Whether `sn` can remove what a crash left on disk. */
export function isSnapshotCleaner(sn: Snapshotter): sn is Snapshotter & SnapshotCleaner {
  return typeof (sn as Partial<SnapshotCleaner>).cleanup === 'function';
}

/** Whether the GC can sweep `sn`'s directories. */
export function hasDirectorySweep(sn: Snapshotter): sn is Snapshotter & SnapshotDirectorySweep {
  const o = sn as Partial<SnapshotDirectorySweep>;
  return typeof o.directoryIds === 'function' && typeof o.removeDirectory === 'function';
}

function toInfo(r: SnapshotRecord): SnapshotInfo {
  const i: SnapshotInfo = { kind: r.kind, name: r.key, labels: r.labels, created: r.createdAt, updated: r.updatedAt };
  if (r.parent !== undefined) i.parent = r.parent;
  return i;
}

/** Disk usage of a tree: allocated bytes (blocks) and distinct inodes, like continuity's DiskUsage. */
export function diskUsage(dir: string): Usage { return scanLayer(dir).usage; }

/**
 * One walk of a layer directory: its disk usage, and whether it holds deletion markers (`.wh.*`
 * entries that are not directories, see merged.ts), which decide the kind of mount of chains above it.
 */
function scanLayer(dir: string): { usage: Usage; markers: boolean } {
  const seen = new Set<string>();
  let size = 0;
  let markers = false;
  const walk = (d: string): void => {
    let ents: fs.Dirent[];
    try { ents = fs.readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      const p = path.join(d, e.name);
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      const k = `${st.dev}:${st.ino}`;
      if (!seen.has(k)) { seen.add(k); size += st.blocks * 512; }
      if (st.isDirectory()) walk(p);
      else if (e.name.startsWith(WH_PREFIX)) markers = true;
    }
  };
  walk(dir);
  return { usage: { size, inodes: seen.size }, markers };
}

/** `snapshots/<id>/markers.json`: whether the layer dir (identified by its inode) holds deletion markers. */
const MARKERS_FILE = 'markers.json';
/** `snapshots/<id>/usage.json`: a committed layer's disk usage, measured once. */
const USAGE_FILE = 'usage.json';

/** Replaces `file` by a temporary file's rename, so a concurrent reader never sees half of it. */
function writeAtomically(file: string, data: string): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch {
    fs.rmSync(tmp, { force: true }); // a cache: measured again next time
  }
}
interface MarkersRecord { ino: number; markers: boolean }

class OverlaySnapshotter implements DirectorySnapshotter {
  private readonly dir: string;
  private closed = false;

  constructor(readonly root: string, private readonly records: SnapshotRecords, readonly name: string) {
    this.dir = path.join(root, 'snapshots');
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  private idDir(id: number): string { return path.join(this.dir, String(id)); }

  private rec(key: string): SnapshotRecord { return this.records.get(this.name, key); }

  async stat(key: string): Promise<SnapshotInfo> { return toInfo(this.rec(key)); }

  async update(info: Pick<SnapshotInfo, 'name'> & Partial<SnapshotInfo>, ...fieldpaths: string[]): Promise<SnapshotInfo> {
    for (const p of fieldpaths) {
      if (p !== 'labels' && !p.startsWith('labels.')) throw new InvalidArgumentError(`cannot update ${JSON.stringify(p)} of snapshot ${JSON.stringify(info.name)}`, { fieldpath: p });
    }
    return toInfo(this.records.update(this.name, info.name, info.labels ?? {}, ...fieldpaths));
  }

  async usage(key: string): Promise<Usage> {
    const r = this.rec(key);
    if (r.kind !== 'committed') return diskUsage(path.join(this.idDir(r.id), 'fs'));
    const file = path.join(this.idDir(r.id), USAGE_FILE);
    try { return JSON.parse(fs.readFileSync(file, 'utf8')) as Usage; } catch { /* not measured yet */ }
    // A committed layer never changes: measured once, on first demand (a pull does not wait for it).
    return this.scan(r.id, true).usage;
  }

  /** Walks snapshot `id`'s layer dir once: records its deletion markers and, once committed, its usage. */
  private scan(id: number, committed: boolean): { usage: Usage; markers: boolean } {
    const fsDir = path.join(this.idDir(id), 'fs');
    const ino = fs.statSync(fsDir, { throwIfNoEntry: false })?.ino;
    const res = scanLayer(fsDir);
    if (ino === undefined) return res;
    this.writeMarkers(id, { ino, markers: res.markers });
    if (committed) writeAtomically(path.join(this.idDir(id), USAGE_FILE), JSON.stringify(res.usage));
    return res;
  }

  private parentDirs(r: SnapshotRecord): string[] {
    const out: string[] = [];
    let p = r.parent;
    while (p !== undefined) {
      const pr = this.rec(p);
      out.push(path.join(this.idDir(pr.id), 'fs'));
      p = pr.parent;
    }
    return out;
  }

  layerDir(key: string): string { return path.join(this.idDir(this.rec(key).id), 'fs'); }

  layers(key: string): string[] {
    const r = this.rec(key);
    const parents = this.parentDirs(r);
    return r.kind === 'view' ? parents : [path.join(this.idDir(r.id), 'fs'), ...parents];
  }

  private parentIds(r: SnapshotRecord): number[] {
    const out: number[] = [];
    for (let p = r.parent; p !== undefined;) { const pr = this.rec(p); out.push(pr.id); p = pr.parent; }
    return out;
  }

  private writeMarkers(id: number, rec: MarkersRecord): void {
    try { fs.writeFileSync(path.join(this.idDir(id), MARKERS_FILE), JSON.stringify(rec)); } catch { /* a cache: rescanned next time */ }
  }

  /**
   * Whether snapshot `id`'s layer dir holds deletion markers. Recorded when the directory is created
   * (empty) and by the first walk after a commit (which drops the record); keyed by the directory's
   * inode, because apply and captureTree swap an active layer dir for a new one. A missing or stale
   * record (older stores, a swapped dir, a commit) costs one walk of that layer, then is recorded.
   * Changes made in place inside an active layer dir (other than through a mount) are seen after its commit.
   */
  private hasMarkers(id: number, committed: boolean): boolean {
    const fsDir = path.join(this.idDir(id), 'fs');
    const st = fs.statSync(fsDir, { throwIfNoEntry: false });
    if (!st) return false;
    try {
      const rec = JSON.parse(fs.readFileSync(path.join(this.idDir(id), MARKERS_FILE), 'utf8')) as MarkersRecord;
      if (rec.ino === st.ino && typeof rec.markers === 'boolean') return rec.markers;
    } catch { /* missing or unreadable: scan */ }
    return this.scan(id, committed).markers;
  }

  private mountsOf(r: SnapshotRecord): Mount[] {
    const parentIds = this.parentIds(r);
    const parents = parentIds.map((id) => path.join(this.idDir(id), 'fs'));
    const own = path.join(this.idDir(r.id), 'fs');
    // The kernel overlay would show deletion markers as files and the deleted files below them.
    const fuse = (ids: number[]): boolean => ids.some((id) => this.hasMarkers(id, id !== r.id || r.kind === 'committed'));
    // An active base layer has no lower to hide: a bind (its markers, from a base archive that held
    // whiteouts, stay visible there; checkout hides them).
    if (parents.length === 0) return [{ type: 'bind', source: own, options: [r.kind === 'view' ? 'ro' : 'rw', 'rbind'] }];
    if (r.kind === 'active') {
      const opts = [`workdir=${path.join(this.idDir(r.id), 'work')}`, `upperdir=${own}`, `lowerdir=${parents.join(':')}`];
      if (fuse([r.id, ...parentIds])) return [{ type: 'fuse3.fuse-overlayfs', source: 'fuse-overlayfs', options: opts }];
      return [{ type: 'overlay', source: 'overlay', options: [...opts, 'index=off'] }];
    }
    if (fuse(parentIds)) return [{ type: 'fuse3.fuse-overlayfs', source: 'fuse-overlayfs', options: [`lowerdir=${parents.join(':')}`] }];
    if (parents.length === 1) return [{ type: 'bind', source: parents[0]!, options: ['ro', 'rbind'] }];
    return [{ type: 'overlay', source: 'overlay', options: [`lowerdir=${parents.join(':')}`, 'index=off'] }];
  }

  async mounts(key: string): Promise<Mount[]> {
    const r = this.rec(key);
    if (r.kind === 'committed') throw new FailedPreconditionError(`snapshot ${JSON.stringify(key)} is committed: it has no mounts`, { key });
    return this.mountsOf(r);
  }

  private async create(kind: 'active' | 'view', key: string, parent: string | undefined, opts: SnapshotOptions): Promise<Mount[]> {
    if (this.closed) throw new FailedPreconditionError('snapshotter is closed');
    // Build the directory first under new-*, then make the record, then rename: a crash leaves only new-*.
    const tmp = path.join(this.dir, `new-${randomBytes(6).toString('hex')}`);
    fs.mkdirSync(tmp, { mode: 0o700 });
    fs.mkdirSync(path.join(tmp, 'fs'), { mode: 0o755 });
    fs.chmodSync(path.join(tmp, 'fs'), 0o755);
    if (kind === 'active') fs.mkdirSync(path.join(tmp, 'work'), { mode: 0o700 });
    fs.writeFileSync(path.join(tmp, MARKERS_FILE), JSON.stringify({ ino: fs.statSync(path.join(tmp, 'fs')).ino, markers: false } satisfies MarkersRecord));
    let r: SnapshotRecord;
    try {
      r = this.records.create(this.name, key, kind, parent === '' ? undefined : parent, opts.labels ?? {}, opts.lease !== undefined ? { lease: opts.lease } : {});
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    try {
      fs.rmSync(this.idDir(r.id), { recursive: true, force: true });
      fs.renameSync(tmp, this.idDir(r.id));
    } catch (e) {
      try { this.records.remove(this.name, key); } catch { /* best effort */ }
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    return this.mountsOf(r);
  }

  prepare(key: string, parent?: string, opts: SnapshotOptions = {}): Promise<Mount[]> { return this.create('active', key, parent, opts); }
  view(key: string, parent?: string, opts: SnapshotOptions = {}): Promise<Mount[]> { return this.create('view', key, parent, opts); }

  async commit(name: string, key: string, opts: SnapshotOptions = {}): Promise<void> {
    const cur = this.rec(key);
    if (cur.kind !== 'active') throw new FailedPreconditionError(`snapshot ${JSON.stringify(key)} is ${cur.kind}: only active snapshots can be committed`, { key });
    const r = this.records.commit(this.name, key, name, opts.labels, opts.lease !== undefined ? { lease: opts.lease } : {});
    // Its usage and markers are measured on first demand (one walk for both), not here: a pull
    // commits layer after layer and would wait for each walk. Markers the caller vouches for are kept.
    const ino = opts.markers === undefined ? undefined : fs.statSync(path.join(this.idDir(r.id), 'fs'), { throwIfNoEntry: false })?.ino;
    if (ino !== undefined) this.writeMarkers(r.id, { ino, markers: opts.markers! });
    else fs.rmSync(path.join(this.idDir(r.id), MARKERS_FILE), { force: true });
    fs.rmSync(path.join(this.idDir(r.id), 'work'), { recursive: true, force: true });
  }

  async remove(key: string): Promise<void> {
    let r: SnapshotRecord;
    try {
      r = this.records.remove(this.name, key);
    } catch (e) {
      if (isStowageError(e, 'FailedPrecondition')) {
        throw new FailedPreconditionError(`cannot remove snapshot ${JSON.stringify(key)} with child`, { key }, { cause: e });
      }
      throw e;
    }
    this.removeDirectory(r.id);
  }

  directoryIds(): number[] {
    try { return fs.readdirSync(this.dir).filter((n) => /^\d+$/.test(n)).map(Number); } catch { return []; }
  }

  removeDirectory(id: number): void {
    // Rename first so a half-deleted tree is never mistaken for a snapshot (cleanup sweeps rm-* leftovers).
    const trash = path.join(this.dir, `rm-${id}-${randomBytes(4).toString('hex')}`);
    try { fs.renameSync(this.idDir(id), trash); } catch { return; }
    fs.rmSync(trash, { recursive: true, force: true });
  }

  async walk(fn: (info: SnapshotInfo) => void | Promise<void>, ...filters: string[]): Promise<void> {
    for (const r of this.records.walk(this.name, ...filters)) await fn(toInfo(r));
  }

  async cleanup(): Promise<void> {
    const ids = this.records.ids(this.name);
    for (const n of fs.readdirSync(this.dir)) {
      if (/^\d+$/.test(n) && ids.has(Number(n))) continue;
      fs.rmSync(path.join(this.dir, n), { recursive: true, force: true });
    }
  }

  async close(): Promise<void> { this.closed = true; }
}

/**
 * Opens the overlay-layout directory snapshotter at `root` (`<root>/snapshots/<id>/fs`), with its
 * records in the metadata database under the snapshotter name `name`.
 */
export function openSnapshotter(root: string, records: SnapshotRecords, name = 'overlay'): DirectorySnapshotter {
  return new OverlaySnapshotter(path.resolve(root), records, name);
}

/**
 * The snapshotters' directories as the metadata GC's snapshot backend sees them. A snapshotter without
 * a directory sweep is left out: GC then goes by its records alone.
 */
export function snapshotGcBackend(...sns: Snapshotter[]) {
  const byName = new Map(sns.filter(hasDirectorySweep).map((s) => [s.name, s]));
  return {
    snapshotters: () => [...byName.keys()],
    async listDirectories(name: string): Promise<number[]> { return byName.get(name)?.directoryIds() ?? []; },
    async removeDirectory(name: string, id: number): Promise<void> { byName.get(name)?.removeDirectory(id); },
  };
}

/** chainID(n) = sha256(chainID(n-1) + " " + diffID(n)); chainID(0) = diffID(0). */
export function chainID(parentChainID: Digest | undefined, diffID: Digest): Digest {
  return parentChainID === undefined ? diffID : digestOf(`${parentChainID} ${diffID}`);
}

export interface ApplyToSnapshotInput {
  /** Committed name of the parent (its chainID), or undefined for a base layer. */
  parentChainId?: Digest;
  /** The layer's bytes (plain tar, gzip or zstd): a stream, or a file, applied on a thread of the apply pool (see LayerFile). */
  layer: Readable | LayerFile;
  /** When known (from the image config), checked after apply and used to skip layers already present. */
  expectedDiffID?: Digest;
  /** The active key to unpack under; a unique one by default. */
  key?: string;
  labels?: Labels;
  lease?: string;
  signal?: AbortSignal;
  onUnsupported?: ApplyOptions['onUnsupported'];
  rootless?: boolean;
  /** The compression the layer's media type declares (see ApplyOptions.compression). */
  compression?: ApplyOptions['compression'];
  /**
   * Settles once the parent is committed (or has failed): the layer is built in `staging` meanwhile,
   * and its snapshot prepared after, so layers of one chain can be unpacked at the same time.
   */
  parentReady?: Promise<unknown>;
  /** With `parentReady`: a fresh path (not created) on the snapshotter's file system to build the layer in. */
  staging?: string;
}

export interface ApplyToSnapshotResult extends ApplyResult { chainID: Digest }

/**
 * prepare → apply (overlay layout, hardlinks resolved against the parent chain) → verify the diffID →
 * commit under the chainID. With `parentReady`, the apply starts at once and the prepare waits for the
 * parent. AlreadyExists when that chainID is already committed (the caller skips the layer; the stream
 * is left unread when that is known up front). DigestMismatch removes the snapshot.
 */
export async function applyLayerToSnapshot(sn: Snapshotter & SnapshotLayout, input: ApplyToSnapshotInput): Promise<ApplyToSnapshotResult> {
  if (input.expectedDiffID !== undefined) {
    const id = chainID(input.parentChainId, input.expectedDiffID);
    if (await exists(sn, id)) throw new AlreadyExistsError(`snapshot ${id}: already exists`, { key: id, chainID: id });
  }
  const key = input.key ?? `extract-${Date.now()}-${randomBytes(6).toString('hex')}`;
  const opts: SnapshotOptions = {};
  if (input.labels) opts.labels = input.labels;
  if (input.lease !== undefined) opts.lease = input.lease;
  const applyOpts: ApplyOptions = { mode: 'overlay' };
  if (input.signal) applyOpts.signal = input.signal;
  if (input.onUnsupported) applyOpts.onUnsupported = input.onUnsupported;
  if (input.rootless !== undefined) applyOpts.rootless = input.rootless;
  if (input.compression !== undefined) applyOpts.compression = input.compression;
  let prepared: Promise<string[]> | undefined;
  const prepare = (): Promise<string[]> => (prepared ??= (async () => {
    await input.parentReady;
    await sn.prepare(key, input.parentChainId, opts);
    return sn.layers(key);
  })());
  let res: ApplyResult;
  try {
    if (input.parentReady !== undefined) {
      if (input.staging === undefined) throw new InvalidArgumentError('applyLayerToSnapshot: parentReady needs a staging path');
      res = await applyLayer(input.layer, {
        staging: input.staging,
        ready: async () => { const [dir, ...lowerDirs] = await prepare(); return { dir: dir!, lowerDirs }; },
      }, applyOpts);
    } else {
      const [dir, ...lowerDirs] = await prepare();
      res = await applyLayer(input.layer, dir!, { ...applyOpts, lowerDirs });
    }
    if (input.expectedDiffID !== undefined && res.diffID !== input.expectedDiffID) {
      throw new DigestMismatchError(`layer diffID ${res.diffID} does not match expected ${input.expectedDiffID}`, { expected: input.expectedDiffID, actual: res.diffID });
    }
  } catch (e) {
    // Removed only when it was made (a failed prepare, or an apply that ended before asking for it, made none).
    if (prepared && await prepared.then(() => true, () => false)) await sn.remove(key).catch(() => undefined);
    throw e;
  }
  const id = chainID(input.parentChainId, res.diffID);
  try {
    // The layer directory was empty when the apply began (prepare makes it so): the apply knows its markers.
    await sn.commit(id, key, { ...opts, markers: res.markers });
  } catch (e) {
    await sn.remove(key).catch(() => undefined);
    throw e;
  }
  return { ...res, chainID: id };
}

async function exists(sn: Snapshotter, key: string): Promise<boolean> {
  try { await sn.stat(key); return true; } catch (e) { if (isStowageError(e, 'NotFound')) return false; throw e; }
}


/**
 * Exports a snapshot's own layer (its changes over its parent: the fast path that walks only its
 * directory) as an OCI layer into a content Writer or stream. Works for active and committed snapshots.
 */
export async function exportSnapshotLayer(sn: Snapshotter & SnapshotLayout, key: string, out: Writer | NodeJS.WritableStream, opts: DiffTarOptions & { compression?: Compression; level?: number } = {}): Promise<DiffLayer> {
  const info = await sn.stat(key);
  if (info.kind === 'view') throw new FailedPreconditionError(`snapshot ${JSON.stringify(key)} is a view: it has no layer of its own`, { key });
  const [own, ...parents] = sn.layers(key);
  return writeDiffLayer(layerChanges(parents, own!), await treeSource(own!), out, opts);
}
