/**
 * The public surface of the image service: what `Stowage` (src/images/stowage.ts) offers to the command
 * line, the Engine API server and library users. Results use the Engine API shapes of api-types.ts;
 * every failure is a StowageError whose message carries docker's wording ('No such image: foo:latest').
 */
import type { Readable, Writable } from 'node:stream';
import type { Descriptor, Digest, ImageConfig, Manifest, Platform } from '../oci/index.js';
import type { EventAction } from '../metadata/index.js';
import type { Credentials } from '../distribution/index.js';
import type { Mount } from '../snapshots/index.js';
import type { BuildStepCommit, BuildStepResult, ImageAndLayer, ReleasableLayerOptions } from './builder.js';
import type { ImageCache, ImageCacheOptions } from './image-cache.js';
import type { Attestation, AttestationOptions } from './attestations.js';
import type { RemoteRepository } from './remote.js';
import type { DistributionServices, ServiceSettings } from './service-info.js';
import type { RepositoryView, RepositoryViewOptions } from './repositories.js';
import type {
  DeleteResponse, EventMessage, HistoryResponseItem, ImageDiskUsage, ImageSummary, InspectResponse,
  JSONMessage, PruneReport,
} from './api-types.js';

export interface OpenOptions {
  /** Store root. Default: $STOWAGE_ROOT, else $XDG_DATA_HOME/stowage, else ~/.local/share/stowage. */
  root?: string;
  /**
   * Open a fresh store in a new private directory under the system temporary directory (or under `root`
   * when given) and remove that directory, with everything in it, on `close()`.
   */
  temporary?: boolean;
  /** Registry hosts spoken to over plain HTTP (loopback hosts always are), like dockerd's insecure-registries. */
  insecureRegistries?: string[];
  /** Layers transferred at once by pull and push (default 3). */
  concurrency?: number;
}

/**
 * Filters as the Engine API takes them: `{key: ['v1', 'v2']}` or the JSON map form `{key: {v1: true}}`.
 * Keys: list — dangling, label, label!, before, since, until, reference; prune — dangling, label, label!, until;
 * events — type, event, image, label.
 */
export type Filters = Record<string, string[] | Record<string, boolean>>;

/**
 * Progress of a pull or push. `id` is the first 12 hex of the blob digest for per-layer lines
 * ('Pulling fs layer', 'Downloading' {current,total}, 'Download complete', 'Extracting', 'Pull complete',
 * 'Already exists'; 'Waiting', 'Pushing' {current,total}, 'Pushed', 'Layer already exists', 'Mounted from <repo>');
 * lines without id are status lines ('Pulling from library/alpine' (id = tag), 'Digest: sha256:…',
 * 'Status: Downloaded newer image for alpine:latest', 'Status: Image is up to date for alpine:latest',
 * 'The push refers to repository [docker.io/library/foo]', '<tag>: digest: sha256:… size: N').
 */
export type ProgressEvent = JSONMessage;
export type ProgressFn = (ev: ProgressEvent) => void;

/** What every operation takes: a signal that stops it (the operation then fails with code `Aborted`). */
export interface OperationOptions {
  signal?: AbortSignal;
}

/** What operations that move or unpack bytes take: a signal, and a callback for progress messages. */
export interface ProgressOptions extends OperationOptions {
  /** Called with each progress message; a listener that throws is ignored, never breaking the operation. */
  onProgress?: ProgressFn;
}

/** Registry credentials: defined by the registry client, where they are used. */
export type { Credentials } from '../distribution/index.js';

/** `os[/arch[/variant]]` or an OCI platform object. */
export type PlatformSpec = string | Platform;

export interface PullOptions extends ProgressOptions {
  /** One platform (default: the host's, with docker's fallbacks). Ignored when `all`. */
  platform?: PlatformSpec;
  /** Pull every platform of an index (like `skopeo copy --all`). */
  all?: boolean;
  /** Pull every tag of a tag-less reference (`docker pull -a`). */
  allTags?: boolean;
  /** Explicit credentials; otherwise docker's config file is consulted by the registry client. */
  credentials?: Credentials;
  /** Plain HTTP / unverified TLS for this registry (loopback registries are plain HTTP by default). */
  insecure?: boolean;
}

export interface PullResult {
  /** Canonical reference pulled (`docker.io/library/alpine:latest`). */
  ref: string;
  /** Image ID (= target digest). */
  id: Digest;
  target: Descriptor;
  /** False when the image was already up to date. */
  updated: boolean;
}

export interface PushOptions extends ProgressOptions {
  platform?: PlatformSpec;
  credentials?: Credentials;
  insecure?: boolean;
}

export interface PushResult {
  ref: string;
  digest: Digest;
  size: number;
}

export interface PlatformOption extends OperationOptions { platform?: PlatformSpec }

/** The resolved image: the record, plus the chosen platform manifest and its config. */
export interface Image {
  /** Image ID = target digest. */
  id: Digest;
  /** The record found (exact name, or one of the records of the target). */
  name: string;
  target: Descriptor;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
  /** The platform manifest chosen (host-preferred, or strictly the requested platform). */
  manifest?: PlatformManifest;
}

/** The raw image record (ResolveImage). */
export interface ImageRecordView {
  name: string;
  target: Descriptor;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

/** One platform manifest of an image, with the helpers docker's ImageManifest has (named apart from the OCI document type). */
export interface PlatformManifest {
  /** Manifest descriptor (from its parent index, with platform/annotations when there is one). */
  descriptor: Descriptor;
  /** The parsed OCI manifest (docker's ImageManifest.Manifest()). */
  manifestDoc(): Promise<Manifest>;
  /** The manifest's platform: from the index entry, else from its config. */
  platform(): Promise<Platform>;
  /** Every blob (manifest, config, layers) is present. */
  contentAvailable(): Promise<boolean>;
  isAttestation(): boolean;
  isPseudoImage(): Promise<boolean>;
  /** Bytes of this manifest's blobs that are present. */
  presentContentSize(): Promise<number>;
  /** The parsed image config (NotFound when absent). */
  readConfig(): Promise<ImageConfig>;
  /** Chain IDs of the layers, bottom to top. */
  chainIds(): Promise<Digest[]>;
  /** Unpacked snapshot bytes of the top chain (0 when not unpacked). */
  snapshotUsage(): Promise<number>;
  /** Whether the top chain is unpacked. */
  isUnpacked(): Promise<boolean>;
}

export interface ListOptions extends OperationOptions {
  all?: boolean;
  filters?: Filters;
  sharedSize?: boolean;
  /** Include `Manifests[]`. */
  manifests?: boolean;
}

export interface InspectOptions extends OperationOptions {
  platform?: PlatformSpec;
  manifests?: boolean;
}

/** `onProgress` gets the `Untagged` and `Deleted` items of the answer (id: the name or digest) once the records are gone, before the collection that follows. */
export interface DeleteOptions extends ProgressOptions {
  force?: boolean;
  /** Default true (docker's `noprune=false`). */
  pruneChildren?: boolean;
  /** Platform-specific content delete (requires force). */
  platforms?: PlatformSpec[];
}

/**
 * `onProgress` gets `Untagged` (id: the name, or the digest of an untagged image) per record removed,
 * `Collecting garbage`, then `Deleted` (id: the manifest or index digest) per image whose content went.
 */
export interface PruneOptions extends ProgressOptions {
  filters?: Filters;
}

export interface EventsOptions extends OperationOptions {
  /** Date, Unix seconds, or a docker timestamp string (`10m`, RFC3339…). */
  since?: Date | number | string;
  until?: Date | number | string;
  filters?: Filters;
  // `signal` stops following; without it (and without `until`) the stream ends after replaying the log.
  /** Keep following new events until `until` or the signal. Default: true when a signal is given. */
  follow?: boolean;
}

export interface SearchOptions {
  /** Results wanted, 1..100 (default 25). */
  limit?: number;
  /** `is-official`, `stars` (minimum), deprecated `is-automated` (true matches nothing). */
  filters?: Filters;
  credentials?: Credentials;
  signal?: AbortSignal;
}

/** One `GET /images/search` result (docker's registry.SearchResult). */
export interface SearchResult {
  description: string;
  is_official: boolean;
  is_automated: boolean;
  name: string;
  star_count: number;
}

export interface DistributionInspectOptions {
  credentials?: Credentials;
  signal?: AbortSignal;
}

/** `GET /distribution/{name}/json`. */
export interface DistributionInspect {
  Descriptor: Pick<Descriptor, 'mediaType' | 'digest' | 'size'>;
  Platforms: Platform[];
}

export interface CheckoutOptions extends ProgressOptions {
  platform?: PlatformSpec;
  /**
   * 'copy' (default): every regular file is a copy the caller may edit. 'hardlink': regular files are
   * hard links into the store's layers (fast, no extra space), for read-only consumers only: writing
   * to such a file in place changes the stored layer.
   */
  link?: 'copy' | 'hardlink';
}

export interface DiskUsageOptions extends OperationOptions {
  /** List every image in `Items` (default true). */
  verbose?: boolean;
}

/**
 * `onProgress` gets `Checking database`, `Checking blobs`, `Checking references`, `Checking leases`,
 * `Checking snapshot directories`, `Checking images`, `Checking containers` as each phase starts,
 * `Verified` per blob hashed (id: its digest; progressDetail: blobs checked of those on disk) and
 * `Checking image` per image ID (progressDetail: images checked of all).
 */
export interface CheckOptions extends ProgressOptions {
  /** Fix what is safe to fix. */
  repair?: boolean;
}

/**
 * An image whose blobs can be read: what `addImage` copies into a store, what `imageSource` reads out of
 * one, and what the image builder produces and builds on.
 */
export interface ImageSource {
  /** The image's top descriptor: an index or a manifest. */
  readonly target: Descriptor;
  /** Opens a blob reachable from `target`; the caller reads it to the end (the store verifies the bytes). */
  open(desc: Descriptor, signal?: AbortSignal): Promise<Readable>;
}

export interface ImageSourceOptions extends OperationOptions {
  /** Only this platform's manifest (strict match) instead of the whole index. */
  platform?: PlatformSpec;
}

export interface AddImageOptions extends ProgressOptions {
  /** Name for the image (`repo[:tag]`, `latest` default); without it the image is kept untagged (dangling). */
  ref?: string;
}

export interface AddImageResult {
  /** Image ID (= target digest). */
  id: Digest;
  target: Descriptor;
  /** Canonical name given, when one was. */
  ref?: string;
}

export interface GcReport {
  blobsRemoved: number;
  snapshotsRemoved: number;
  ingestsRemoved: number;
  leasesRemoved: number;
  bytesReclaimed: number;
}

export interface CheckProblem {
  kind: string;
  /**
   * 'damage': something an image or root needs is missing or corrupt, or a record points at nothing
   * (only these make `ok` false). 'reclaimable': leftovers of an interrupted operation gc removes.
   * 'in-progress': the work of a live operation.
   */
  class: 'damage' | 'reclaimable' | 'in-progress';
  subject: string;
  message: string;
  repaired: boolean;
}

export interface CheckReport {
  /** No unrepaired damage. */
  ok: boolean;
  problems: CheckProblem[];
}

/** A working container: a writable snapshot on top of an image's layers. */
export interface ContainerLayer {
  id: string;
  name?: string;
  /** The reference or ID the container was created from (as given). */
  image: string;
  /** Image ID (target digest); absent for a container on scratch. */
  imageId?: Digest;
  /** Platform manifest digest used; absent for a container on scratch. */
  manifestDigest?: Digest;
  /** Top chain ID of the image (the snapshot's parent), undefined for a layer-less image. */
  chainId?: Digest;
  snapshotKey: string;
  createdAt: Date;
}

export interface CreateLayerOptions extends OperationOptions {
  name?: string;
  platform?: PlatformSpec;
}

/** What a runtime needs to assemble the root filesystem: the snapshotter's description. */
export type { Mount } from '../snapshots/index.js';

/** Engine API `FilesystemChange`: Kind 0 = modified, 1 = added, 2 = deleted. */
export interface FilesystemChange {
  Path: string;
  Kind: 0 | 1 | 2;
}

export interface LayerSize {
  /** Bytes in the writable layer. */
  rw: number;
  /** rw + the image's unpacked size. */
  rootfs: number;
}

/** The container configuration of an image config (`config` of the OCI image config: Cmd, Env, Labels...). */
export type ContainerConfig = NonNullable<ImageConfig['config']>;

export interface SaveOptions {
  /**
   * One platform: only that platform's manifest is written (strict match; none present → NotFound).
   * Several: the index children restricted to those platforms. None: the whole index (blobs absent locally skipped).
   */
  platform?: PlatformSpec | PlatformSpec[];
  signal?: AbortSignal;
  /** 'Saving' {current, total} per blob as it is written, then 'Saved'. */
  onProgress?: ProgressFn;
}

export interface LoadOptions {
  /** Docker's `-q`: no per-layer progress (the `Loaded image` lines still come). */
  quiet?: boolean;
  /**
   * Unpack this platform (strict match) instead of the host's; NotFound when no image of the archive
   * provides it. Every blob of the archive is stored either way.
   */
  platform?: PlatformSpec;
  signal?: AbortSignal;
  /** `{stream: 'Loaded image: busybox:latest\n'}`, `{stream: 'Loaded image ID: sha256:…\n'}`, `Loading layer` progress. */
  onProgress?: ProgressFn;
}

export interface LoadResult {
  /** One entry per record written: `name` (familiar, `busybox:latest`) when the archive named it. */
  images: { name?: string; id: Digest }[];
}

export interface ImportOptions {
  /** Name for the new image (`repo[:tag]`, `latest` default); dangling without. */
  ref?: string;
  /** Dockerfile lines applied to an empty config (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR). */
  changes?: string[];
  /** History comment; default `Imported from <source>` (`-` for a stream). */
  message?: string;
  /** Platform recorded in the config; default the host's. */
  platform?: PlatformSpec;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
}

/**
 * Progress of commit (squash and createImage say the same): `Layer written` per new layer stored (id:
 * 12 hex of its digest; progressDetail: its stored bytes), `Layer already exists` per layer createImage
 * is given by descriptor, and `Created` (id: the new image ID).
 */
export interface CommitOptions extends ProgressOptions {
  /** Name for the new image (`repo[:tag]`); dangling without. */
  ref?: string;
  author?: string;
  /** History comment (docker's `-m`). */
  message?: string;
  /** Dockerfile lines (the same set as import). */
  changes?: string[];
  /** Container config given by the caller; merged over the image's, user values win (docker's rules). */
  config?: Partial<ContainerConfig>;
  /** The result has one layer holding the merged tree (history kept with `empty_layer` entries). */
  squash?: boolean;
}

/** Progress as commit's. */
export interface SquashOptions extends ProgressOptions {
  /** Keep this image's layers (an ancestor of the image) and squash only the ones above it; default: all into one. */
  parent?: string;
  /** Name for the new image; dangling without. */
  ref?: string;
}

/** A layer given to createImage: an uncompressed or compressed tar stream (one read), or a blob already in the store. */
export type CreateImageLayer =
  /** `mediaType` is recorded when it names the compression the layer is stored with (Docker's gzip type, say); otherwise the OCI type is. */
  | { stream: Readable; mediaType?: string }
  | { descriptor: Descriptor; diffId: Digest };

/** Progress as commit's. */
export interface CreateImageOptions extends ProgressOptions {
  /** Image whose layers (and history, when the config has none) come first. */
  parent?: string;
  /** Layers added above the parent's, bottom to top; empty tar layers are omitted as docker's builder does. */
  layers?: CreateImageLayer[];
  /** Name for the new image; dangling without. */
  ref?: string;
  /** Extra labels on the image record (the builder's `org.mobyproject.image.parent` etc. are set for you). */
  labels?: Record<string, string>;
}

/**
 * Images in the store: adding, naming, finding, reading, listing and removing them, and checking one
 * out as a plain directory. What the registry server, `checkout` helpers and most read-only callers need.
 */
export interface LocalImages {
  /** Copies an image from any source (another store, a built image) into this store and names it. */
  addImage(source: ImageSource, opts?: AddImageOptions): Promise<AddImageResult>;
  /** An image of this store as a source for `addImage` of another store or for the image builder. */
  imageSource(refOrID: string, opts?: ImageSourceOptions): Promise<ImageSource>;

  /** Resolve and choose the platform manifest (OnlyStrict when a platform is given). */
  getImage(refOrID: string, opts?: PlatformOption): Promise<Image>;
  /** Resolve to the raw record: an exact name, a digest reference, an image ID or a unique ID prefix. */
  resolveImage(refOrID: string, opts?: OperationOptions): Promise<ImageRecordView>;
  /** `docker tag SOURCE TARGET`. `onProgress` gets one `Tagged` message (id: the new name, familiar). */
  tag(source: string, target: string, opts?: ProgressOptions): Promise<void>;
  /** The store as a registry's repositories (names, blobs, uploads, manifests): what the registry server serves. */
  repositories(opts: RepositoryViewOptions): RepositoryView;

  /** `docker images`. */
  images(opts?: ListOptions): Promise<ImageSummary[]>;
  /** `docker image inspect`. */
  inspect(refOrID: string, opts?: InspectOptions): Promise<InspectResponse>;
  /** `docker history`. */
  history(refOrID: string, opts?: PlatformOption): Promise<HistoryResponseItem[]>;
  /** `docker rmi`. */
  delete(ref: string, opts?: DeleteOptions): Promise<DeleteResponse[]>;
  /** `docker image prune`. */
  prune(opts?: PruneOptions): Promise<PruneReport>;
  /** Image IDs whose builder parent label names this image. */
  children(refOrID: string, opts?: OperationOptions): Promise<Digest[]>;
  /** Number of distinct image IDs. */
  countImages(opts?: OperationOptions): Promise<number>;
  /** Every image ID with its (best platform's) config. */
  imagesMap(): Promise<Map<Digest, ImageConfig>>;
  /** In-toto statements of the image's attestation manifests for its chosen platform. */
  attestations(ref: string, opts?: AttestationOptions): Promise<Attestation[]>;
  /** Materialise the image's merged root filesystem into `dir` (created; must be empty or absent). */
  checkout(refOrID: string, dir: string, opts?: CheckoutOptions): Promise<void>;
}

/**
 * The store's side of registries: pull and push, search, login checks, remote inspection, and the
 * transfer limits pulls and pushes share.
 */
export interface RegistryAccess {
  /** `docker pull`: fetches an image from a registry into the store and unpacks it. */
  pull(ref: string, opts?: PullOptions): Promise<PullResult>;
  /** `docker push`: sends an image (every platform present, or one) to its registry. */
  push(ref: string, opts?: PushOptions): Promise<PushResult[]>;
  /** `docker search`: the registry's index search, or its catalog (`/v2/_catalog`) when it has none. */
  search(term: string, opts?: SearchOptions): Promise<SearchResult[]>;
  /**
   * Checks credentials against a registry (`docker login`'s daemon side, `POST /auth`): Unauthorized when
   * refused. Nothing is stored. `server` is a registry host (`127.0.0.1:5000`, `docker.io`) or URL.
   */
  authenticate(server: string, credentials: Credentials, opts?: { signal?: AbortSignal }): Promise<void>;
  /** The descriptor and platforms of a reference on its registry (`/distribution/{name}/json`). */
  distributionInspect(ref: string, opts?: DistributionInspectOptions): Promise<DistributionInspect>;
  /** One registry repository (resolve, fetch, tags, push). */
  getRepository(ref: string, opts?: { credentials?: Credentials; insecure?: boolean }): Promise<RemoteRepository>;
  /** New transfer limits, applied to running pulls and pushes too; 0 or absent leaves one unchanged. */
  updateConfig(settings: ServiceSettings): void;
  serviceSettings(): Required<ServiceSettings>;
  distributionServices(): DistributionServices;
}

/** Images as files: `docker save`, `docker load` and `docker import`. */
export interface ImageArchives {
  /**
   * `docker save`: one tar that is both an OCI image layout and a docker-archive. Every name is resolved
   * before a byte is written (NotFound first). Layers go out as stored. `output` is ended when the archive
   * is complete; on failure it is left open for the caller to report on or destroy.
   */
  save(refs: string[], output: Writable, opts?: SaveOptions): Promise<void>;
  /** `docker load`: docker-archive (legacy or dual) or OCI layout tar, plain or compressed. */
  load(input: Readable, opts?: LoadOptions): Promise<LoadResult>;
  /** `docker import`: a root filesystem tarball (stream or http(s)/file URL) as a single-layer image. */
  importImage(source: Readable | URL, opts?: ImportOptions): Promise<{ id: Digest }>;
}

/**
 * Working containers (writable snapshots on an image's layers) and the images written from layers:
 * commit a container, squash an image's layers, create an image from a config and layer streams.
 */
export interface ContainerLayers {
  /** A working container: a writable snapshot on the image's layers. */
  createLayer(id: string | undefined, image: string, opts?: CreateLayerOptions): Promise<ContainerLayer>;
  getLayer(idOrName: string, opts?: OperationOptions): Promise<ContainerLayer>;
  listLayers(opts?: OperationOptions): Promise<ContainerLayer[]>;
  /** Path of the writable directory (upper dir) of the container's snapshot. */
  layerPath(idOrName: string, opts?: OperationOptions): Promise<string>;
  mounts(idOrName: string, opts?: OperationOptions): Promise<Mount[]>;
  changes(idOrName: string, opts?: OperationOptions): Promise<FilesystemChange[]>;
  layerSize(idOrName: string, opts?: OperationOptions): Promise<LayerSize>;
  releaseLayer(idOrName: string, opts?: OperationOptions): Promise<void>;

  /** `docker commit`: the container's changes as a new layer on its image. */
  commit(container: string, opts?: CommitOptions): Promise<{ id: Digest }>;
  /** Docker's SquashImage: the layers above `parent` merged into one. */
  squash(image: string, opts?: SquashOptions): Promise<{ id: Digest }>;
  /**
   * The builder's CreateImage: the parent's layers plus `layers` under `config` (its rootfs is replaced
   * by the resulting diff IDs; without a history, the parent's is kept and one entry per new layer added).
   * Recorded dangling unless `ref` is given, with the parent label; event `create`.
   */
  createImage(config: ImageConfig, opts?: CreateImageOptions): Promise<{ id: Digest }>;
}

/** The classic builder's methods (docker's MakeImageCache, CommitBuildStep, GetImageAndReleasableLayer…). */
export interface BuilderSupport {
  /** The image cache: an earlier step's image for the same parent and run config. */
  makeImageCache(opts?: ImageCacheOptions): Promise<ImageCache>;
  /** A build step's image: parent + the container's layer (if any) + the new config, with builder labels. */
  commitBuildStep(step: BuildStepCommit): Promise<BuildStepResult>;
  /** An image ('' or `scratch` for none) and a read-only root filesystem the caller must release. */
  getImageAndReleasableLayer(ref: string, opts?: ReleasableLayerOptions): Promise<ImageAndLayer>;
  /** A working container on an image ('' = scratch). */
  createLayerFromImage(image: string, opts?: CreateLayerOptions): Promise<ContainerLayer>;
  /** The container's layer directories, its own first. */
  layerFolders(idOrName: string): Promise<string[]>;
  /** The snapshot key of the container's writable layer (docker's mount ID). */
  layerMountId(idOrName: string): Promise<string>;
  /** Runs `fn` on a read-only copy of the container's image root filesystem. */
  performWithBaseFs<T>(idOrName: string, fn: (dir: string) => Promise<T>): Promise<T>;
  /** Releases every read-only layer still held by this store. */
  cleanup(): Promise<void>;
  /** A fresh private working directory path under the store root (not created); one a crashed process left is removed when a store opens. */
  scratchDir(purpose: string): string;
  /** A fresh name for a working container of this process; one a crashed process left is released when a store opens. */
  scratchName(purpose: string): string;
}

/** Keeping the store healthy and knowing its state: GC, check, disk usage, the event log, driver status. */
export interface StoreMaintenance {
  /** The store's root directory. */
  readonly root: string;
  /**
   * Removes every blob, snapshot and ingest that no image, container or live lease holds. `onProgress`
   * gets `Marked for removal: …` with the counts, then `Removed blob` (id: digest; progressDetail: the
   * file's bytes), `Removed snapshot`, `Removed snapshot directory`, `Removed lease`, `Removed ingest`,
   * `Removed image record` as each goes.
   */
  gc(opts?: ProgressOptions): Promise<GcReport>;
  /** Verifies the store (database, blobs, snapshots, records); `repair` fixes what is safe to fix. */
  check(opts?: CheckOptions): Promise<CheckReport>;
  /** The image section of `docker system df`. */
  diskUsage(opts?: DiskUsageOptions): Promise<ImageDiskUsage>;
  /** Bytes used by every unpacked layer. */
  layerDiskUsage(): Promise<number>;
  /** `docker events` for images and working containers, as an async iterator. */
  events(opts?: EventsOptions): AsyncIterable<EventMessage>;
  /** Appends an image event. */
  logImageEvent(refOrID: string, name: string, action: EventAction): Promise<void>;
  /** The snapshotter's name (`/info` Driver). */
  storageDriver(): string;
  /** `/info` DriverStatus pairs. */
  layerStoreStatus(): Array<[string, string]>;
}

/**
 * Everything the image service offers: the union of its roles, plus `close`.
 * `Stowage` implements it. Every operation is async and takes an options object with an `AbortSignal`;
 * long ones also take `onProgress`. Failures are `StowageError`s: switch on `code`. Code that needs one
 * role only should ask for that role (`LocalImages`, `RegistryAccess`, ...), not for the whole service.
 */
export interface ImageService extends LocalImages, RegistryAccess, ImageArchives, ContainerLayers, BuilderSupport, StoreMaintenance {
  /** Closes the store (a temporary store's directory is removed). A second call does nothing. */
  close(): Promise<void>;
}
