import { ConflictError, InvalidArgumentError, isStowageError } from '../errors/index.js';
import type { ContainerRecord, ImageRecord } from '../metadata/index.js';
import { familiarString, referenceString, repositoryName, tagNameOnly, type Digest } from '../oci/index.js';
import type { DeleteResponse } from './api-types.js';
import type { Ctx } from './context.js';
import { emitImageEvent } from './events.js';
import { configLabels, containersByImage } from './image-info.js';
import { danglingName, familiarOf, isDanglingRecord, parseRecordName, repositoryOf, shortId } from './names.js';
import { ProgressSink } from './progress.js';
import { bestManifest, matcherFor, resolveRecord, toPlatform } from './resolve.js';
import type { DeleteOptions } from './types.js';
import { setLabel } from './unpack.js';
import { CONTAINER_MANIFEST, GC_REF_CONTENT, PARENT_IMAGE } from '../content/index.js';

/** Is this record a digest-only name (`repo@sha256:…`, no tag)? */
function isDigestOnly(r: ImageRecord): boolean {
  if (isDanglingRecord(r)) return false;
  try { const ref = parseRecordName(r.name); return ref.digest !== undefined && ref.tag === undefined; } catch { return false; }
}
function tagOf(r: ImageRecord): string | undefined {
  try { return parseRecordName(r.name).tag; } catch { return undefined; }
}

/** Sends each item of a delete's answer as progress (`Untagged`/`Deleted`, id: the name or digest); returns the answer. */
function announced(progress: ProgressSink, items: DeleteResponse[]): DeleteResponse[] {
  for (const i of items) {
    if (i.Untagged !== undefined) progress.message('Untagged', i.Untagged);
    if (i.Deleted !== undefined) progress.message('Deleted', i.Deleted);
  }
  return items;
}

function deleteRecord(ctx: Ctx, r: ImageRecord): void {
  try { ctx.md.images.delete(r.name, { target: r.target.digest }); } catch (e) { if (!isStowageError(e, 'NotFound')) throw e; }
}

/** `docker rmi`, by the algorithm of docker's containerd image store. Records go first; a GC then frees what nothing references. */
export async function deleteImage(ctx: Ctx, input: string, opts: DeleteOptions = {}): Promise<DeleteResponse[]> {
  if (input.trim() === '') throw new InvalidArgumentError('image name cannot be blank');
  const progress = new ProgressSink(opts.onProgress);
  const force = opts.force ?? false;
  const prune = opts.pruneChildren ?? true;
  if (opts.platforms?.length && !force) {
    throw new InvalidArgumentError('deleting specific platforms requires force: content will be removed from all images referencing this variant; use --force');
  }
  const resolved = resolveRecord(ctx, input);
  const { record, ref, byId } = resolved;
  const digest = record.target.digest;
  const all = resolved.all;
  const labels = await configLabels(ctx, ctx.blobs(), record.target);
  const users = containersByImage(ctx).get(digest) ?? [];

  if (opts.platforms?.length) return deletePlatforms(ctx, record, opts.platforms, progress);

  const out: DeleteResponse[] = [];
  const untag = (r: ImageRecord) => {
    deleteRecord(ctx, r);
    if (isDanglingRecord(r)) return;
    const fam = familiarOf(r.name);
    out.push({ Untagged: fam });
    emitImageEvent(ctx, 'untag', digest, fam, labels);
  };

  if (!byId) {
    const repo = repositoryName(ref);
    const ofRepo = all.filter((r) => repositoryOf(r.name) === repo);
    let same: ImageRecord[];
    if (ref.digest !== undefined) {
      same = ofRepo.filter((r) => r.target.digest === ref.digest);
    } else {
      const name = referenceString(tagNameOnly(ref));
      const tag = tagNameOnly(ref).tag;
      same = ofRepo.filter((r) => r.name === name);
      const otherTags = ofRepo.filter((r) => !isDigestOnly(r) && tagOf(r) !== tag);
      if (otherTags.length === 0) same.push(...ofRepo.filter(isDigestOnly));
    }
    const remaining = all.filter((r) => !isDanglingRecord(r) && !same.includes(r));
    if (remaining.length > 0) {
      for (const r of same) untag(r);
      return announced(progress, out);
    }
    if (users.length > 0) {
      const familiar = familiarString(ref.digest ? ref : tagNameOnly(ref));
      if (!force) {
        throw new ConflictError(`conflict: unable to delete ${familiar} (must be forced) - container ${shortId(users[0]!.id)} is using its referenced image ${shortId(digest)}`,
          { reference: input, container: users[0]!.id, image: digest });
      }
      // Forced: the names go, the content stays as a dangling image for the container.
      try { ctx.md.images.create({ name: danglingName(digest), target: record.target, labels: record.labels }); } catch (e) { if (!isStowageError(e, 'AlreadyExists')) throw e; }
      for (const r of same) {
        deleteRecord(ctx, r);
        emitImageEvent(ctx, 'untag', digest, familiarOf(r.name), labels);
      }
      return announced(progress, [{ Untagged: familiar }]);
    }
  } else {
    const named = all.filter((r) => !isDanglingRecord(r));
    const repos = new Set(named.map((r) => repositoryOf(r.name)));
    const tags = named.filter((r) => !isDigestOnly(r));
    const oneRepo = repos.size <= 1 && tags.length <= 1;
    if (!force && !oneRepo) {
      throw new ConflictError(`conflict: unable to delete ${shortId(digest)} (must be forced) - image is referenced in multiple repositories`,
        { reference: input, image: digest });
    }
    if (!force && users.length > 0) {
      throw new ConflictError(`conflict: unable to delete ${shortId(digest)} (must be forced) - image is being used by stopped container ${shortId(users[0]!.id)}`,
        { reference: input, container: users[0]!.id, image: digest });
    }
  }

  // Full delete: every record of the target.
  const records = all.slice().sort((a, b) => Number(isDanglingRecord(a)) - Number(isDanglingRecord(b)) || a.name.localeCompare(b.name));
  for (const r of records) untag(r);
  emitImageEvent(ctx, 'delete', digest, digest, labels);
  out.push({ Deleted: digest });

  if (prune) {
    let parent = record.labels[PARENT_IMAGE] as Digest | undefined;
    while (parent) {
      const recs = ctx.md.images.list().filter((r) => r.target.digest === parent);
      if (recs.length !== 1 || !isDanglingRecord(recs[0]!)) break;
      if ((containersByImage(ctx).get(parent) ?? []).length > 0) break;
      const p = recs[0]!;
      deleteRecord(ctx, p);
      emitImageEvent(ctx, 'delete', parent, parent);
      out.push({ Deleted: parent });
      parent = p.labels[PARENT_IMAGE] as Digest | undefined;
    }
  }
  // The records are gone: say so before the collection, which may take a while.
  announced(progress, out);
  // As containerd's GC does right after a delete: free what nothing references any more.
  await ctx.gc().catch(() => undefined);
  return out;
}

/** Platform-specific delete: removes the chosen platform manifests' blobs; records stay. */
async function deletePlatforms(ctx: Ctx, record: ImageRecord, platforms: NonNullable<DeleteOptions['platforms']>, progress: ProgressSink): Promise<DeleteResponse[]> {
  const out: DeleteResponse[] = [];
  const blobs = ctx.blobs();
  const users = containersByImage(ctx).get(record.target.digest) ?? [];
  for (const spec of platforms) {
    const p = toPlatform(spec);
    const m = await bestManifest(ctx, blobs, record.target, matcherFor(ctx, p), false);
    if (!m) continue;
    if (users.some((c: ContainerRecord) => c.labels[CONTAINER_MANIFEST] === m.digest)) {
      throw new ConflictError(`conflict: unable to delete platform ${JSON.stringify(spec)} of ${shortId(record.target.digest)} - it is being used by a container`, { image: record.target.digest });
    }
    // Remove the platform manifest itself (what "Deleted" reports); its config, layers and snapshots are
    // left to GC, which keeps whatever another image still references.
    await ctx.content.delete(m.digest).catch((e: unknown) => { if (!isStowageError(e, 'NotFound')) throw e; });
    // The index no longer keeps it (check would otherwise report a missing child).
    try {
      const labels = (await ctx.content.info(record.target.digest)).labels;
      for (const [k, v] of Object.entries(labels)) if (v === m.digest && k.startsWith(GC_REF_CONTENT)) await setLabel(ctx.content, record.target.digest, k, '');
    } catch (e) { if (!isStowageError(e, 'NotFound')) throw e; }
    out.push({ Deleted: m.digest });
  }
  announced(progress, out);
  if (out.length) await ctx.gc().catch(() => undefined);
  return out;
}

