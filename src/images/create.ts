import { writeBlob } from '../content/index.js';
import { NotFoundError, throwIfAborted } from '../errors/index.js';
import {
  MediaType, digestOf, type Descriptor, type Digest, type ImageConfig, type Manifest, type Platform,
} from '../oci/index.js';
import type { Ctx } from './context.js';
import { emitImageEvent } from './events.js';
import { PARENT_LABEL } from './image-info.js';
import { EMPTY_TAR_DIFF_ID, storeLayerStream, type StoredLayer } from './layer-blob.js';
import { PlatformManifestImpl } from './manifest.js';
import { ProgressSink, layerWritten, progressId } from './progress.js';
import { labelChildren, recordImage } from './record.js';
import { bestManifest, matcherFor, platformMissing, resolveRecord } from './resolve.js';
import { parseTagTarget } from './tag.js';
import type { CreateImageOptions } from './types.js';
import { unpackManifest } from './unpack.js';
import { operationLease } from './op-lease.js';

const LEASE_TTL_MS = 24 * 3600_000;

/** 'gzip', 'zstd' or 'none', from a layer media type's suffix. */
function compressionOf(mediaType: string): string {
  return /gzip$/.test(mediaType) ? 'gzip' : /zstd$/.test(mediaType) ? 'zstd' : 'none';
}

/** The image a new one is built on: its ID, its platform manifest and its config. */
export interface BaseImage {
  id: Digest;
  manifest: Manifest;
  config: ImageConfig;
}

/** Runs `fn` under a fresh lease that holds everything it writes until the image record does. */
export async function underLease<T>(ctx: Ctx, purpose: string, fn: (lease: string) => Promise<T>): Promise<T> {
  const lease = operationLease(ctx, purpose, LEASE_TTL_MS);
  try {
    return await fn(lease.id);
  } finally {
    try { ctx.md.leases.delete(lease.id); } catch { /* expired */ }
  }
}

/**
 * The best platform manifest of `refOrID` (for `platform` when given), with its config. With
 * `anyPlatform`, an image without that platform still gives its host-preferred one.
 */
export async function baseImage(ctx: Ctx, refOrID: string, platform?: Platform, anyPlatform = false): Promise<BaseImage> {
  const { record } = resolveRecord(ctx, refOrID);
  const blobs = ctx.blobs();
  let m = await bestManifest(ctx, blobs, record.target, matcherFor(ctx, platform), false);
  if (!m && platform && anyPlatform) m = await bestManifest(ctx, blobs, record.target, matcherFor(ctx, undefined), false);
  if (!m) throw platformMissing(refOrID, platform);
  return { id: record.target.digest, manifest: await m.manifestDoc(), config: await m.readConfig() };
}

export interface NewImage {
  /** The config; its rootfs is replaced by the base's diff IDs plus the new layers'. */
  config: ImageConfig;
  base?: BaseImage;
  layers: StoredLayer[];
  ref?: string;
  labels?: Record<string, string>;
  lease: string;
  /**
   * The event the new ID is announced with (`create` for commit and the builder, `import` for import);
   * null for an intermediate image nobody asked for (the unsquashed step of `commit --squash`).
   */
  event: 'create' | 'import' | null;
  signal?: AbortSignal;
  /** Told `Created` with the new image ID once it is recorded. */
  progress?: ProgressSink;
}

/**
 * Writes config and OCI manifest for a new image over blobs already in the store (held by `lease`),
 * unpacks it (so the new layers are checked as trees), records it (named or dangling) and emits events.
 * Returns the image ID (the manifest digest, as containerd's commit and import make it).
 */
export async function writeImage(ctx: Ctx, img: NewImage): Promise<Digest> {
  throwIfAborted(img.signal);
  const content = ctx.content.withLease(img.lease);
  const layers: Descriptor[] = [...(img.base?.manifest.layers ?? []), ...img.layers.map((l) => l.descriptor)];
  const config: ImageConfig = {
    ...img.config,
    rootfs: { type: 'layers', diff_ids: [...(img.base?.config.rootfs.diff_ids ?? []), ...img.layers.map((l) => l.diffId)] },
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDesc: Descriptor = { mediaType: MediaType.OciConfig, digest: digestOf(configBytes), size: configBytes.length };
  await writeBlob(content, `config-${configDesc.digest}`, configBytes, configDesc);
  content.record(configDesc.digest, configDesc.size);
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDesc, layers };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const target: Descriptor = { mediaType: MediaType.OciManifest, digest: digestOf(manifestBytes), size: manifestBytes.length };
  await writeBlob(content, `manifest-${target.digest}`, manifestBytes, target);
  content.record(target.digest, target.size);
  for (const l of layers) ctx.md.leases.addResource(img.lease, { type: 'content', id: l.digest });
  await labelChildren(content, target, manifest);
  await unpackManifest(ctx, new PlatformManifestImpl(target, ctx.blobs(), ctx.sizes), { lease: img.lease, ...(img.signal ? { signal: img.signal } : {}) });

  const labels = { ...(img.labels ?? {}), ...(img.base ? { [PARENT_LABEL]: img.base.id } : {}) };
  const cfgLabels = { ...(config.config?.Labels ?? {}) };
  if (img.event) emitImageEvent(ctx, img.event, target.digest, target.digest, cfgLabels);
  recordImage(ctx, target, img.ref, labels, cfgLabels);
  img.progress?.message('Created', target.digest);
  return target.digest;
}

/**
 * The builder's CreateImage: the parent's layers plus `layers` (empty tar layers left out, as docker's
 * builder does), under `config`. Without a history in `config`, the parent's history is kept and one
 * entry per new layer is added.
 */
export async function createImage(ctx: Ctx, config: ImageConfig, opts: CreateImageOptions = {}): Promise<{ id: Digest }> {
  if (opts.ref) parseTagTarget(opts.ref); // a bad name fails before any work
  const progress = new ProgressSink(opts.onProgress);
  const platform: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
  return underLease(ctx, 'create image', async (lease) => {
    let base: BaseImage | undefined;
    // A parent without the config's platform is still a parent (the builder decides what it builds).
    if (opts.parent !== undefined && opts.parent !== '') base = await baseImage(ctx, opts.parent, platform, true);
    const content = ctx.content.withLease(lease);
    const stored: StoredLayer[] = [];
    for (const l of opts.layers ?? []) {
      throwIfAborted(opts.signal);
      if ('stream' in l) {
        const s = await storeLayerStream(content, l.stream, opts.signal ? { signal: opts.signal } : {});
        const keepType = l.mediaType !== undefined && compressionOf(l.mediaType) === compressionOf(s.descriptor.mediaType);
        if (s.diffId === EMPTY_TAR_DIFF_ID) continue;
        stored.push(keepType ? { ...s, descriptor: { ...s.descriptor, mediaType: l.mediaType! } } : s);
        layerWritten(progress, s);
      } else {
        const info = await ctx.content.info(l.descriptor.digest).catch(() => undefined);
        if (!info) throw new NotFoundError(`layer ${l.descriptor.digest} is not in the store`, { digest: l.descriptor.digest });
        ctx.md.leases.addResource(lease, { type: 'content', id: l.descriptor.digest });
        stored.push({ descriptor: { ...l.descriptor, size: info.size }, diffId: l.diffId });
        progress.status('Layer already exists', progressId(l.descriptor.digest));
      }
    }
    const created = config.created ?? new Date().toISOString();
    const history = config.history ?? [
      ...(base?.config.history ?? []),
      ...stored.map(() => ({ created })),
    ];
    const full: ImageConfig = { ...config, created, history };
    const id = await writeImage(ctx, {
      config: full, ...(base ? { base } : {}), layers: stored, lease, event: 'create',
      ...(opts.ref !== undefined ? { ref: opts.ref } : {}), ...(opts.labels ? { labels: opts.labels } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}), progress,
    });
    return { id };
  });
}
