import type { ImageRecord } from '../metadata/index.js';
import { throwIfAborted } from '../errors/index.js';
import { parseAnyReference, referenceString, tagNameOnly, type Digest } from '../oci/index.js';
import type { DeleteResponse, PruneReport } from './api-types.js';
import type { Ctx } from './context.js';
import { emitImageEvent } from './events.js';
import { FilterArgs, parseUntil } from './filters.js';
import { configLabels, containersByImage, presentBlobs, presentSnapshots } from './image-info.js';
import { platformManifests } from './manifest.js';
import { familiarOf, isDanglingRecord } from './names.js';
import { ProgressSink } from './progress.js';
import { PruneLock } from './prune-lock.js';
import type { PruneOptions } from './types.js';

export const PRUNE_FILTERS = ['dangling', 'label', 'label!', 'until'] as const;

/** `docker image prune [-a]` (as docker's containerd image store does it): delete records, collect garbage, report what went. */
export async function pruneImages(ctx: Ctx, opts: PruneOptions = {}): Promise<PruneReport> {
  const f = new FilterArgs(opts.filters).validate(PRUNE_FILTERS);
  const danglingOnly = f.bool('dangling') ?? true;
  const untils = f.get('until').map((u) => parseUntil(u));
  const progress = new ProgressSink(opts.onProgress);
  const lock = PruneLock.acquire(ctx.root);
  try {
    throwIfAborted(opts.signal);
    const records = ctx.md.images.list();
    const blobs = ctx.blobs();
    let candidates: ImageRecord[] = [];
    for (const r of records) {
      if (danglingOnly && !isDanglingRecord(r)) continue;
      if (untils.some((u) => !(r.createdAt.getTime() < u))) continue;
      if (f.has('label') || f.has('label!')) {
        const labels = await configLabels(ctx, blobs, r.target);
        if (!f.labelsMatch(labels, 'label') || !f.labelsMatch(labels, 'label!')) continue;
      }
      candidates.push(r);
    }
    candidates = protectUsed(ctx, records, candidates);
    if (candidates.length === 0) return { ImagesDeleted: null, SpaceReclaimed: 0 };

    // What could disappear: blobs and snapshots of the candidates' targets, measured before.
    const beforeBlobs = new Map<Digest, number>();
    const beforeSnaps = new Map<Digest, number>();
    const manifestDigests = new Set<Digest>();
    for (const r of candidates) {
      for (const [d, n] of await presentBlobs(ctx, blobs, r.target)) beforeBlobs.set(d, n);
      for (const [d, n] of await presentSnapshots(ctx, blobs, r.target)) beforeSnaps.set(d, n);
      manifestDigests.add(r.target.digest);
      for (const m of await platformManifests(r.target, blobs, ctx.sizes)) manifestDigests.add(m.digest);
    }

    const deleted: DeleteResponse[] = [];
    const removedTargets = new Map<Digest, Record<string, string>>();
    for (const r of candidates) {
      const labels = await configLabels(ctx, blobs, r.target);
      try { ctx.md.images.delete(r.name, { target: r.target.digest }); } catch { continue; }
      const name = isDanglingRecord(r) ? r.target.digest : familiarOf(r.name);
      deleted.push({ Untagged: name });
      progress.message('Untagged', name);
      emitImageEvent(ctx, 'untag', r.target.digest, name, labels);
      removedTargets.set(r.target.digest, labels);
    }

    progress.status('Collecting garbage');
    await ctx.gc({ signal: opts.signal });
    blobs.invalidate();
    let reclaimed = 0;
    for (const [d, n] of beforeBlobs) {
      if (await blobs.has(d)) continue;
      reclaimed += n;
      if (manifestDigests.has(d)) { deleted.push({ Deleted: d }); progress.message('Deleted', d); }
    }
    for (const [id, n] of beforeSnaps) if (!(await ctx.sizes.exists(id))) reclaimed += n;
    for (const [digest, labels] of removedTargets) {
      if (!(await blobs.has(digest))) emitImageEvent(ctx, 'delete', digest, digest, labels);
    }
    return { ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
  } finally {
    lock.release();
  }
}

/**
 * Removes from the candidates what working containers need: the dangling record of their image, the exact
 * name they were created from, and at least one record of every digest in use.
 */
function protectUsed(ctx: Ctx, records: ImageRecord[], candidates: ImageRecord[]): ImageRecord[] {
  const used = containersByImage(ctx);
  if (used.size === 0) return candidates;
  const keep = new Set<string>();
  for (const [digest, containers] of used) {
    for (const c of containers) {
      keep.add(`dangling@${digest}`);
      try {
        const ref = parseAnyReference(c.image);
        if (ref.path !== '') {
          keep.add(referenceString(tagNameOnly(ref)));
          if (ref.tag !== undefined && ref.digest !== undefined) keep.add(referenceString({ domain: ref.domain, path: ref.path, tag: ref.tag }));
        }
      } catch { /* an ID */ }
    }
    const ofDigest = records.filter((r) => r.target.digest === digest).map((r) => r.name).sort();
    const surviving = ofDigest.filter((n) => keep.has(n) || !candidates.some((c) => c.name === n));
    if (surviving.length === 0 && ofDigest.length > 0) keep.add(ofDigest[ofDigest.length - 1]!);
  }
  return candidates.filter((c) => !keep.has(c.name));
}
