import type { ContainerRecord, ImageRecord } from '../metadata/index.js';
import type { Digest } from '../oci/index.js';
import type { Ctx } from './context.js';
import type { BlobReader } from './manifest.js';
import { platformManifests } from './manifest.js';
import { bestManifest, matcherFor } from './resolve.js';
import { CONTAINER_IMAGE_ID } from '../content/index.js';


/** The image config labels of the best platform (docker's event attributes and label filters). */
export async function configLabels(ctx: Ctx, blobs: BlobReader, target: ImageRecord['target']): Promise<Record<string, string>> {
  try {
    const m = await bestManifest(ctx, blobs, target, matcherFor(ctx, undefined));
    const labels = m ? (await m.readConfig()).config?.Labels : undefined;
    return labels ? { ...labels } : {};
  } catch { return {}; }
}

/** Working containers grouped by the image ID they were created from. */
export function containersByImage(ctx: Ctx): Map<Digest, ContainerRecord[]> {
  const out = new Map<Digest, ContainerRecord[]>();
  for (const c of ctx.md.containers.list()) {
    const id = c.labels[CONTAINER_IMAGE_ID] as Digest | undefined;
    if (!id) continue;
    const list = out.get(id) ?? [];
    list.push(c);
    out.set(id, list);
  }
  return out;
}

/** The blobs and unpacked layers of a target that are present, each once, and their total. */
export async function imageUsage(ctx: Ctx, blobs: BlobReader, target: ImageRecord['target']): Promise<{ blobs: Map<Digest, number>; snaps: Map<Digest, number>; size: number }> {
  const b = await presentBlobs(ctx, blobs, target);
  const s = await presentSnapshots(ctx, blobs, target);
  let size = 0;
  for (const n of b.values()) size += n;
  for (const n of s.values()) size += n;
  return { blobs: b, snaps: s, size };
}

/** Present content + unpacked bytes of every platform, shared blobs and layers counted once (docker's summary Size). */
export async function totalImageSize(ctx: Ctx, blobs: BlobReader, target: ImageRecord['target']): Promise<number> {
  return (await imageUsage(ctx, blobs, target)).size;
}

/** Every blob digest a target reaches that is present (index, manifests, configs, layers), with sizes. */
export async function presentBlobs(ctx: Ctx, blobs: BlobReader, target: ImageRecord['target']): Promise<Map<Digest, number>> {
  const out = new Map<Digest, number>();
  const add = async (d: Digest) => {
    const s = await blobs.sizeIfPresent(d);
    if (s !== undefined) out.set(d, s);
    return s !== undefined;
  };
  await add(target.digest);
  for (const m of await platformManifests(target, blobs, ctx.sizes)) {
    if (!(await add(m.digest))) continue;
    const doc = await m.manifestDoc().catch(() => undefined);
    if (!doc) continue;
    for (const d of [doc.config, ...doc.layers]) await add(d.digest);
  }
  return out;
}

/** Unpacked snapshots (chain IDs) a target reaches, with their own sizes. */
export async function presentSnapshots(ctx: Ctx, blobs: BlobReader, target: ImageRecord['target']): Promise<Map<Digest, number>> {
  const out = new Map<Digest, number>();
  for (const m of await platformManifests(target, blobs, ctx.sizes)) {
    if (!(await m.present())) continue;
    let ids: Digest[];
    try { ids = await m.chainIds(); } catch { continue; }
    for (const id of ids) {
      if (out.has(id)) continue;
      if (await ctx.sizes.exists(id)) out.set(id, await ctx.sizes.usage(id));
    }
  }
  return out;
}
