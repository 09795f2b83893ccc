import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { FailedPreconditionError, fromSystemError, throwIfAborted } from '../errors/index.js';
import { CONTAINER_IMAGE_ID, CONTAINER_NAME, type ContentStore, openContentStore, PARENT_IMAGE } from '../content/index.js';
import { checkStore, collectGarbage, labelStoreFor, openMetadata, type EventAction, type Metadata } from '../metadata/index.js';
import { DEFAULT_CONCURRENCY, TransferLimit } from '../distribution/index.js';
import { hostPlatform, parseNormalizedNamed, type Digest, type ImageConfig } from '../oci/index.js';
import { checkout as checkoutTree, openSnapshotter, snapshotGcBackend, type Snapshotter } from '../snapshots/index.js';
import type {
  DeleteResponse, EventMessage, HistoryResponseItem, ImageDiskUsage, ImageSummary, InspectResponse, PruneReport,
} from './api-types.js';
import { addImage, storeImageSource } from './add.js';
import {
  commitBuildStep, getImageAndReleasableLayer,
  type BuildStepCommit, type BuildStepResult, type ImageAndLayer, type LayerRegistry, type ReleasableLayerOptions,
} from './builder.js';
import { makeImageCache, type ImageCache, type ImageCacheOptions } from './image-cache.js';
import { imageAttestations, type Attestation, type AttestationOptions } from './attestations.js';
import { checkImages } from './check.js';
import { checkProgress, gcProgress } from './maintenance-progress.js';
import { isStaleScratch, scratchName, scratchPath, sweepScratch } from './scratch-dirs.js';
import { imagesMap, layerDiskUsage, layerStoreStatus, type DistributionServices, type ServiceSettings } from './service-info.js';
import * as containers from './containers.js';
import { snapshotSizes, type Ctx } from './context.js';
import { deleteImage } from './delete.js';
import { emitImageEvent, streamEvents } from './events.js';
import { configLabels, presentBlobs, presentSnapshots } from './image-info.js';
import { imageHistory, inspectImage } from './inspect.js';
import { listImages } from './list.js';
import { BlobReader } from './manifest.js';
import { pruneImages } from './prune.js';
import { pullImage } from './pull.js';
import { ProgressSink } from './progress.js';
import { pushImage } from './push.js';
import { registryClients, registryRemotes, type ClientFactory } from './registry.js';
import { searchRegistry } from './search.js';
import { inspectDistribution } from './distribution-inspect.js';
import { RepositoryView, type RepositoryViewOptions } from './repositories.js';
import type { RemoteFactory, RemoteRepository } from './remote.js';
import { bestManifest, matcherFor, platformMissing, resolveRecord, toPlatform } from './resolve.js';
import { commitContainer } from './commit.js';
import { createImage } from './create.js';
import { importImage } from './import.js';
import { loadImages } from './load.js';
import { saveImages } from './save.js';
import { squashImage } from './squash.js';
import { tagImage } from './tag.js';
import { TrackedContent } from './tracked-content.js';
import type {
  AddImageOptions, AddImageResult, CheckOptions, CheckReport, CheckoutOptions, CommitOptions, ContainerLayer,
  CreateImageOptions, CreateLayerOptions, DeleteOptions, DiskUsageOptions, EventsOptions, FilesystemChange, GcReport,
  Image, ImageRecordView, ImageService, ImageSource, ImageSourceOptions, ImportOptions, InspectOptions, LayerSize,
  ListOptions, LoadOptions, LoadResult, Mount, OpenOptions, OperationOptions, PlatformOption, ProgressOptions, PruneOptions,
  PullOptions, PullResult, PushOptions, PushResult, SaveOptions, SquashOptions,
  Credentials, DistributionInspect, DistributionInspectOptions, SearchOptions, SearchResult,
} from './types.js';
import { ensureUnpacked } from './unpack.js';
import { operationLease } from './op-lease.js';

/** $STOWAGE_ROOT, else $XDG_DATA_HOME/stowage, else ~/.local/share/stowage. */
export function defaultRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STOWAGE_ROOT) return path.resolve(env.STOWAGE_ROOT);
  if (env.XDG_DATA_HOME) return path.join(path.resolve(env.XDG_DATA_HOME), 'stowage');
  return path.join(os.homedir(), '.local', 'share', 'stowage');
}

/** Makes the private directory of a temporary store: under `parent` when given, else the system's temp dir. */
function makeTemporaryRoot(parent: string | undefined): string {
  const base = parent ? path.resolve(parent) : os.tmpdir();
  try {
    fs.mkdirSync(base, { recursive: true });
    return fs.mkdtempSync(path.join(base, 'stowage-'));
  } catch (e) { throw fromSystemError(e, `temporary store under ${base}`); }
}

/**
 * An opened store: the image service. Everything hangs off it; two stores in one process never meet.
 * Open it with `openStowage`; close it with `close()` or let `await using` do it.
 */
export class Stowage implements ImageService, AsyncDisposable {
  readonly root: string;
  private readonly ctx: Ctx;
  private readonly remotes: RemoteFactory;
  private readonly temporary: boolean;
  /** Layers transferred at once by pull and push: live, changed by updateConfig while transfers run. */
  private readonly limits: { downloads: TransferLimit; uploads: TransferLimit };
  private readonly clients: ClientFactory;
  private closed = false;
  /** Read-only layers handed out by getImageAndReleasableLayer and not yet released. */
  private readonly heldLayers: LayerRegistry = new Set();

  private constructor(ctx: Ctx, private readonly innerContent: ContentStore, private readonly gcBackend: ReturnType<typeof snapshotGcBackend>, opts: OpenOptions) {
    this.root = ctx.root;
    this.ctx = ctx;
    this.temporary = opts.temporary === true;
    // docker's defaults are 3 downloads and 5 uploads; one number here.
    const n = opts.concurrency ?? DEFAULT_CONCURRENCY;
    this.limits = { downloads: new TransferLimit(n), uploads: new TransferLimit(n) };
    this.clients = registryClients({
      ...(opts.insecureRegistries ? { insecureRegistries: opts.insecureRegistries } : {}),
      ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
    });
    this.remotes = registryRemotes(this.clients);
  }

  static async open(opts: OpenOptions = {}): Promise<Stowage> {
    const root = opts.temporary ? makeTemporaryRoot(opts.root) : opts.root ? path.resolve(opts.root) : defaultRoot();
    try { fs.mkdirSync(root, { recursive: true, mode: 0o700 }); } catch (e) { throw fromSystemError(e, `store root ${root}`); }
    let md: Metadata;
    try { md = openMetadata(root); } catch (e) {
      if (opts.temporary) fs.rmSync(root, { recursive: true, force: true });
      throw e;
    }
    try {
      const inner = await openContentStore(root, { labels: labelStoreFor(md) });
      const content = new TrackedContent(inner, md);
      const snaps = openSnapshotter(root, md.snapshots, 'overlay');
      const sizes = snapshotSizes(snaps);
      const host = hostPlatform();
      const gcBackend = snapshotGcBackend(snaps);
      const ctx: Ctx = {
        root, md, content, snaps, sizes, host,
        blobs: () => new BlobReader(content, (d: Digest) => inner.blobPath(d)),
        async gc({ signal, progress } = {}): Promise<GcReport> {
          const r = await collectGarbage(md, { content: inner, snapshots: gcBackend }, {
            ...(signal ? { signal } : {}), ...(progress ? { onProgress: gcProgress(progress) } : {}),
          });
          return {
            blobsRemoved: r.removed.blobs, snapshotsRemoved: r.removed.snapshots, ingestsRemoved: r.removed.ingests,
            leasesRemoved: r.removed.leases, bytesReclaimed: r.bytesReclaimed,
          };
        },
      };
      // What a crashed process left (build layers and contexts, build steps' working containers) goes now.
      sweepScratch(root);
      for (const c of md.containers.list()) {
        const name = c.labels[CONTAINER_NAME];
        if (name && isStaleScratch(name)) await containers.releaseLayer(ctx, c.id).catch(() => undefined);
      }
      return new Stowage(ctx, inner, gcBackend, opts);
    } catch (e) {
      md.close();
      if (opts.temporary) fs.rmSync(root, { recursive: true, force: true });
      throw e;
    }
  }

  private get c(): Ctx {
    if (this.closed) throw new FailedPreconditionError('store is closed');
    return this.ctx;
  }

  /** The context of a live store, after checking the caller's signal. */
  private op(opts: OperationOptions | undefined): Ctx {
    const ctx = this.c;
    throwIfAborted(opts?.signal);
    return ctx;
  }

  pull(ref: string, opts: PullOptions = {}): Promise<PullResult> { return pullImage(this.c, ref, opts, { remote: this.remotes, concurrency: this.limits.downloads }); }
  push(ref: string, opts: PushOptions = {}): Promise<PushResult[]> { return pushImage(this.c, ref, opts, { remote: this.remotes, concurrency: this.limits.uploads }); }

  async addImage(source: ImageSource, opts: AddImageOptions = {}): Promise<AddImageResult> { return addImage(this.op(opts), source, opts); }
  async imageSource(refOrID: string, opts: ImageSourceOptions = {}): Promise<ImageSource> { return storeImageSource(this.op(opts), refOrID, opts); }

  async getImage(refOrID: string, opts: PlatformOption = {}): Promise<Image> {
    const ctx = this.op(opts);
    const platform = opts.platform !== undefined ? toPlatform(opts.platform) : undefined;
    const { record } = resolveRecord(ctx, refOrID);
    const m = await bestManifest(ctx, ctx.blobs(), record.target, matcherFor(ctx, platform), platform === undefined);
    if (!m && platform) throw platformMissing(refOrID, platform);
    return {
      id: record.target.digest, name: record.name, target: record.target, labels: { ...record.labels },
      createdAt: record.createdAt, updatedAt: record.updatedAt, ...(m ? { manifest: m } : {}),
    };
  }

  async resolveImage(refOrID: string, opts?: OperationOptions): Promise<ImageRecordView> {
    const { record } = resolveRecord(this.op(opts), refOrID);
    return { name: record.name, target: record.target, labels: { ...record.labels }, createdAt: record.createdAt, updatedAt: record.updatedAt };
  }

  async tag(source: string, target: string, opts?: ProgressOptions): Promise<void> { return tagImage(this.op(opts), source, target, new ProgressSink(opts?.onProgress)); }
  repositories(opts: RepositoryViewOptions): RepositoryView { return new RepositoryView(this.c, opts); }
  async images(opts?: ListOptions): Promise<ImageSummary[]> { return listImages(this.op(opts), opts); }
  async inspect(refOrID: string, opts?: InspectOptions): Promise<InspectResponse> { return inspectImage(this.op(opts), refOrID, opts); }
  async history(refOrID: string, opts?: PlatformOption): Promise<HistoryResponseItem[]> { return imageHistory(this.op(opts), refOrID, opts); }
  async delete(ref: string, opts?: DeleteOptions): Promise<DeleteResponse[]> { return deleteImage(this.op(opts), ref, opts); }
  async prune(opts?: PruneOptions): Promise<PruneReport> { return pruneImages(this.op(opts), opts); }

  async diskUsage(opts: DiskUsageOptions = {}): Promise<ImageDiskUsage> {
    const ctx = this.op(opts);
    const items = await listImages(ctx, { sharedSize: true, all: true });
    const blobs = ctx.blobs();
    const allBlobs = new Map<Digest, number>();
    const allSnaps = new Map<Digest, number>();
    for (const r of ctx.md.images.list()) {
      throwIfAborted(opts.signal);
      for (const [d, n] of await presentBlobs(ctx, blobs, r.target)) allBlobs.set(d, n);
      for (const [d, n] of await presentSnapshots(ctx, blobs, r.target)) allSnaps.set(d, n);
    }
    let total = 0;
    for (const n of allBlobs.values()) total += n;
    for (const n of allSnaps.values()) total += n;
    return {
      ActiveCount: items.filter((i) => i.Containers > 0).length,
      TotalCount: items.length,
      Reclaimable: items.filter((i) => i.Containers === 0).reduce((s, i) => s + (i.Size - Math.max(0, i.SharedSize)), 0),
      TotalSize: total,
      Items: opts.verbose === false ? [] : items,
    };
  }

  events(opts?: EventsOptions): AsyncIterable<EventMessage> { return streamEvents(this.op(opts), opts); }
  // `this.c` refuses a closed store, as every method does.
  search(term: string, opts?: SearchOptions): Promise<SearchResult[]> { void this.c; return searchRegistry(this.clients, term, opts); }
  async authenticate(server: string, credentials: Credentials, opts: { signal?: AbortSignal } = {}): Promise<void> {
    void this.c;
    let host = server.replace(/^[a-z]+:\/\//i, '').split('/')[0]!.toLowerCase();
    if (host === '' || host === 'index.docker.io') host = 'docker.io';
    const creds = {
      ...(credentials.username ? { username: credentials.username } : {}), ...(credentials.password ? { password: credentials.password } : {}),
      ...(credentials.identityToken ? { identityToken: credentials.identityToken } : {}),
    };
    // A client of its own: the check must use these credentials and nothing the user stored.
    await this.clients(host, { credentials: creds }).checkLogin(host, creds, opts);
  }
  distributionInspect(ref: string, opts?: DistributionInspectOptions): Promise<DistributionInspect> { void this.c; return inspectDistribution(this.clients, ref, opts); }

  async children(refOrID: string, opts?: OperationOptions): Promise<Digest[]> {
    const ctx = this.op(opts);
    const { record } = resolveRecord(ctx, refOrID);
    const kids = ctx.md.images.list().filter((r) => r.labels[PARENT_IMAGE] === record.target.digest).map((r) => r.target.digest);
    return [...new Set(kids)];
  }

  async countImages(opts?: OperationOptions): Promise<number> {
    return new Set(this.op(opts).md.images.list().map((r) => r.target.digest)).size;
  }

  async gc(opts: ProgressOptions = {}): Promise<GcReport> {
    return this.op(opts).gc({ signal: opts.signal, progress: new ProgressSink(opts.onProgress) });
  }
  /**
   * The store-level check of the metadata floor (database integrity, every reachable blob present and
   * hashing to its name, snapshot directories) plus the image-level one (records, dangling records,
   * containers). `repair` fixes what is safe to fix.
   */
  async check(opts: CheckOptions = {}): Promise<CheckReport> {
    const ctx = this.op(opts);
    const progress = new ProgressSink(opts.onProgress);
    const store = await checkStore(ctx.md, this.innerContent, {
      repair: opts.repair ?? false, snapshots: this.gcBackend, onProgress: checkProgress(progress), ...(opts.signal ? { signal: opts.signal } : {}),
    });
    throwIfAborted(opts.signal);
    const images = await checkImages(ctx, { repair: opts.repair ?? false, hash: false, progress });
    const problems = [
      ...store.problems.map((p) => ({ kind: p.kind, class: p.class, subject: p.subject, message: p.detail, repaired: p.repaired })),
      ...images.problems,
    ];
    return { ok: problems.every((p) => p.repaired || p.class !== 'damage'), problems };
  }

  async checkout(refOrID: string, dir: string, opts: CheckoutOptions = {}): Promise<void> {
    const ctx = this.op(opts);
    const platform = opts.platform !== undefined ? toPlatform(opts.platform) : undefined;
    const { record } = resolveRecord(ctx, refOrID);
    const m = await bestManifest(ctx, ctx.blobs(), record.target, matcherFor(ctx, platform), false);
    if (!m) throw platformMissing(refOrID, platform);
    const lease = operationLease(ctx, `checkout ${refOrID}`, 3600_000);
    try {
      const progress = new ProgressSink(opts.onProgress);
      const top = await ensureUnpacked(ctx, m, lease.id, opts.signal, progress);
      throwIfAborted(opts.signal);
      progress.status(`Checking out ${m.digest} to ${dir}`);
      await checkoutTree(ctx.snaps, top ? ctx.snaps.layers(top) : [], dir, { link: opts.link ?? 'copy', ...(opts.signal ? { signal: opts.signal } : {}) });
      progress.status(`Checked out ${m.digest} to ${dir}`);
    } finally {
      try { ctx.md.leases.delete(lease.id); } catch { /* expired */ }
    }
  }

  async createLayer(id: string | undefined, image: string, opts?: CreateLayerOptions): Promise<ContainerLayer> { return containers.createLayer(this.op(opts), id, image, opts); }
  async getLayer(idOrName: string, opts?: OperationOptions): Promise<ContainerLayer> { return containers.getLayer(this.op(opts), idOrName); }
  async listLayers(opts?: OperationOptions): Promise<ContainerLayer[]> { return containers.listLayers(this.op(opts)); }
  async layerPath(idOrName: string, opts?: OperationOptions): Promise<string> { return containers.layerPath(this.op(opts), idOrName); }
  async mounts(idOrName: string, opts?: OperationOptions): Promise<Mount[]> { return containers.layerMounts(this.op(opts), idOrName); }
  async changes(idOrName: string, opts?: OperationOptions): Promise<FilesystemChange[]> { return containers.layerChangesOf(this.op(opts), idOrName); }
  async layerSize(idOrName: string, opts?: OperationOptions): Promise<LayerSize> { return containers.layerSize(this.op(opts), idOrName); }
  async releaseLayer(idOrName: string, opts?: OperationOptions): Promise<void> { return containers.releaseLayer(this.op(opts), idOrName); }

  async save(refs: string[], output: Writable, opts?: SaveOptions): Promise<void> { return saveImages(this.op(opts), refs, output, opts); }
  async load(input: Readable, opts?: LoadOptions): Promise<LoadResult> { return loadImages(this.op(opts), input, opts); }
  async importImage(source: Readable | URL, opts?: ImportOptions): Promise<{ id: Digest }> { return importImage(this.op(opts), source, opts); }
  async commit(container: string, opts?: CommitOptions): Promise<{ id: Digest }> { return commitContainer(this.op(opts), container, opts); }
  async squash(image: string, opts?: SquashOptions): Promise<{ id: Digest }> { return squashImage(this.op(opts), image, opts); }
  async createImage(config: ImageConfig, opts?: CreateImageOptions): Promise<{ id: Digest }> { return createImage(this.op(opts), config, opts); }

  // The classic builder's methods (see builder.ts).
  makeImageCache(opts?: ImageCacheOptions): Promise<ImageCache> { return makeImageCache(this.c, opts); }
  commitBuildStep(step: BuildStepCommit): Promise<BuildStepResult> { return commitBuildStep(this.c, step); }
  getImageAndReleasableLayer(ref: string, opts: ReleasableLayerOptions = {}): Promise<ImageAndLayer> {
    return getImageAndReleasableLayer(this.c, this.heldLayers, ref, { pull: (r, p) => this.pull(r, p ? { platform: p } : {}), ...opts });
  }
  /** CreateLayerFromImage: a working container on `image` ('' = scratch). */
  createLayerFromImage(image: string, opts?: CreateLayerOptions): Promise<ContainerLayer> { return containers.createLayer(this.c, undefined, image, opts); }
  /** GetLayerFolders: the container's layer directories, its own first, then the image's from the top down. */
  async layerFolders(idOrName: string): Promise<string[]> { return this.c.snaps.layers(containers.findContainer(this.c, idOrName).snapshotKey); }
  /** GetLayerMountID: the snapshot key of the container's writable layer. */
  async layerMountId(idOrName: string): Promise<string> { return containers.findContainer(this.c, idOrName).snapshotKey; }

  // Service settings and plumbing (docker's UpdateConfig, StorageDriver, LayerStoreStatus, …).
  /** UpdateConfig: new transfer limits, applied to running pulls and pushes too; 0 or absent leaves one unchanged. */
  updateConfig(settings: ServiceSettings): void {
    if (settings.maxConcurrentDownloads) this.limits.downloads.set(settings.maxConcurrentDownloads);
    if (settings.maxConcurrentUploads) this.limits.uploads.set(settings.maxConcurrentUploads);
  }
  serviceSettings(): Required<ServiceSettings> {
    return { maxConcurrentDownloads: this.limits.downloads.value, maxConcurrentUploads: this.limits.uploads.value };
  }
  /** StorageDriver: the name C8D reports for an overlay snapshotter (`/info` Driver). */
  storageDriver(): string { void this.c; return 'overlayfs'; }
  /** LayerStoreStatus: `/info` DriverStatus pairs. */
  layerStoreStatus(): Array<[string, string]> { return layerStoreStatus(this.c); }
  /** DistributionServices: what pull and push are made of — the registry side and the live transfer limits. */
  distributionServices(): DistributionServices { return { remotes: this.remotes, downloads: this.limits.downloads, uploads: this.limits.uploads }; }
  /** GetRepository: one registry repository (resolve, fetch, tags, push), with the store's credentials. */
  getRepository(ref: string, opts: { credentials?: Credentials; insecure?: boolean } = {}): Promise<RemoteRepository> {
    return this.remotes(parseNormalizedNamed(ref), { ...(opts.credentials ? { credentials: opts.credentials } : {}), ...(opts.insecure ? { insecure: true } : {}) });
  }
  /** Map: every image ID with the config of its best platform manifest. */
  imagesMap(): Promise<Map<Digest, ImageConfig>> { return imagesMap(this.c); }
  /** LayerDiskUsage: bytes used by every unpacked layer (each snapshot once). */
  layerDiskUsage(): Promise<number> { return layerDiskUsage(this.c); }

  /** PerformWithBaseFS: runs `fn` on a read-only copy of the container's image root filesystem, released afterwards. */
  async performWithBaseFs<T>(idOrName: string, fn: (dir: string) => Promise<T>): Promise<T> {
    const c = containers.findContainer(this.c, idOrName);
    const { layer } = await this.getImageAndReleasableLayer(c.labels[CONTAINER_IMAGE_ID] ?? '', { pullPolicy: 'never' });
    try { return await fn(await layer.mount()); } finally { await layer.release(); }
  }
  /** LogImageEvent: appends an image event (the image's labels as attributes, as docker does). */
  async logImageEvent(refOrID: string, name: string, action: EventAction): Promise<void> {
    const ctx = this.c;
    const { record } = resolveRecord(ctx, refOrID);
    emitImageEvent(ctx, action, record.target.digest, name, await configLabels(ctx, ctx.blobs(), record.target));
  }

  /** ImageAttestations: the in-toto statements stored for the image's (chosen) platform manifest. */
  attestations(ref: string, opts?: AttestationOptions): Promise<Attestation[]> { return imageAttestations(this.c, ref, opts); }

  /** A fresh private working directory path under the store (not created), removed by a later open if this process dies. */
  scratchDir(purpose: string): string { return scratchPath(this.c.root, purpose); }
  /** A fresh name for a working container of this process (a build step's), released by a later open if this process dies. */
  scratchName(purpose: string): string { void this.c; return scratchName(purpose); }

  /** Cleanup: releases every read-only layer still held (their leases and directories). */
  async cleanup(): Promise<void> {
    for (const l of [...this.heldLayers]) await l.release().catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.cleanup();
    this.closed = true;
    await this.ctx.snaps.close().catch(() => undefined);
    this.ctx.md.close();
    if (this.temporary) await fs.promises.rm(this.root, { recursive: true, force: true });
  }

  /** `await using store = await openStowage(...)` closes the store at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> { return this.close(); }
}

/**
 * The entry point: opens (creating if needed) the store at `root` (default: see `defaultRoot`), or with
 * `temporary: true` a fresh store in a private temporary directory that `close()` removes.
 *
 * ```ts
 * await using store = await openStowage({ temporary: true });
 * await store.pull('127.0.0.1:5000/app:1', { onProgress: (m) => console.log(m.status) });
 * ```
 */
export function openStowage(opts: OpenOptions = {}): Promise<Stowage> {
  return Stowage.open(opts);
}
