/**
 * The image service's methods for docker's classic builder: commit of a build step, the
 * image cache that finds an earlier step's result, and an image with a read-only root filesystem the
 * caller must release. Builder images are dangling records carrying moby's builder labels (parent,
 * container config, fromscratch), so `children`, the cache and `docker history` work as they do in docker.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { FailedPreconditionError, InvalidArgumentError, isStowageError, throwIfAborted } from '../errors/index.js';
import { onlyPlatform, type Digest, type ImageConfig, type Platform } from '../oci/index.js';
import { checkout as checkoutTree, exportSnapshotLayer } from '../snapshots/index.js';
import { findContainer } from './containers.js';
import type { Ctx } from './context.js';
import { baseImage, underLease, writeImage } from './create.js';
import { builderLabels } from './image-cache.js';
import { EMPTY_TAR_DIFF_ID, type StoredLayer } from './layer-blob.js';
import { bestManifest, matcherFor, platformMissing, resolveRecord } from './resolve.js';
import { scratchPath } from './scratch-dirs.js';
import { ensureUnpacked } from './unpack.js';
import type { ContainerConfig, PlatformManifest } from './types.js';
import { operationLease } from './op-lease.js';
import { CONTAINER_IMAGE_ID } from '../content/index.js';


export interface BuildStepCommit {
  /** The image the step starts from (ID or reference); undefined for scratch. */
  parent?: string;
  /** Working container whose layer is the step's layer (an empty diff adds no layer). None: a config-only step. */
  container?: string;
  /** The image's container config after the step. */
  config: ContainerConfig;
  /** The step's own run config (its Cmd names the step: `#(nop) COPY …`), which the cache compares. */
  containerConfig: ContainerConfig;
  /** History `created_by`; default: the run config's Cmd joined by spaces. */
  createdBy?: string;
  author?: string;
  comment?: string;
  /** Creation time for the config and the history entry (default now). */
  created?: Date;
  /** Clamp layer mtimes to this many seconds since the epoch (SOURCE_DATE_EPOCH). */
  sourceDateEpoch?: number;
  /** Platform of an image built from scratch (default: the host's). */
  platform?: Platform;
  signal?: AbortSignal;
}

export interface BuildStepResult {
  /** The new image's ID (manifest digest). */
  id: Digest;
  /** True when the step added no layer (history `empty_layer`). */
  emptyLayer: boolean;
}

/**
 * CommitBuildStep: the step's image from its parent, the container's layer (if any; an empty diff adds
 * none) and the new config, recorded dangling with the builder labels (createImage's writer); event `create`.
 */
export async function commitBuildStep(ctx: Ctx, step: BuildStepCommit): Promise<BuildStepResult> {
  return underLease(ctx, 'build step', async (lease) => {
    let parent = step.parent;
    let snapshotKey: string | undefined;
    if (step.container !== undefined) {
      const c = findContainer(ctx, step.container);
      parent = c.labels[CONTAINER_IMAGE_ID] || undefined;
      snapshotKey = c.snapshotKey;
    }
    const base = parent ? await baseImage(ctx, parent, step.platform) : undefined;
    throwIfAborted(step.signal);
    const layers: StoredLayer[] = [];
    if (snapshotKey !== undefined) {
      const w = await ctx.content.withLease(lease).writer({ ref: `build-layer-${randomBytes(8).toString('hex')}` });
      const d = await exportSnapshotLayer(ctx.snaps, snapshotKey, w, {
        ...(step.signal ? { signal: step.signal } : {}),
        ...(step.sourceDateEpoch !== undefined ? { sourceDateEpoch: step.sourceDateEpoch } : {}),
      });
      if (d.diffID !== EMPTY_TAR_DIFF_ID) layers.push({ descriptor: { mediaType: d.mediaType, digest: d.digest, size: d.size }, diffId: d.diffID });
    }
    const created = (step.created ?? new Date()).toISOString();
    const entry: NonNullable<ImageConfig['history']>[number] = {
      created, created_by: step.createdBy ?? (step.containerConfig.Cmd ?? []).join(' '),
    };
    if (step.author) entry.author = step.author;
    if (step.comment) entry.comment = step.comment;
    if (layers.length === 0) entry.empty_layer = true;
    const p = step.platform ?? ctx.host;
    const config: ImageConfig = base
      ? { ...structuredClone(base.config), created, config: step.config, history: [...(base.config.history ?? []), entry] }
      : { architecture: p.architecture, os: p.os, ...(p.variant ? { variant: p.variant } : {}), created, config: step.config, rootfs: { type: 'layers', diff_ids: [] }, history: [entry] };
    if (step.author !== undefined) config.author = step.author;

    const id = await writeImage(ctx, {
      config, layers, lease, event: 'create', labels: builderLabels(step.containerConfig, base?.id), ...(base ? { base } : {}), ...(step.signal ? { signal: step.signal } : {}),
    });
    return { id, emptyLayer: layers.length === 0 };
  });
}

/** A read-only root filesystem of an image, held until released. */
export interface ReleasableLayer {
  /** Top chain ID (undefined for scratch or a layer-less image). */
  readonly chainId?: Digest;
  /** A directory holding the image's merged tree (checked out on first use; do not write to it). */
  mount(): Promise<string>;
  /** Releases the layer and its directory; idempotent. */
  release(): Promise<void>;
}

export interface ImageAndLayer {
  /** Undefined for scratch. */
  image?: { id: Digest; name: string; manifest: PlatformManifest; config: ImageConfig };
  layer: ReleasableLayer;
}

export interface ReleasableLayerOptions {
  platform?: Platform;
  /** `missing` (default): pull when absent; `always`: pull first; `never`: fail when absent. */
  pullPolicy?: 'missing' | 'always' | 'never';
  /** How to pull (the service's pull). */
  pull?: (ref: string, platform?: Platform) => Promise<unknown>;
  signal?: AbortSignal;
}

/** Every releasable layer a store has handed out and not yet released (closed by Cleanup). */
export type LayerRegistry = Set<ReleasableLayer>;

/** GetImageAndReleasableLayer: '' (or `scratch`) is scratch; the caller must release the layer. */
export async function getImageAndReleasableLayer(ctx: Ctx, registry: LayerRegistry, ref: string, opts: ReleasableLayerOptions = {}): Promise<ImageAndLayer> {
  const scratch = ref === '' || ref === 'scratch';
  const lease = operationLease(ctx, `build layer ${ref || 'scratch'}`, 3600_000);
  let dir: string | undefined;
  let released = false;
  let top: Digest | undefined;
  const layer: ReleasableLayer = {
    get chainId() { return top; },
    async mount() {
      if (released) throw new FailedPreconditionError('layer already released');
      if (dir === undefined) {
        const d = scratchPath(ctx.root, 'layer');
        await checkoutTree(ctx.snaps, top ? ctx.snaps.layers(top) : [], d, opts.signal ? { signal: opts.signal } : {});
        dir = d;
      }
      return dir;
    },
    async release() {
      if (released) return;
      released = true;
      registry.delete(layer);
      if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
      try { ctx.md.leases.delete(lease.id); } catch { /* expired */ }
    },
  };
  registry.add(layer);
  try {
    if (scratch) return { layer };
    if (opts.pullPolicy === 'always') {
      if (!opts.pull) throw new InvalidArgumentError('pull policy "always" needs a pull function', { ref });
      await opts.pull(ref, opts.platform);
    }
    let resolved;
    try {
      resolved = resolveRecord(ctx, ref);
    } catch (e) {
      if (!isStowageError(e, 'NotFound') || opts.pullPolicy === 'never' || !opts.pull) throw e;
      await opts.pull(ref, opts.platform);
      resolved = resolveRecord(ctx, ref);
    }
    const m = await bestManifest(ctx, ctx.blobs(), resolved.record.target, matcherFor(ctx, opts.platform, false), false);
    if (!m) throw platformMissing(ref, opts.platform);
    top = await ensureUnpacked(ctx, m, lease.id, opts.signal);
    return { image: { id: resolved.record.target.digest, name: resolved.record.name, manifest: m, config: await m.readConfig() }, layer };
  } catch (e) {
    await layer.release();
    throw e;
  }
}
