import {
  addedManifestLabels, appendSource, childGcLabels, distributionSourceKey, type Info, type Manager,
} from '../content/index.js';
import { NotFoundError, isStowageError, throwIfAborted } from '../errors/index.js';
import {
  MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, formatPlatform, hostPlatform, isIndexType, onlyPlatform, parseImageConfig, parseManifest,
  selectPlatformManifests, type Descriptor, type Digest, type ImageConfig, type Index, type Manifest, type ParsedManifest, type PlatformMatcher,
} from '../oci/index.js';
import type { ManifestAccess, Repository } from './access.js';
import { fetchBlobInto, makeRefKey, type BlobSink } from './fetch.js';
import type { TransferLimit } from './limit.js';
import { runLimited, type ProgressFn } from './progress.js';

export type PullSink = BlobSink & Partial<Pick<Manager, 'info' | 'update'>>;

export interface PullOptions {
  /** Which manifests of an index to pull; default the host platform with its compatible fallbacks. */
  platform?: PlatformMatcher;
  /** Pull every platform of an index (attestations included) instead of the best match. */
  allPlatforms?: boolean;
  /** Blobs at once (default the client's); a TransferLimit may change while the transfer runs. */
  concurrency?: number | TransferLimit;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
  /** Fetch manifests and configs only. */
  skipLayers?: boolean;
}

/** An image manifest of a pulled graph, with its config. */
export interface PulledManifest {
  descriptor: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
}

/** Indexes inside indexes followed at most this deep. */
const MAX_INDEX_DEPTH = 4;

export type DocumentKind = 'index' | 'manifest' | 'config';

/** Reads one document of an image graph (index, manifest or config) by descriptor, verified against it. */
export type ReadDocument = (desc: Descriptor, kind: DocumentKind, signal?: AbortSignal) => Promise<Buffer>;

export interface WalkOptions {
  /** The children of an index to follow (a caller's platform policy, with its own words when none fits). */
  select: (index: Index, desc: Descriptor) => Descriptor[];
  /** Called for each manifest before its config is read: throw to refuse it. */
  checkManifest?: (desc: Descriptor, manifest: Manifest) => void;
  /** Called for each image once its config is read: throw to refuse it. */
  checkImage?: (image: PulledManifest) => void;
  signal?: AbortSignal;
}

/** An index or manifest the walk read, with the children it followed (an index's selected manifests). */
export interface WalkedDocument {
  desc: Descriptor;
  bytes: Buffer;
  parsed: ParsedManifest;
  children: Descriptor[];
}

export interface GraphWalk {
  /** Indexes and manifests, parents before children. */
  documents: WalkedDocument[];
  /** Each image manifest reached, with its config. */
  images: PulledManifest[];
}

/**
 * Walks an image graph from `root`: reads and parses each index and manifest, follows the children
 * `select` picks (nested indexes too, a few levels deep), and reads each manifest's config. Layers are
 * not touched: what to do with them is the caller's (pullGraph fetches them; the image service unpacks
 * them as they arrive).
 */
export async function walkGraph(read: ReadDocument, root: Descriptor, opts: WalkOptions): Promise<GraphWalk> {
  const walk: GraphWalk = { documents: [], images: [] };
  const visit = async (desc: Descriptor, depth: number): Promise<void> => {
    throwIfAborted(opts.signal);
    if (depth > MAX_INDEX_DEPTH) throw new NotFoundError(`${desc.digest}: indexes nested too deep`, { digest: desc.digest });
    const bytes = await read(desc, isIndexType(desc.mediaType) ? 'index' : 'manifest', opts.signal);
    const parsed = parseManifest(bytes, desc.mediaType);
    if (parsed.kind === 'index') {
      const children = opts.select(parsed.index, desc);
      walk.documents.push({ desc, bytes, parsed, children });
      for (const child of children) await visit(child, depth + 1);
      return;
    }
    walk.documents.push({ desc, bytes, parsed, children: [] });
    opts.checkManifest?.(desc, parsed.manifest);
    const config = parseImageConfig(await read(parsed.manifest.config, 'config', opts.signal));
    const image: PulledManifest = { descriptor: desc, manifest: parsed.manifest, config };
    opts.checkImage?.(image);
    walk.images.push(image);
  };
  await visit(root, 0);
  return walk;
}

/** The registry as a ReadDocument: manifests and configs fetched by descriptor, capped and verified. */
export function registryDocuments(access: ManifestAccess, repo: Repository): ReadDocument {
  return (desc, kind, signal) => access.fetchBytes(repo, desc, kind === 'config' ? MAX_CONFIG_SIZE : MAX_MANIFEST_SIZE, signal ? { signal } : {});
}

/**
 * The GC labels a walked document should carry, given those it already has: a manifest names its config
 * and layers; an index the children this walk followed, added after the ones earlier pulls gave it.
 */
export function documentGcLabels(doc: WalkedDocument, existing: Record<string, string> = {}): Record<string, string> {
  return doc.parsed.kind === 'index' ? addedManifestLabels(existing, doc.children) : childGcLabels(doc.parsed, []);
}

export interface PullResult {
  root: Descriptor;
  manifests: PulledManifest[];
  /** Every blob of the pulled graph (indexes, manifests, configs, layers), parents before children. */
  descriptors: Descriptor[];
  stats: { bytesDownloaded: number; blobsFetched: number; blobsExisting: number; rangeIgnored: number };
}

/**
 * Adds the repository to a stored blob's distribution.source label (what push mounts from). A blob
 * that is gone, or a store without labels, is left alone.
 */
export async function addSourceLabel(store: Partial<Pick<Manager, 'info' | 'update'>>, source: Pick<Repository, 'domain' | 'path'>, digest: Digest): Promise<void> {
  if (!store.info || !store.update) return;
  const key = distributionSourceKey(source.domain);
  let info: Info;
  try { info = await store.info(digest); } catch { return; }
  const value = appendSource(info.labels[key], source.path);
  if (value === info.labels[key]) return;
  await store.update({ digest, labels: { [key]: value } }, `labels.${key}`).catch((e: unknown) => { if (!isStowageError(e, 'NotFound')) throw e; });
}

/**
 * Commits a walked document with its GC labels and the source label; one already present gets the GC
 * labels it lacks (an index keeps the children earlier pulls gave it) and the source added. True when written.
 */
async function writeDocument(store: PullSink, repo: Repository, doc: WalkedDocument, signal?: AbortSignal): Promise<boolean> {
  const { desc, bytes } = doc;
  let w;
  try {
    w = await store.writer({ ref: makeRefKey(desc), desc: { digest: desc.digest, size: desc.size }, wait: true, signal });
  } catch (e) {
    if (isStowageError(e, 'AlreadyExists')) {
      if (store.info && store.update) {
        const info = await store.info(desc.digest).catch(() => undefined);
        const missing = info ? Object.entries(documentGcLabels(doc, info.labels)).filter(([k, v]) => info.labels[k] !== v) : [];
        if (missing.length) await store.update({ digest: desc.digest, labels: Object.fromEntries(missing) }, ...missing.map(([k]) => `labels.${k}`)).catch(() => {});
      }
      await addSourceLabel(store, repo, desc.digest);
      return false;
    }
    throw e;
  }
  try {
    if (w.status().offset > 0) await w.truncate(0);
    await w.write(bytes);
  } catch (e) {
    await w.close().catch(() => {});
    throw e;
  }
  try {
    await w.commit(desc.size, desc.digest, { labels: { ...documentGcLabels(doc), [distributionSourceKey(repo.domain)]: repo.path } });
  } catch (e) {
    if (!isStowageError(e, 'AlreadyExists')) throw e;
  }
  return true;
}

/** The children of an index pullGraph follows: every manifest, or the best match for the platform. */
function selectForPull(opts: PullOptions): WalkOptions['select'] {
  const matcher = opts.platform ?? onlyPlatform(hostPlatform());
  return (index, desc) => {
    if (opts.allPlatforms) return index.manifests;
    const children = selectPlatformManifests(index.manifests, matcher, 1);
    if (children.length === 0) {
      const wanted = formatPlatform(hostPlatform());
      throw new NotFoundError(`no match for platform in manifest ${desc.digest}${opts.platform ? '' : ` (host ${wanted})`}`, { digest: desc.digest });
    }
    return children;
  };
}

/**
 * Pulls the graph under `root` into the store: the index's matching manifest(s), their configs and layers.
 * Blobs are committed children first (layers and configs, then manifests, then the index) so that a
 * parent is never visible before what it points at; each parent carries containerd's gc.ref labels for
 * the children pulled, and every blob the distribution.source label.
 */
export async function pullGraph(access: ManifestAccess, repo: Repository, root: Descriptor, store: PullSink, opts: PullOptions = {}): Promise<PullResult> {
  const { signal } = opts;
  const stats = { bytesDownloaded: 0, blobsFetched: 0, blobsExisting: 0, rangeIgnored: 0 };
  const walk = await walkGraph(registryDocuments(access, repo), root, { select: selectForPull(opts), ...(signal ? { signal } : {}) });
  const blobs = new Map<Digest, Descriptor>();
  for (const { manifest } of walk.images) {
    blobs.set(manifest.config.digest, manifest.config);
    if (!opts.skipLayers) for (const l of manifest.layers) if (!blobs.has(l.digest)) blobs.set(l.digest, l);
  }
  const sourceLabel = { [distributionSourceKey(repo.domain)]: repo.path };

  const list = [...blobs.values()];
  for (const d of list) opts.onProgress?.({ digest: d.digest, mediaType: d.mediaType, phase: 'waiting', current: 0, total: d.size });
  await runLimited(list, opts.concurrency ?? access.settings.concurrency, async (d, blobSignal) => {
    const r = await fetchBlobInto(access, repo, store, d, { signal: blobSignal, onProgress: opts.onProgress, labels: sourceLabel });
    stats.bytesDownloaded += r.bytesDownloaded;
    if (r.rangeIgnored) stats.rangeIgnored++;
    if (r.status === 'exists') { stats.blobsExisting++; await addSourceLabel(store, repo, d.digest); } else stats.blobsFetched++;
  }, signal);
  throwIfAborted(signal);

  for (const doc of [...walk.documents].reverse()) {
    const fresh = await writeDocument(store, repo, doc, signal);
    if (fresh) stats.blobsFetched++; else stats.blobsExisting++;
    stats.bytesDownloaded += fresh ? doc.bytes.length : 0;
    opts.onProgress?.({ digest: doc.desc.digest, mediaType: doc.desc.mediaType, phase: fresh ? 'done' : 'exists', current: doc.desc.size, total: doc.desc.size });
  }
  return { root, manifests: walk.images, descriptors: [...walk.documents.map((d) => d.desc), ...list], stats };
}
