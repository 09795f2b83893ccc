import { InvalidArgumentError, NotFoundError, isStowageError, stowageErrorOf } from '../errors/index.js';
import type { ImageRecord } from '../metadata/index.js';
import {
  familiarString, isAmbiguousDigestName, parseNormalizedNamed, referenceString, tagNameOnly, type Descriptor,
} from '../oci/index.js';
import type { Ctx } from './context.js';
import { emitImageEvent } from './events.js';
import { configLabels } from './image-info.js';
import { danglingName, parseUserReference } from './names.js';
import type { ProgressSink } from './progress.js';
import { resolveRecord } from './resolve.js';

/** Parses a tag target: normalized, `latest` default; digests and the name `sha256` refused. */
export function parseTagTarget(target: string): string {
  const ref = parseUserReference(target);
  if (ref.digest !== undefined) throw new InvalidArgumentError('refusing to create a tag with a digest reference', { reference: target });
  if (isAmbiguousDigestName(ref)) throw new InvalidArgumentError('refusing to create an ambiguous tag using digest algorithm as name', { reference: target });
  return referenceString(tagNameOnly(ref));
}

/**
 * Points `name` at `target` (C8D TagImage): creates or moves the record; a moved name leaves its old target
 * dangling when it was that target's last name; the new target's dangling record goes away.
 * Returns the previous target when the name moved.
 */
export function setName(ctx: Ctx, name: string, target: Descriptor, labels: Record<string, string> = {}, lease?: string): { moved?: Descriptor; created: boolean } {
  const images = ctx.md.images;
  let existing: ImageRecord | undefined;
  try { existing = images.get(name); } catch (e) { if (!isStowageError(e, 'NotFound')) throw e; }
  let moved: Descriptor | undefined;
  let created = false;
  if (existing === undefined) {
    try {
      images.create({ name, target, labels }, lease ? { lease } : {});
      created = true;
    } catch (e) {
      if (!isStowageError(e, 'AlreadyExists')) throw e;
      return setName(ctx, name, target, labels, lease);
    }
  } else if (existing.target.digest !== target.digest) {
    keepDanglingIfLast(ctx, existing, name);
    images.update({ name, target, labels });
    moved = existing.target;
  } else {
    // Same target: refresh updatedAt (LastTagTime) and the descriptor (annotations may have changed).
    images.update({ name, target, labels: { ...existing.labels, ...labels } });
  }
  removeDangling(ctx, target.digest);
  return { ...(moved ? { moved } : {}), created };
}

/** Before `except` stops naming `rec.target`, keep the target as a dangling record if nothing else names it. */
export function keepDanglingIfLast(ctx: Ctx, rec: ImageRecord, except: string): void {
  const others = ctx.md.images.list().filter((r) => r.target.digest === rec.target.digest && r.name !== except);
  if (others.length > 0) return;
  try {
    ctx.md.images.create({ name: danglingName(rec.target.digest), target: rec.target, labels: rec.labels });
  } catch (e) { if (!isStowageError(e, 'AlreadyExists')) throw e; }
}

export function removeDangling(ctx: Ctx, digest: string): void {
  try { ctx.md.images.delete(danglingName(digest as `${string}:${string}`)); } catch (e) { if (!isStowageError(e, 'NotFound')) throw e; }
}

/** `docker tag SOURCE TARGET`; `progress` is told `Tagged` with the new (familiar) name. */
export async function tagImage(ctx: Ctx, source: string, target: string, progress?: ProgressSink): Promise<void> {
  const name = parseTagTarget(target);
  let rec: ImageRecord;
  try {
    rec = resolveRecord(ctx, source).record;
  } catch (e) {
    const se = stowageErrorOf(e);
    if (se && se.code !== 'NotFound') throw new NotFoundError(se.message, se.data, { cause: e });
    throw e;
  }
  setName(ctx, name, rec.target, rec.labels);
  const cfgLabels = await configLabels(ctx, ctx.blobs(), rec.target);
  const familiar = familiarString(parseNormalizedNamed(name));
  emitImageEvent(ctx, 'tag', rec.target.digest, familiar, cfgLabels);
  progress?.message('Tagged', familiar);
}
