import { randomBytes } from 'node:crypto';
import { ConflictError, FailedPreconditionError, InvalidArgumentError, NotFoundError, isStowageError } from '../errors/index.js';
import type { ContainerRecord } from '../metadata/index.js';
import type { Digest } from '../oci/index.js';
import { layerChanges, toApiChanges } from '../snapshots/index.js';
import type { Ctx } from './context.js';
import { bestManifest, matcherFor, platformMissing, resolveRecord, toPlatform } from './resolve.js';
import type { ContainerLayer, CreateLayerOptions, FilesystemChange, LayerSize, Mount } from './types.js';
import { ensureUnpacked } from './unpack.js';
import { OPERATION_LEASE_TTL_MS, operationLease } from './op-lease.js';
import { CONTAINER_CHAIN, CONTAINER_IMAGE_ID, CONTAINER_MANIFEST, CONTAINER_NAME, CONTAINER_SNAPSHOT } from '../content/index.js';

const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

function toLayer(c: ContainerRecord): ContainerLayer {
  const out: ContainerLayer = { id: c.id, image: c.image, snapshotKey: c.snapshotKey, createdAt: c.createdAt };
  const imageId = c.labels[CONTAINER_IMAGE_ID];
  if (imageId) out.imageId = imageId as Digest;
  const manifest = c.labels[CONTAINER_MANIFEST];
  if (manifest) out.manifestDigest = manifest as Digest;
  const name = c.labels[CONTAINER_NAME];
  if (name) out.name = name;
  const chain = c.labels[CONTAINER_CHAIN];
  if (chain) out.chainId = chain as Digest;
  return out;
}

/**
 * A working container: a writable snapshot on the image's top chain, recorded as a GC root.
 * The image '' is scratch: an empty writable snapshot (the builder's `FROM scratch`).
 */
export async function createLayer(ctx: Ctx, id: string | undefined, image: string, opts: CreateLayerOptions = {}): Promise<ContainerLayer> {
  const cid = id ?? randomBytes(32).toString('hex');
  if (!ID_RE.test(cid)) throw new InvalidArgumentError(`invalid container id ${JSON.stringify(cid)}`, { id: cid });
  const existing = ctx.md.containers.list();
  if (opts.name !== undefined) {
    if (!ID_RE.test(opts.name)) throw new InvalidArgumentError(`Invalid container name (${opts.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`, { name: opts.name });
    const taken = existing.find((c) => c.labels[CONTAINER_NAME] === opts.name);
    if (taken) throw new ConflictError(`Conflict. The container name "/${opts.name}" is already in use by container "${taken.id}". You have to remove (or rename) that container to be able to reuse that name.`, { name: opts.name });
  }
  if (existing.some((c) => c.id === cid)) throw new ConflictError(`container ${cid} already exists`, { id: cid });
  if (image === '') return createScratchLayer(ctx, cid, opts);

  const platform = opts.platform !== undefined ? toPlatform(opts.platform) : undefined;
  const { record } = resolveRecord(ctx, image);
  const blobs = ctx.blobs();
  const m = await bestManifest(ctx, blobs, record.target, matcherFor(ctx, platform), false);
  if (!m) throw platformMissing(image, platform);
  if (!(await m.contentAvailable()) && !(await m.isUnpacked())) {
    throw new FailedPreconditionError(`image ${image} is not complete locally: pull it again`, { image });
  }
  // The lease keeps the new snapshot (and a fresh unpack) alive until the container record holds it.
  const lease = operationLease(ctx, `container ${cid}`, OPERATION_LEASE_TTL_MS);
  try {
    const top = await ensureUnpacked(ctx, m, lease.id, opts.signal);
    const key = `container-${cid}`;
    await ctx.snaps.prepare(key, top, { lease: lease.id, labels: { [CONTAINER_SNAPSHOT]: cid } });
    const labels: Record<string, string> = { [CONTAINER_IMAGE_ID]: record.target.digest, [CONTAINER_MANIFEST]: m.digest };
    if (top) labels[CONTAINER_CHAIN] = top;
    if (opts.name !== undefined) labels[CONTAINER_NAME] = opts.name;
    try {
      return toLayer(ctx.md.containers.create({ id: cid, image, snapshotter: ctx.snaps.name, snapshotKey: key, labels }));
    } catch (e) {
      await ctx.snaps.remove(key).catch(() => undefined);
      throw e;
    }
  } finally {
    try { ctx.md.leases.delete(lease.id); } catch { /* expired meanwhile */ }
  }
}

async function createScratchLayer(ctx: Ctx, cid: string, opts: CreateLayerOptions): Promise<ContainerLayer> {
  const key = `container-${cid}`;
  const lease = operationLease(ctx, `container ${cid}`, OPERATION_LEASE_TTL_MS);
  try {
    await ctx.snaps.prepare(key, undefined, { lease: lease.id, labels: { [CONTAINER_SNAPSHOT]: cid } });
    const labels: Record<string, string> = {};
    if (opts.name !== undefined) labels[CONTAINER_NAME] = opts.name;
    try {
      return toLayer(ctx.md.containers.create({ id: cid, image: '', snapshotter: ctx.snaps.name, snapshotKey: key, labels }));
    } catch (e) {
      await ctx.snaps.remove(key).catch(() => undefined);
      throw e;
    }
  } finally {
    try { ctx.md.leases.delete(lease.id); } catch { /* expired meanwhile */ }
  }
}

/** By id, name, or unique id prefix (docker's container lookup). */
export function findContainer(ctx: Ctx, idOrName: string): ContainerRecord {
  const all = ctx.md.containers.list();
  const exact = all.find((c) => c.id === idOrName) ?? all.find((c) => c.labels[CONTAINER_NAME] === idOrName.replace(/^\//, ''));
  if (exact) return exact;
  const byPrefix = idOrName.length >= 1 ? all.filter((c) => c.id.startsWith(idOrName)) : [];
  if (byPrefix.length === 1) return byPrefix[0]!;
  if (byPrefix.length > 1) throw new NotFoundError(`No such container: ${idOrName}: multiple IDs found with provided prefix`, { id: idOrName });
  throw new NotFoundError(`No such container: ${idOrName}`, { id: idOrName });
}

export async function getLayer(ctx: Ctx, idOrName: string): Promise<ContainerLayer> { return toLayer(findContainer(ctx, idOrName)); }
export async function listLayers(ctx: Ctx): Promise<ContainerLayer[]> {
  return ctx.md.containers.list().map(toLayer).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
}
export async function layerPath(ctx: Ctx, idOrName: string): Promise<string> { return ctx.snaps.layerDir(findContainer(ctx, idOrName).snapshotKey); }
export async function layerMounts(ctx: Ctx, idOrName: string): Promise<Mount[]> {
  return (await ctx.snaps.mounts(findContainer(ctx, idOrName).snapshotKey)).map((m) => ({ type: m.type, source: m.source, options: [...m.options] }));
}

/** Docker's `Changes`: what the writable layer adds, modifies or deletes (OCI whiteout files as deletions). */
export async function layerChangesOf(ctx: Ctx, idOrName: string): Promise<FilesystemChange[]> {
  const c = findContainer(ctx, idOrName);
  const layers = ctx.snaps.layers(c.snapshotKey);
  return toApiChanges(layerChanges(layers.slice(1), layers[0]!));
}

export async function layerSize(ctx: Ctx, idOrName: string): Promise<LayerSize> {
  const c = findContainer(ctx, idOrName);
  const rw = (await ctx.snaps.usage(c.snapshotKey)).size;
  let image = 0;
  const info = await ctx.snaps.stat(c.snapshotKey);
  let p = info.parent;
  while (p) {
    image += (await ctx.snaps.usage(p)).size;
    p = (await ctx.snaps.stat(p)).parent;
  }
  return { rw, rootfs: rw + image };
}

/** Removes the container record and its writable snapshot. */
export async function releaseLayer(ctx: Ctx, idOrName: string): Promise<void> {
  const c = findContainer(ctx, idOrName);
  ctx.md.containers.delete(c.id);
  try { await ctx.snaps.remove(c.snapshotKey); } catch (e) { if (!isStowageError(e, 'NotFound')) throw e; }
}
