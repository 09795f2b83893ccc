import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  IMAGE_NAME_ANNOTATION, INDEX_FILE, MANIFEST_FILE, OCI_LAYOUT_FILE, OCI_LAYOUT_VERSION, REF_NAME_ANNOTATION,
  digestOfBlobPath, memberAt, parseDockerManifest, parseJson, readArchive,
  type ArchiveContents, type DockerManifestEntry, type MemberSink,
} from '../archive/index.js';
import { writeBlob } from '../content/index.js';
import {
  DigestMismatchError, InvalidArgumentError, NotFoundError, ResourceExhaustedError, SizeMismatchError, isStowageError, throwIfAborted,
} from '../errors/index.js';
import {
  MAX_CONFIG_SIZE, MediaType, configPlatform, digestOf, familiarString, formatPlatform, isIndexType, parseImageConfig,
  parseManifest, parseNormalizedNamed, referenceString, tagNameOnly,
  type Descriptor, type Digest, type Index, type Manifest, type Platform,
} from '../oci/index.js';
import { detectCompression } from '../snapshots/index.js';
import type { Ctx } from './context.js';
import { decompressAny } from './decompress.js';
import { emitImageEvent } from './events.js';
import type { BlobReader } from './manifest.js';
import { ProgressSink, progressId } from './progress.js';
import { configLabels } from './image-info.js';
import { labelChildren, recordImage } from './record.js';
import { bestManifest, matcherFor, toPlatform } from './resolve.js';
import { setName } from './tag.js';
import type { TrackedContent } from './tracked-content.js';
import type { LoadOptions, LoadResult } from './types.js';
import { unpackManifest } from './unpack.js';
import { OPERATION_LEASE_TTL_MS, operationLease } from './op-lease.js';


/** Stores each blob-like member in the content store as it streams by, verifying `blobs/<alg>/<hex>` names. */
function contentSink(content: TrackedContent, lease: string, progress: ProgressSink, quiet: boolean, signal?: AbortSignal): MemberSink {
  let n = 0;
  return async (p, body, size) => {
    const expected = digestOfBlobPath(p);
    const id = expected ? progressId(expected) : p.split('/')[0]!.slice(0, 12);
    let writer;
    try {
      writer = await content.writer({ ref: `load-${lease}-${n++}`, desc: { size, ...(expected ? { digest: expected } : {}) }, ...(signal ? { signal } : {}) });
    } catch (e) {
      if (!(isStowageError(e, 'AlreadyExists') && expected)) throw e;
      // Already in the store (and now held by the lease): still sniff the compression, skip the bytes.
      let head: Buffer | undefined;
      for await (const c of body) head ??= c as Buffer;
      return { digest: expected, size, compression: detectCompression(head ?? Buffer.alloc(0)) };
    }
    let compression: string | undefined;
    let done = 0;
    try {
      for await (const c of body) {
        throwIfAborted(signal);
        const chunk = c as Buffer;
        compression ??= detectCompression(chunk);
        await writer.write(chunk);
        done += chunk.length;
        if (!quiet && size > 1 << 20) progress.bytes('Loading layer', id, done, size);
      }
      const digest = writer.digest();
      try {
        await writer.commit(size, expected);
      } catch (e) {
        if (isStowageError(e, 'DigestMismatch')) {
          throw new DigestMismatchError(`invalid archive: ${p} holds ${digest}, not ${expected}`, { member: p, expected, actual: digest }, { cause: e });
        }
        if (!isStowageError(e, 'AlreadyExists')) throw e;
      }
      if (!quiet && size > 1 << 20) progress.bytes('Loading layer', id, size, size, true);
      return { digest, size, compression: compression ?? 'none' };
    } catch (e) {
      // Nothing will resume a load's ingest: drop it, or its expected digest would keep a blob alive.
      await writer.close().catch(() => undefined);
      await content.abort(writer.ref).catch(() => undefined);
      throw e;
    }
  };
}

/** What the archive says to load: index entries (an OCI layout's, or synthesized from manifest.json). */
async function entriesOf(content: TrackedContent, contents: ArchiveContents, blobs: BlobReader, signal?: AbortSignal): Promise<Descriptor[]> {
  const layout = contents.json.get(OCI_LAYOUT_FILE);
  if (layout) {
    const v = parseJson(layout, OCI_LAYOUT_FILE) as { imageLayoutVersion?: unknown } | null;
    if (v?.imageLayoutVersion !== OCI_LAYOUT_VERSION) throw new InvalidArgumentError(`unsupported OCI version ${String(v?.imageLayoutVersion)}`, { member: OCI_LAYOUT_FILE });
    const idx = contents.json.get(INDEX_FILE);
    if (!idx) throw new InvalidArgumentError('missing index.json in OCI layout', { member: INDEX_FILE });
    parseJson(idx, INDEX_FILE);
    const parsed = parseManifest(idx, MediaType.OciIndex);
    if (parsed.kind !== 'index') throw new InvalidArgumentError('invalid archive: index.json is not an image index', { member: INDEX_FILE });
    return parsed.index.manifests;
  }
  const mj = contents.json.get(MANIFEST_FILE);
  if (!mj) throw new InvalidArgumentError('unrecognized image format', { reason: 'no oci-layout nor manifest.json' });
  const out: Descriptor[] = [];
  for (const entry of parseDockerManifest(mj)) {
    throwIfAborted(signal);
    out.push(...await synthesize(content, contents, blobs, entry));
  }
  return out;
}

/** A docker-archive entry as a Docker schema2 manifest in the store, with an index entry per RepoTag. */
async function synthesize(content: TrackedContent, contents: ArchiveContents, blobs: BlobReader, entry: DockerManifestEntry): Promise<Descriptor[]> {
  const cfgMember = memberAt(contents, entry.Config, 'config');
  // Legacy archives name the config by its digest (`<hex>.json`): hold them to it.
  const named = /(?:^|\/)([a-f0-9]{64})\.json$/.exec(entry.Config);
  if (named && `sha256:${named[1]}` !== cfgMember.digest) {
    throw new DigestMismatchError(`invalid archive: config ${entry.Config} holds ${cfgMember.digest}`, { member: entry.Config, actual: cfgMember.digest });
  }
  if (cfgMember.size > MAX_CONFIG_SIZE) {
    throw new ResourceExhaustedError(`invalid archive: config ${entry.Config} is ${cfgMember.size} bytes, over the ${MAX_CONFIG_SIZE}-byte limit`, { member: entry.Config, size: cfgMember.size, limit: MAX_CONFIG_SIZE });
  }
  const config = parseImageConfig(await blobs.bytes(cfgMember, MAX_CONFIG_SIZE));
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== entry.Layers.length) throw new InvalidArgumentError('invalid manifest, layers length mismatch', { config: entry.Config });
  const layers: Descriptor[] = entry.Layers.map((p, i) => {
    const m = memberAt(contents, p, 'layer');
    const source = entry.LayerSources?.[diffIds[i]!];
    if (m.compression === 'none' && m.digest !== diffIds[i]) {
      throw new DigestMismatchError(`invalid archive: layer ${p} holds ${m.digest}, but the config says ${diffIds[i]}`, { member: p, expected: diffIds[i], actual: m.digest });
    }
    const mediaType = source?.digest === m.digest ? source.mediaType
      : m.compression === 'gzip' ? MediaType.DockerLayerGzip : m.compression === 'zstd' ? MediaType.OciLayerZstd : MediaType.DockerLayer;
    return { mediaType, digest: m.digest, size: m.size, ...(source?.urls ? { urls: source.urls } : {}) };
  });
  const manifest: Manifest = {
    schemaVersion: 2, mediaType: MediaType.DockerManifest,
    config: { mediaType: MediaType.DockerConfig, digest: cfgMember.digest, size: cfgMember.size }, layers,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const desc: Descriptor = { mediaType: MediaType.DockerManifest, digest: digestOf(bytes), size: bytes.length, platform: configPlatform(config) };
  await writeBlob(content, `load-manifest-${desc.digest}`, bytes, { digest: desc.digest, size: desc.size });
  content.record(desc.digest, desc.size);
  const tags = entry.RepoTags ?? [];
  if (tags.length === 0) return [desc];
  return tags.map((t) => {
    let name: string;
    try { name = referenceString(tagNameOnly(parseNormalizedNamed(t))); } catch (e) {
      throw new InvalidArgumentError(`invalid tag ${JSON.stringify(t)} in manifest.json`, { tag: t }, { cause: e });
    }
    return { ...desc, annotations: { [IMAGE_NAME_ANNOTATION]: name } };
  });
}

/** The full reference an index entry is named by, if any (containerd's name, else a valid ref.name). */
function entryName(d: Descriptor): string | undefined {
  const raw = d.annotations?.[IMAGE_NAME_ANNOTATION] ?? d.annotations?.[REF_NAME_ANNOTATION];
  if (!raw) return undefined;
  try {
    const ref = parseNormalizedNamed(raw);
    if (ref.digest !== undefined && ref.tag === undefined) return undefined;
    return referenceString(tagNameOnly(ref));
  } catch { return undefined; }
}

/** Checks one entry's graph: present manifests must have their config and layers, of the sizes they say. */
async function verifyAndLabel(content: TrackedContent, blobs: BlobReader, d: Descriptor, depth = 0): Promise<void> {
  const size = await blobs.sizeIfPresent(d.digest);
  if (size === undefined) throw new NotFoundError(`invalid archive: blob ${d.digest} (${d.mediaType}) is missing`, { digest: d.digest, reason: 'missing-blob' });
  if (size !== d.size) throw new SizeMismatchError(`invalid archive: blob ${d.digest} is ${size} bytes, the descriptor says ${d.size}`, { digest: d.digest, size, expected: d.size });
  if (!isIndexType(d.mediaType) && d.mediaType !== MediaType.OciManifest && d.mediaType !== MediaType.DockerManifest) return;
  const parsed = await blobs.manifest(d);
  if (parsed.kind === 'index') {
    if (depth > 4) throw new InvalidArgumentError(`invalid archive: indexes nested too deep at ${d.digest}`);
    const present: Descriptor[] = [];
    for (const c of parsed.index.manifests) {
      // An index may list platforms that were not exported (docker save --platform): those are skipped.
      if ((await blobs.sizeIfPresent(c.digest)) === undefined) continue;
      await verifyAndLabel(content, blobs, c, depth + 1);
      present.push(c);
    }
    await labelChildren(content, d, { ...parsed.index, manifests: present } as Index);
    return;
  }
  for (const c of [parsed.manifest.config, ...parsed.manifest.layers]) await verifyAndLabel(content, blobs, c, depth + 1);
  await labelChildren(content, d, parsed.manifest);
}

/**
 * `docker load` (as docker's containerd image store does it): every member is stored as it streams by (under a lease), the archive's
 * images are checked whole, the chosen platform is unpacked (so every diff ID is verified), and only then
 * are the names recorded. A bad archive fails with a typed error and leaves no record: GC reclaims what was written.
 */
export async function loadImages(ctx: Ctx, input: Readable, opts: LoadOptions = {}): Promise<LoadResult> {
  const progress = new ProgressSink(opts.onProgress);
  const platform: Platform | undefined = opts.platform !== undefined ? toPlatform(opts.platform) : undefined;
  const lease = operationLease(ctx, 'load', OPERATION_LEASE_TTL_MS);
  const content = ctx.content.withLease(lease.id);
  const signal = opts.signal;
  try {
    const { stream: plain } = await decompressAny(input);
    const contents = await readArchive(plain, contentSink(content, `${lease.id}-${randomBytes(4).toString('hex')}`, progress, opts.quiet ?? false, signal), signal ? { signal } : {});
    const blobs = ctx.blobs();
    const entries = await entriesOf(content, contents, blobs, signal);
    if (entries.length === 0) throw new InvalidArgumentError('invalid archive: it holds no image', { reason: 'empty' });
    for (const d of entries) await verifyAndLabel(content, blobs, d);

    // Unpack what will be used: the requested platform, else the host's best of each image.
    const matcher = matcherFor(ctx, platform);
    let matched = 0;
    const unpacked = new Set<Digest>();
    for (const d of entries) {
      throwIfAborted(signal);
      const m = await bestManifest(ctx, blobs, d, matcher, false);
      if (!m) continue;
      matched++;
      if (unpacked.has(m.digest) || !(await m.contentAvailable())) continue;
      unpacked.add(m.digest);
      await unpackManifest(ctx, m, { lease: lease.id, ...(signal ? { signal } : {}) });
    }
    if (platform && matched === 0) throw new NotFoundError(`requested platform(s) ([${formatPlatform(platform)}]) not found`, { platform });

    // Everything checked: now the names.
    const images: LoadResult['images'] = [];
    for (const d of entries) {
      const target: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.platform && !isIndexType(d.mediaType) ? { platform: d.platform } : {}) };
      const name = entryName(d);
      const labels = await configLabels(ctx, blobs, target);
      if (name) {
        setName(ctx, name, target);
        const familiar = familiarString(parseNormalizedNamed(name));
        images.push({ name: familiar, id: target.digest });
        progress.stream(`Loaded image: ${familiar}\n`);
        emitImageEvent(ctx, 'load', target.digest, target.digest, labels);
      } else {
        recordImage(ctx, target, undefined);
        images.push({ id: target.digest });
        progress.stream(`Loaded image ID: ${target.digest}\n`);
        emitImageEvent(ctx, 'load', target.digest, target.digest, labels);
      }
    }
    return { images };
  } finally {
    try { ctx.md.leases.delete(lease.id); } catch { /* expired */ }
  }
}
