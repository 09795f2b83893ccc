import { Transform, finished, type Readable, type Writable } from 'node:stream';
import {
  IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION, blobPath, writeArchive,
  type ArchiveBlob, type DockerManifestEntry, type Repositories,
} from '../archive/index.js';
import { InvalidArgumentError, NotFoundError, isStowageError, stowageErrorOf } from '../errors/index.js';
import {
  MediaType, anyPlatformRankedBy, onlyStrictPlatform, familiarName, isLayerType, familiarString, isIndexType, parseAnyReference, parseNormalizedNamed,
  repositoryName, type Descriptor, type Digest, type Index, type Platform, type PlatformMatcher, type Reference,
} from '../oci/index.js';
import type { Ctx } from './context.js';
import { emitImageEvent } from './events.js';
import { platformManifests, type BlobReader, type PlatformManifestImpl } from './manifest.js';
import { idPrefixOf, isDanglingRecord, repositoryOf } from './names.js';
import { ProgressSink, progressId } from './progress.js';
import { bestManifest, matcherFor, noSuchImage, resolveRecord, toPlatform } from './resolve.js';
import type { SaveOptions } from './types.js';
import { OPERATION_LEASE_TTL_MS, operationLease } from './op-lease.js';

/** One image to export: the descriptor written to index.json and the canonical names it goes under. */
interface Export {
  target: Descriptor;
  /** Image ID for the `save` event (the record's target, also when only one platform manifest is written). */
  id: Digest;
  names: string[];
}

const NON_DISTRIBUTABLE = new Set<string>([
  MediaType.OciLayerNondistributable, MediaType.OciLayerNondistributableGzip, MediaType.DockerLayerForeignGzip,
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

function parseName(input: string): Reference {
  try { return parseAnyReference(input); } catch (e) {
    if (isStowageError(e)) throw new InvalidArgumentError(e.message, { ...stowageErrorOf(e)!.data, reference: input }, { cause: e });
    throw e;
  }
}

/**
 * Docker's name resolution for save (its containerd image store's): an ID, ID prefix or digest reference exports the
 * image without names; a tag-less repository name exports every tag of that repository; `repo:tag`
 * exports that name. Every name is resolved here, before anything is written.
 */
function resolveExports(ctx: Ctx, refs: readonly string[]): Export[] {
  const byTarget = new Map<Digest, Export>();
  const add = (target: Descriptor, name?: string) => {
    let e = byTarget.get(target.digest);
    if (!e) { e = { target, id: target.digest, names: [] }; byTarget.set(target.digest, e); }
    if (name !== undefined && !e.names.includes(name)) e.names.push(name);
  };
  for (const input of refs) {
    const ref = parseName(input);
    if (ref.path !== '' && ref.tag === undefined && ref.digest === undefined) {
      const repo = repositoryName(ref);
      const tagged = ctx.md.images.list().filter((r) => !isDanglingRecord(r) && repositoryOf(r.name) === repo && !r.name.includes('@'));
      if (tagged.length > 0) { for (const r of tagged) add(r.target, r.name); continue; }
      if (idPrefixOf(input) === undefined) throw noSuchImage(input);
    }
    const { record, byId } = resolveRecord(ctx, input);
    if (byId || ref.digest !== undefined || isDanglingRecord(record)) add(record.target);
    else add(record.target, record.name);
  }
  return [...byTarget.values()];
}

/** The blobs one export writes and the manifests manifest.json describes. */
interface Walk {
  blobs: Descriptor[];
  /** Platform manifests complete enough for a docker-archive entry (config and every layer present). */
  complete: PlatformManifestImpl[];
}

async function present(blobs: BlobReader, d: Descriptor): Promise<boolean> {
  const size = await blobs.sizeIfPresent(d.digest);
  return size !== undefined;
}

/** Every present blob under `target` whose platform `matcher` accepts (absent children are skipped, as docker's). */
async function walkTarget(ctx: Ctx, blobs: BlobReader, target: Descriptor, matcher: PlatformMatcher | undefined): Promise<Walk> {
  const out: Walk = { blobs: [], complete: [] };
  if (!(await present(blobs, target))) throw new NotFoundError(`content ${target.digest}: not found`, { digest: target.digest });
  if (isIndexType(target.mediaType)) out.blobs.push(target);
  for (const m of await platformManifests(target, blobs, ctx.sizes)) {
    if (!(await m.present())) continue;
    if (matcher && !m.isAttestation()) {
      let p: Platform;
      try { p = await m.platform(); } catch { continue; }
      if (!matcher.match(p)) continue;
    }
    out.blobs.push(m.descriptor);
    const doc = await m.manifestDoc();
    let all = true;
    for (const d of [doc.config, ...doc.layers]) {
      if (await present(blobs, d)) out.blobs.push(d);
      else all = false;
    }
    if (all && !(await m.isPseudoImage())) out.complete.push(m);
  }
  return out;
}

/** `docker save`: one dual archive (OCI layout + docker-archive) of the named images. */
export async function saveImages(ctx: Ctx, refs: string[], output: Writable, opts: SaveOptions = {}): Promise<void> {
  if (refs.length === 0) throw new InvalidArgumentError('no image names given to save');
  const platforms = (opts.platform === undefined ? [] : Array.isArray(opts.platform) ? opts.platform : [opts.platform]).map(toPlatform);
  const exports = resolveExports(ctx, refs);
  const blobs = ctx.blobs();

  const blobList: Descriptor[] = [];
  const indexEntries: Descriptor[] = [];
  const manifestJson = new Map<Digest, DockerManifestEntry>();
  const repositories: Repositories = {};
  for (const ex of exports) {
    let target = ex.target;
    let walk: Walk;
    if (platforms.length === 1) {
      // Only that platform's manifest, best present (strict), written as the entry itself.
      const m = await bestManifest(ctx, blobs, ex.target, matcherFor(ctx, platforms[0]), false);
      if (!m || !(await m.contentAvailable())) throw new NotFoundError('no suitable export target found', { reference: ex.names[0] ?? ex.id, platform: platforms[0] });
      target = m.descriptor;
      walk = await walkTarget(ctx, blobs, target, undefined);
    } else {
      const matcher = platforms.length > 1 ? anyOf(platforms) : undefined;
      walk = await walkTarget(ctx, blobs, target, matcher);
    }
    ex.target = target;
    blobList.push(...walk.blobs);
    // The docker-archive side: one entry per manifest, the host-preferred platform of an index.
    let chosen: PlatformManifestImpl | undefined;
    if (walk.complete.length === 1) chosen = walk.complete[0];
    else if (walk.complete.length > 1) {
      const best = await bestManifest(ctx, blobs, target, matcherFor(ctx, undefined), false);
      chosen = walk.complete.find((m) => m.digest === best?.digest) ?? walk.complete[0];
    }
    const tags = ex.names.map((n) => parseNormalizedNamed(n)).filter((r) => r.tag !== undefined);
    if (chosen) {
      const doc = await chosen.manifestDoc();
      const config = await chosen.readConfig();
      let entry = manifestJson.get(chosen.digest);
      if (!entry) {
        entry = { Config: blobPath(doc.config.digest), RepoTags: [], Layers: doc.layers.map((l) => blobPath(l.digest)) };
        const foreign = doc.layers.map((l, i) => [config.rootfs.diff_ids[i], l] as const).filter(([, l]) => NON_DISTRIBUTABLE.has(l.mediaType) || (l.urls?.length ?? 0) > 0);
        if (foreign.length > 0) entry.LayerSources = Object.fromEntries(foreign.filter(([d]) => d !== undefined).map(([d, l]) => [d!, l]));
        manifestJson.set(chosen.digest, entry);
      }
      for (const r of tags) {
        const familiar = familiarString(r);
        if (!entry.RepoTags!.includes(familiar)) entry.RepoTags!.push(familiar);
        const last = doc.layers[doc.layers.length - 1];
        if (last) (repositories[familiarName(r)] ??= {})[r.tag!] = last.digest.slice(last.digest.indexOf(':') + 1);
      }
    }
    // The OCI side: one index.json entry per (image, name); unnamed exports carry no name annotations.
    if (tags.length === 0) indexEntries.push(target);
    for (const r of tags) {
      indexEntries.push({
        ...target,
        annotations: { ...(target.annotations ?? {}), [IMAGE_NAME_ANNOTATION]: `${r.domain}/${r.path}:${r.tag!}`, [REF_NAME_ANNOTATION]: r.tag! },
      });
    }
  }

  const progress = new ProgressSink(opts.onProgress);
  // A lease holds every blob until the archive is written, whatever a GC elsewhere does meanwhile.
  const lease = operationLease(ctx, `save ${refs.join(' ')}`, OPERATION_LEASE_TTL_MS);
  try {
    const seen = new Set<Digest>();
    const archiveBlobs: ArchiveBlob[] = [];
    for (const d of blobList) {
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      ctx.md.leases.addResource(lease.id, { type: 'content', id: d.digest });
      const size = await blobs.sizeIfPresent(d.digest);
      if (size === undefined) throw new NotFoundError(`content ${d.digest}: not found`, { digest: d.digest });
      archiveBlobs.push({ descriptor: { digest: d.digest, size }, open: async () => reporting(await openBlob(ctx, d.digest), d.digest, size, progress) });
    }
    // Small documents first: a reader learns the images before the layers stream by.
    const layers = new Set(blobList.filter((b) => isLayerType(b.mediaType)).map((b) => b.digest));
    const rank = (d: Pick<Descriptor, 'digest'>) => (layers.has(d.digest) ? 1 : 0);
    archiveBlobs.sort((a, b) => rank(a.descriptor) - rank(b.descriptor));
    const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: indexEntries };
    await writeArchive({ blobs: archiveBlobs, index, manifest: [...manifestJson.values()], repositories }, output, opts.signal ? { signal: opts.signal } : {});
  } finally {
    try { ctx.md.leases.delete(lease.id); } catch { /* expired */ }
  }
  for (const ex of exports) emitImageEvent(ctx, 'save', ex.id, ex.id);
}

function anyOf(platforms: readonly Platform[]): PlatformMatcher {
  const ms = platforms.map((p) => onlyStrictPlatform(p));
  const ranked = anyPlatformRankedBy(platforms[0]);
  return { match: (p) => ms.some((m) => m.match(p)), rank: (p) => ranked.rank(p) };
}

/** 'Saving' {current,total} per blob as its bytes go into the archive, then 'Saved'. */
function reporting(src: Readable, digest: Digest, size: number, progress: ProgressSink): Readable {
  const id = progressId(digest);
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) { n += chunk.length; progress.bytes('Saving', id, n, size); cb(null, chunk); },
    flush(cb) { progress.status('Saved', id); cb(); },
  });
  src.on('error', (e) => t.destroy(e));
  return src.pipe(t);
}

async function openBlob(ctx: Ctx, digest: Digest): Promise<Readable> {
  const r = await ctx.content.readerAt({ digest });
  const s = r.stream();
  // The reader's stream does not close its file handle: release it once the bytes are through (or failed).
  finished(s, () => { r.close().catch(() => undefined); });
  return s;
}
