import { Transform, type Readable } from 'node:stream';
import { DigestMismatchError, NotImplementedError, isStowageError, stowageErrorOf, throwIfAborted } from '../errors/index.js';
import { layerCompression, type Descriptor, type Digest } from '../oci/index.js';
import { LayerFile, applyLayerToSnapshot, chainID } from '../snapshots/index.js';
import { SNAPSHOT_REF, UNCOMPRESSED, gcRefSnapshot, type ContentStore } from '../content/index.js';
import type { Ctx } from './context.js';
import type { PlatformManifestImpl } from './manifest.js';
import { progressId, type ProgressSink } from './progress.js';
import { scratchPath } from './scratch-dirs.js';


export interface UnpackLayerInput {
  parent?: Digest;
  layer: Descriptor;
  diffId: Digest;
  /** Where the bytes come from; default: the committed blob in the content store. */
  source?: () => Promise<Readable | LayerFile>;
  lease?: string;
  signal?: AbortSignal;
  /** Compressed bytes consumed so far (for the 'Extracting' bar). */
  onProgress?: (current: number, total: number) => void;
  /**
   * Settles once the parent's snapshot is committed (or has failed): the layer is unpacked meanwhile
   * in a scratch directory of the store, and becomes a snapshot after its parent.
   */
  parentReady?: Promise<unknown>;
}

/** How often the 'Extracting' bar of a layer applied from a file is brought up to date. */
const PROGRESS_EVERY_MS = 100;

/** Counts bytes flowing through, reporting them. */
function counting(src: Readable, total: number, report: (n: number, total: number) => void): Readable {
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) { n += chunk.length; report(n, total); cb(null, chunk); },
  });
  src.on('error', (e) => t.destroy(e));
  return src.pipe(t);
}

/**
 * Unpacks one layer as the snapshot named by its chain ID (skipped when already there, also when another
 * process commits it first), verifies the diffID, and labels the blob with its uncompressed digest.
 * Returns the chain ID and whether work was done.
 */
export async function unpackLayer(ctx: Ctx, input: UnpackLayerInput): Promise<{ chainId: Digest; applied: boolean }> {
  throwIfAborted(input.signal);
  // containerd refuses to unpack what it cannot name the compression of: so do we, before any work.
  const compression = layerCompression(input.layer.mediaType);
  if (compression === undefined) {
    throw new NotImplementedError(`failed to unpack layer ${input.layer.digest}: unsupported layer media type ${JSON.stringify(input.layer.mediaType)}`,
      { mediaType: input.layer.mediaType, digest: input.layer.digest, role: 'layer' });
  }
  const chainId = chainID(input.parent, input.diffId);
  if (await ctx.sizes.exists(chainId)) {
    // Keep it from vanishing before the image record exists.
    if (input.lease) ctx.md.leases.addResource(input.lease, { type: `snapshots/${ctx.snaps.name}`, id: chainId });
    return { chainId, applied: false };
  }
  let reader: { close(): Promise<void> } | undefined;
  let source: Readable | LayerFile;
  if (input.source) source = await input.source();
  else {
    const r = await ctx.content.readerAt({ digest: input.layer.digest });
    reader = r;
    // A blob in a file is applied on the apply pool's threads.
    source = r.fd !== undefined ? LayerFile.complete(r.fd, r.size) : r.stream();
  }
  let progress: NodeJS.Timeout | undefined;
  let unwatch: (() => void) | undefined;
  if (input.onProgress) {
    const report = input.onProgress;
    if (source instanceof LayerFile) {
      // Reported as the download writes, and on a timer once it has stopped (or never ran).
      const file = source;
      let last = 0;
      const step = (n: number): void => { if (n > last) { last = n; report(n, input.layer.size); } };
      unwatch = file.watch(step);
      progress = setInterval(() => step(file.consumed), PROGRESS_EVERY_MS);
      progress.unref();
    } else source = counting(source, input.layer.size, report);
  }
  try {
    await applyLayerToSnapshot(ctx.snaps, {
      ...(input.parent ? { parentChainId: input.parent } : {}),
      layer: source,
      expectedDiffID: input.diffId,
      compression,
      ...(input.parentReady ? { parentReady: input.parentReady, staging: scratchPath(ctx.root, 'unpack') } : {}),
      labels: { [SNAPSHOT_REF]: chainId },
      ...(input.lease ? { lease: input.lease } : {}),
      ...(input.signal ? { signal: input.signal } : {}),
    });
    if (progress) input.onProgress!(input.layer.size, input.layer.size);
  } catch (e) {
    if (isStowageError(e, 'AlreadyExists')) return { chainId, applied: false };
    const se = stowageErrorOf(e);
    if (se?.code === 'DigestMismatch') {
      throw new DigestMismatchError(`failed to unpack layer ${input.layer.digest}: wrong diff id: ${(se.data as { actual?: string }).actual ?? '?'} (expected ${input.diffId})`, { ...se.data, layer: input.layer.digest }, { cause: e });
    }
    throw e;
  } finally {
    clearInterval(progress);
    unwatch?.();
    if (!(source instanceof LayerFile)) source.destroy();
    await reader?.close().catch(() => undefined);
  }
  await setLabel(ctx.content, input.layer.digest, UNCOMPRESSED, input.diffId);
  return { chainId, applied: true };
}

/** Sets (or, with '', removes) one label of a blob; a blob that is gone is left alone. */
export async function setLabel(content: Pick<ContentStore, 'update'>, digest: Digest, key: string, value: string): Promise<void> {
  try {
    await content.update({ digest, labels: { [key]: value } }, `labels.${key}`);
  } catch (e) {
    if (!isStowageError(e, 'NotFound')) throw e;
  }
}

/** Unpacks every layer of a present platform manifest in order; labels the config with the top chain. */
export async function unpackManifest(ctx: Ctx, m: PlatformManifestImpl, opts: { lease?: string; signal?: AbortSignal; progress?: ProgressSink } = {}): Promise<Digest | undefined> {
  const doc = await m.manifestDoc();
  const config = await m.readConfig();
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== doc.layers.length) {
    throw new DigestMismatchError(`manifest ${m.digest} has ${doc.layers.length} layers but its config lists ${diffIds.length} diff ids`);
  }
  let parent: Digest | undefined;
  const { progress, ...rest } = opts;
  for (let i = 0; i < doc.layers.length; i++) {
    const layer = doc.layers[i]!;
    const id = progressId(layer.digest);
    const onProgress = progress ? (current: number, total: number) => progress.bytes('Extracting', id, current, total) : undefined;
    const r = await unpackLayer(ctx, { ...(parent ? { parent } : {}), layer, diffId: diffIds[i]!, ...rest, ...(onProgress ? { onProgress } : {}) });
    progress?.status(r.applied ? 'Unpacked' : 'Already unpacked', id);
    parent = r.chainId;
  }
  if (parent) await setLabel(ctx.content, doc.config.digest, gcRefSnapshot(ctx.snaps.name), parent);
  return parent;
}

/**
 * The top chain ID of a platform manifest's snapshots, unpacking them first when they are missing;
 * the result is held by `lease` (a snapshot already present is added to it) until the caller's record holds it.
 */
export async function ensureUnpacked(ctx: Ctx, m: PlatformManifestImpl, lease: string, signal?: AbortSignal, progress?: ProgressSink): Promise<Digest | undefined> {
  if (!(await m.isUnpacked())) return unpackManifest(ctx, m, { lease, ...(signal ? { signal } : {}), ...(progress ? { progress } : {}) });
  const ids = await m.chainIds();
  const top = ids[ids.length - 1];
  if (top) ctx.md.leases.addResource(lease, { type: `snapshots/${ctx.snaps.name}`, id: top });
  return top;
}
