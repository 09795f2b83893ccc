import { DISTRIBUTION_SOURCE_PREFIX, appendSource, childGcLabels, distributionSourceKey, type Info, type Manager } from '../content/index.js';
import { NotFoundError, isStowageError, throwIfAborted } from '../errors/index.js';
import {
  formatPlatform, hostPlatform, onlyPlatform, selectPlatformManifests, type Descriptor, type Digest, type ImageConfig,
  type Manifest, type ParsedManifest, type PlatformMatcher, type Reference,
} from '../oci/index.js';
import type { RegistryClient, Repository } from './client.js';
import { fetchBlobInto, makeRefKey, type BlobSink } from './fetch.js';
import type { TransferLimit } from './limit.js';
import { runLimited, type ProgressFn } from './progress.js';

export type PullSink = BlobSink & Partial<Pick<Manager, 'info' | 'update'>>;

export interface PullOptions {
  /** Which manifests of an index to pull; default the host platform with its compatible fallbacks. */
  platform?: PlatformMatcher;
  /** Pull every platform of an index (attestations included) instead of the best match. */
  allPlatforms?: boolean;
  /** Blobs downloaded at once; default the client's (3). */
  /** Blobs at once; a TransferLimit may change while the transfer runs. */
  concurrency?: number | TransferLimit;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
  /** Fetch manifests and configs only. */
  skipLayers?: boolean;
}

export interface PulledManifest {
  descriptor: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
}

export interface PullResult {
  root: Descriptor;
  manifests: PulledManifest[];
  /** Every blob of the pulled graph (indexes, manifests, configs, layers), parents before children. */
  descriptors: Descriptor[];
  stats: { bytesDownloaded: number; blobsFetched: number; blobsExisting: number; rangeIgnored: number };
}

function sourceLabelKey(repo: Repository): string {
  return distributionSourceKey(repo.domain);
}

/** Records the pull origin on a blob that was already present. */
async function addSourceLabel(store: PullSink, repo: Repository, digest: Digest): Promise<void> {
  if (!store.info || !store.update) return;
  const key = sourceLabelKey(repo);
  let info: Info;
  try { info = await store.info(digest); } catch { return; }
  const value = appendSource(info.labels[key], repo.path);
  if (value !== info.labels[key]) await store.update({ digest, labels: { [key]: value } }, `labels.${key}`).catch(() => {});
}

async function writeSmallBlob(store: PullSink, repo: Repository, desc: Descriptor, bytes: Buffer, labels: Record<string, string>, signal?: AbortSignal): Promise<boolean> {
  let w;
  try {
    w = await store.writer({ ref: makeRefKey(desc), desc: { digest: desc.digest, size: desc.size }, wait: true, signal });
  } catch (e) {
    if (isStowageError(e, 'AlreadyExists')) {
      if (store.info && store.update) {
        const info = await store.info(desc.digest).catch(() => undefined);
        const missing = Object.entries(labels).filter(([k, v]) => info && info.labels[k] !== v && !k.startsWith(DISTRIBUTION_SOURCE_PREFIX));
        if (info && missing.length) await store.update({ digest: desc.digest, labels: Object.fromEntries(missing) }, ...missing.map(([k]) => `labels.${k}`)).catch(() => {});
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
    await w.commit(desc.size, desc.digest, { labels });
  } catch (e) {
    if (!isStowageError(e, 'AlreadyExists')) throw e;
  }
  return true;
}

/**
 * Pulls the graph under `root` into the store: the index's matching manifest(s), their configs and layers.
 * Blobs are committed children first (layers and configs, then manifests, then the index) so that a
 * parent is never visible before what it points at; each parent carries containerd's gc.ref labels for
 * the children pulled, and every blob the distribution.source label.
 */
export async function pullGraph(client: RegistryClient, repo: Repository, root: Descriptor, store: PullSink, opts: PullOptions = {}): Promise<PullResult> {
  const { signal } = opts;
  const matcher = opts.platform ?? onlyPlatform(hostPlatform());
  const stats = { bytesDownloaded: 0, blobsFetched: 0, blobsExisting: 0, rangeIgnored: 0 };
  const descriptors: Descriptor[] = [];
  const pulled: PulledManifest[] = [];
  /** Parents to write after their children: [descriptor, bytes, labels], deepest last. */
  const parents: Array<{ desc: Descriptor; bytes: Buffer; labels: Record<string, string> }> = [];
  const blobs = new Map<Digest, Descriptor>();
  const sourceLabel = { [sourceLabelKey(repo)]: repo.path };

  const visit = async (desc: Descriptor, depth: number): Promise<void> => {
    throwIfAborted(signal);
    if (depth > 4) throw new NotFoundError(`${desc.digest}: indexes nested too deep`);
    const { bytes, parsed } = await client.fetchManifest(repo, desc, { signal });
    descriptors.push(desc);
    if (parsed.kind === 'index') {
      const children = opts.allPlatforms ? parsed.index.manifests
        : selectPlatformManifests(parsed.index.manifests, matcher, 1);
      if (children.length === 0) {
        const wanted = formatPlatform(hostPlatform());
        throw new NotFoundError(`no match for platform in manifest ${desc.digest}${opts.platform ? '' : ` (host ${wanted})`}`, { digest: desc.digest });
      }
      parents.push({ desc, bytes, labels: { ...childGcLabels(parsed, children), ...sourceLabel } });
      for (const child of children) await visit(child, depth + 1);
      return;
    }
    parents.push({ desc, bytes, labels: { ...childGcLabels(parsed, []), ...sourceLabel } });
    const { config } = await client.fetchConfig(repo, parsed.manifest.config, { signal });
    pulled.push({ descriptor: desc, manifest: parsed.manifest, config });
    blobs.set(parsed.manifest.config.digest, parsed.manifest.config);
    if (!opts.skipLayers) for (const l of parsed.manifest.layers) if (!blobs.has(l.digest)) blobs.set(l.digest, l);
  };
  await visit(root, 0);

  const list = [...blobs.values()];
  for (const d of list) {
    descriptors.push(d);
    opts.onProgress?.({ digest: d.digest, mediaType: d.mediaType, phase: 'waiting', current: 0, total: d.size });
  }
  await runLimited(list, opts.concurrency ?? client.concurrency, async (d, blobSignal) => {
    const r = await fetchBlobInto(client, repo, store, d, { signal: blobSignal, onProgress: opts.onProgress, labels: sourceLabel });
    stats.bytesDownloaded += r.bytesDownloaded;
    if (r.rangeIgnored) stats.rangeIgnored++;
    if (r.status === 'exists') { stats.blobsExisting++; await addSourceLabel(store, repo, d.digest); } else stats.blobsFetched++;
  }, signal);
  throwIfAborted(signal);

  for (const p of parents.reverse()) {
    const fresh = await writeSmallBlob(store, repo, p.desc, p.bytes, p.labels, signal);
    if (fresh) stats.blobsFetched++; else stats.blobsExisting++;
    stats.bytesDownloaded += fresh ? p.bytes.length : 0;
    opts.onProgress?.({ digest: p.desc.digest, mediaType: p.desc.mediaType, phase: fresh ? 'done' : 'exists', current: p.desc.size, total: p.desc.size });
  }
  return { root, manifests: pulled, descriptors, stats };
}

/** Resolves `reference` and pulls its graph: the whole `docker pull` transfer, without unpacking. */
export async function pullImage(client: RegistryClient, reference: string | Reference, store: PullSink, opts: PullOptions = {}): Promise<PullResult & { name: string; repository: Repository }> {
  const resolved = await client.resolve(reference, { signal: opts.signal });
  const r = await pullGraph(client, resolved.repository, resolved.descriptor, store, opts);
  return { ...r, name: resolved.name, repository: resolved.repository };
}
