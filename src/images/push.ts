import path from 'node:path';
import type { TransferLimit } from '../distribution/index.js';
import { ConflictError, InvalidArgumentError, NotFoundError, isStowageError, stowageErrorOf, throwIfAborted } from '../errors/index.js';
import type { ImageRecord } from '../metadata/index.js';
import {
  familiarName, familiarString, isIndexType, isLayerType, isManifestOrIndexType, onlyPlatform, parseNormalizedNamed,
  referenceString, repositoryName, type Descriptor, type NamedReference,
} from '../oci/index.js';
import { mountSource } from '../distribution/index.js';
import type { Ctx } from './context.js';
import { emitImageEvent } from './events.js';
import { configLabels } from './image-info.js';
import { platformManifests, type PlatformManifestImpl } from './manifest.js';
import { isDanglingRecord, parseRecordName } from './names.js';
import { ProgressSink, progressId } from './progress.js';
import type { RemoteFactory } from './remote.js';
import { bestManifest, matcherFor, toPlatform } from './resolve.js';
import type { PushOptions, PushResult } from './types.js';

/** What to push for one record: the whole index, or one platform manifest of it. */
async function pushRoot(ctx: Ctx, rec: ImageRecord, opts: PushOptions, progress: ProgressSink, tag: string): Promise<{ root: Descriptor; children?: Set<string> }> {
  const blobs = ctx.blobs();
  if (opts.platform !== undefined) {
    const p = toPlatform(opts.platform);
    const m = await bestManifest(ctx, blobs, rec.target, matcherFor(ctx, p), false);
    if (!m || !(await m.contentAvailable())) {
      throw new NotFoundError(`image ${familiarString(parseRecordName(rec.name))} does not provide the specified platform (${[p.os, p.architecture, p.variant].filter(Boolean).join('/')})`, { name: rec.name });
    }
    return { root: strip(m.descriptor) };
  }
  if (!isIndexType(rec.target.mediaType)) {
    const [m] = await platformManifests(rec.target, blobs, ctx.sizes);
    if (!m || !(await m.contentAvailable())) throw new NotFoundError(`content missing for ${rec.target.digest}`, { name: rec.name, aux: 'ContentMissing' });
    return { root: rec.target };
  }
  const all = await platformManifests(rec.target, blobs, ctx.sizes);
  const available: PlatformManifestImpl[] = [];
  const missing: PlatformManifestImpl[] = [];
  for (const m of all) ((await m.contentAvailable()) ? available : missing).push(m);
  const images = [];
  for (const m of available) if (!(await m.isPseudoImage())) images.push(m);
  const realMissing = [];
  for (const m of missing) if (!m.isAttestation()) realMissing.push(m);
  if (realMissing.length === 0) {
    // Whole index; attestations that were never pulled are left out of the walk.
    return { root: rec.target, children: new Set(available.map((m) => m.digest)) };
  }
  let chosen: PlatformManifestImpl | undefined;
  if (images.length === 1) chosen = images[0];
  else if (images.length > 1) {
    const host = onlyPlatform(ctx.host);
    for (const m of images) if (host.match(await m.platform())) { chosen = m; break; }
    if (!chosen) throw new ConflictError('multiple matching manifests found but no specific platform requested', { name: rec.name });
  }
  if (!chosen) throw new NotFoundError(`content missing for ${rec.target.digest}: no platform of the image is present`, { name: rec.name, aux: 'ContentMissing' });
  progress.aux({ ManifestPushedInsteadOfIndex: true, OriginalIndex: rec.target, ManifestPushed: strip(chosen.descriptor), Tag: tag });
  return { root: strip(chosen.descriptor) };
}

function strip(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.annotations ? { annotations: d.annotations } : {}) };
}

/** `docker push` (as docker's containerd image store does it): one tag or every tag of a repository; whole index or one platform. */
export async function pushImage(ctx: Ctx, input: string, opts: PushOptions, deps: { remote: RemoteFactory; concurrency?: TransferLimit }): Promise<PushResult[]> {
  let ref: NamedReference;
  try {
    ref = parseNormalizedNamed(input);
  } catch (e) {
    if (isStowageError(e)) throw new InvalidArgumentError(e.message, stowageErrorOf(e)!.data, { cause: e });
    throw e;
  }
  if (ref.digest !== undefined) throw new InvalidArgumentError('cannot push a digest reference', { reference: input });
  const progress = new ProgressSink(opts.onProgress);
  const repoName = repositoryName(ref);
  progress.status(`The push refers to repository [${repoName}]`);

  let records: ImageRecord[];
  if (ref.tag !== undefined) {
    try { records = [ctx.md.images.get(referenceString(ref))]; } catch (e) {
      if (isStowageError(e, 'NotFound')) throw new NotFoundError(`tag does not exist: ${familiarString(ref)}`, { reference: input });
      throw e;
    }
  } else {
    records = ctx.md.images.list().filter((r) => {
      if (isDanglingRecord(r)) return false;
      try { const n = parseRecordName(r.name); return repositoryName(n) === repoName && n.tag !== undefined && n.digest === undefined; } catch { return false; }
    }).sort((a, b) => a.name.localeCompare(b.name));
    if (records.length === 0) throw new NotFoundError(`An image does not exist locally with the tag: ${familiarName(ref)}`, { reference: input });
  }

  const remote = await deps.remote(ref, { push: true, ...(opts.credentials ? { credentials: opts.credentials } : {}), ...(opts.insecure ? { insecure: true } : {}) });
  const results: PushResult[] = [];
  for (const rec of records) {
    throwIfAborted(opts.signal);
    const tag = parseRecordName(rec.name).tag!;
    const { root, children } = await pushRoot(ctx, rec, opts, progress, tag);
    const announced = new Set<string>();
    const labelCache = new Map<string, Record<string, string>>();
    await remote.push(tag, ctx.content, root, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      uploadStateDir: path.join(ctx.root, 'uploads'),
      ...(deps.concurrency ? { concurrency: deps.concurrency } : {}),
      labelsOf: async (d) => {
        let labels: Record<string, string> = {};
        try { labels = (await ctx.content.info(d.digest)).labels; } catch { /* not present: nothing to mount from */ }
        labelCache.set(d.digest, labels);
        return labels;
      },
      ...(children ? { filterChildren: (d: Descriptor) => children.has(d.digest) || !isManifestOrIndexType(d.mediaType) } : {}),
      onBlob: (d, phase, current) => {
        const id = progressId(d.digest);
        const layer = isLayerType(d.mediaType);
        if (!announced.has(id)) { announced.add(id); if (phase === 'uploading') progress.status('Waiting', id); }
        if (phase === 'uploading') progress.bytes('Pushing', id, current, d.size);
        else if (phase === 'done') progress.status('Pushed', id);
        else if (phase === 'exists') progress.status(layer ? 'Layer already exists' : 'Already exists', id);
        else if (phase === 'mounted') {
          const from = mountSource(labelCache.get(d.digest) ?? {}, { domain: ref.domain, path: ref.path });
          progress.status(from ? `Mounted from ${from}` : 'Mounted', id);
        }
      },
    });
    progress.status(`${tag}: digest: ${root.digest} size: ${root.size}`);
    progress.aux({ Tag: tag, Digest: root.digest, Size: root.size });
    const named = familiarString({ domain: ref.domain, path: ref.path, tag });
    emitImageEvent(ctx, 'push', named, familiarName(ref), await configLabels(ctx, ctx.blobs(), rec.target));
    results.push({ ref: referenceString({ domain: ref.domain, path: ref.path, tag }), digest: root.digest, size: root.size });
  }
  return results;
}
