import { Readable } from 'node:stream';
import { DigestMismatchError, InvalidArgumentError, NotFoundError, isStowageError, throwIfAborted, stowageErrorOf } from '../errors/index.js';
import { GC_REF_CONFIG, gcRefLayer, gcRefManifest, LEASE_PURPOSE, writeBlob } from '../content/index.js';
import {
  MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, digestOf, isIndexType, parseImageConfig, parseManifest, familiarString, parseNormalizedNamed,
  type Descriptor, type Digest,
} from '../oci/index.js';
import type { Ctx } from './context.js';
import { emitImageEvent } from './events.js';
import { danglingName } from './names.js';
import { ProgressSink, progressId } from './progress.js';
import { bestManifest, matcherFor, resolveRecord, toPlatform } from './resolve.js';
import { parseTagTarget, setName } from './tag.js';
import type { TrackedContent } from './tracked-content.js';
import type { AddImageOptions, AddImageResult, ImageSource, ImageSourceOptions } from './types.js';
import { setLabel } from './unpack.js';
import { OPERATION_LEASE_TTL_MS } from './op-lease.js';


async function readSmall(source: ImageSource, desc: Descriptor, cap: number, signal?: AbortSignal): Promise<Buffer> {
  if (desc.size > cap) throw new InvalidArgumentError(`${desc.digest}: ${desc.size} bytes is too large for a manifest or config`, { digest: desc.digest });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of await source.open(desc, signal)) {
    size += (c as Uint8Array).length;
    if (size > desc.size) break;
    chunks.push(Buffer.from(c as Uint8Array));
  }
  const bytes = Buffer.concat(chunks);
  // Checked before the document is believed: a forged manifest never decides what else gets copied.
  const actual = digestOf(bytes);
  if (actual !== desc.digest || size !== desc.size) {
    throw new DigestMismatchError(`${desc.digest}: the source gave ${size} bytes hashing to ${actual}`, { digest: desc.digest, actual });
  }
  return bytes;
}

/** Copies one blob unless present; the content store verifies size and digest before it becomes visible. */
async function copyBlob(content: TrackedContent, source: ImageSource, desc: Descriptor, bytes: Buffer | undefined, progress: ProgressSink, signal?: AbortSignal): Promise<void> {
  const id = progressId(desc.digest);
  let copied = 0;
  const body: Readable | Buffer = bytes ?? Readable.from((async function* () {
    for await (const c of await source.open(desc, signal)) {
      copied += (c as Uint8Array).length;
      progress.bytes('Loading layer', id, copied, desc.size);
      yield c as Uint8Array;
    }
  })());
  try {
    await writeBlob(content, `add-${desc.digest}`, body, { digest: desc.digest, size: desc.size }, signal ? { signal } : {});
  } catch (e) {
    if (!isStowageError(e, 'AlreadyExists')) throw e;
  }
  // A blob already present is recorded under the lease by the writer; one written is recorded at commit.
  content.record(desc.digest, desc.size);
}

/** Copies a manifest and everything it names, labelling it so that GC keeps the children. */
async function addManifest(ctx: Ctx, content: TrackedContent, source: ImageSource, desc: Descriptor, progress: ProgressSink, signal?: AbortSignal): Promise<Record<string, string>> {
  const bytes = await readSmall(source, desc, MAX_MANIFEST_SIZE, signal);
  const parsed = parseManifest(bytes, desc.mediaType);
  if (parsed.kind !== 'manifest') throw new InvalidArgumentError(`${desc.digest}: nested indexes are not supported`, { digest: desc.digest });
  const m = parsed.manifest;
  const configBytes = await readSmall(source, m.config, MAX_CONFIG_SIZE, signal);
  const config = parseImageConfig(configBytes);
  if (config.rootfs.diff_ids.length !== m.layers.length) {
    throw new InvalidArgumentError(`manifest ${desc.digest} has ${m.layers.length} layers but its config lists ${config.rootfs.diff_ids.length} diff ids`, { digest: desc.digest });
  }
  for (const layer of m.layers) {
    throwIfAborted(signal);
    await copyBlob(content, source, layer, undefined, progress, signal);
    progress.status('Loading layer complete', progressId(layer.digest));
  }
  await copyBlob(content, source, m.config, configBytes, progress, signal);
  await copyBlob(content, source, desc, bytes, progress, signal);
  await setLabel(ctx.content, desc.digest, GC_REF_CONFIG, m.config.digest);
  for (let i = 0; i < m.layers.length; i++) await setLabel(ctx.content, desc.digest, gcRefLayer(i), m.layers[i]!.digest);
  return config.config?.Labels ?? {};
}

/**
 * Copies an image (an index with its manifests, or one manifest) from any source into the store and names
 * it. Every blob is verified on the way in; the copy runs under a lease, so a GC in another process never
 * takes half of it. Without `ref` the image is kept as a dangling (untagged) image.
 */
export async function addImage(ctx: Ctx, source: ImageSource, opts: AddImageOptions = {}): Promise<AddImageResult> {
  const { signal } = opts;
  const name = opts.ref !== undefined ? parseTagTarget(opts.ref) : undefined;
  const progress = new ProgressSink(opts.onProgress);
  const target = source.target;
  const lease = ctx.md.leases.create({ expiresInMs: OPERATION_LEASE_TTL_MS, labels: { [LEASE_PURPOSE]: `add ${name ?? target.digest}` } });
  const content = ctx.content.withLease(lease.id);
  try {
    let labels: Record<string, string> = {};
    if (isIndexType(target.mediaType)) {
      const bytes = await readSmall(source, target, MAX_MANIFEST_SIZE, signal);
      const parsed = parseManifest(bytes, target.mediaType);
      if (parsed.kind !== 'index') throw new InvalidArgumentError(`${target.digest}: not an index`, { digest: target.digest });
      // A source may hold only some platforms of an index (a store that pulled one): those are copied,
      // as a pull of those platforms would; a platform whose manifest the source has must be complete.
      const copied: Descriptor[] = [];
      for (const child of parsed.index.manifests) {
        if (isIndexType(child.mediaType)) throw new InvalidArgumentError(`${child.digest}: nested indexes are not supported`, { digest: child.digest });
        try {
          labels = { ...(await addManifest(ctx, content, source, child, progress, signal)), ...labels };
        } catch (e) {
          if (isStowageError(e, 'NotFound') && stowageErrorOf(e)!.data.digest === child.digest) continue;
          throw e;
        }
        copied.push(child);
      }
      if (copied.length === 0) throw new NotFoundError(`index ${target.digest}: the source holds none of its manifests`, { digest: target.digest });
      await copyBlob(content, source, target, bytes, progress, signal);
      for (let i = 0; i < copied.length; i++) {
        await setLabel(ctx.content, target.digest, gcRefManifest(i), copied[i]!.digest);
      }
    } else {
      labels = await addManifest(ctx, content, source, target, progress, signal);
    }
    throwIfAborted(signal);
    const recordTarget: Descriptor = { mediaType: target.mediaType, digest: target.digest, size: target.size, ...(target.annotations ? { annotations: target.annotations } : {}) };
    if (name !== undefined) setName(ctx, name, recordTarget);
    else {
      try { ctx.md.images.create({ name: danglingName(target.digest), target: recordTarget, labels: {} }); } catch (e) { if (!isStowageError(e, 'AlreadyExists')) throw e; }
    }
    const shown = name !== undefined ? familiarString(parseNormalizedNamed(name)) : target.digest;
    emitImageEvent(ctx, 'load', target.digest, shown, labels);
    progress.stream(name !== undefined ? `Loaded image: ${shown}\n` : `Loaded image ID: ${target.digest}\n`);
    return { id: target.digest, target: recordTarget, ...(name !== undefined ? { ref: name } : {}) };
  } finally {
    try { ctx.md.leases.delete(lease.id); } catch { /* expired or gone */ }
  }
}

/**
 * An image of the store as a source: its target (or, with `platform`, only that platform's manifest) and
 * its blobs read from the content store. What `addImage` of another store and the image builder read from.
 */
export async function storeImageSource(ctx: Ctx, refOrID: string, opts: ImageSourceOptions = {}): Promise<ImageSource> {
  const { record } = resolveRecord(ctx, refOrID);
  let target: Descriptor = record.target;
  if (opts.platform !== undefined) {
    const platform = toPlatform(opts.platform);
    const m = await bestManifest(ctx, ctx.blobs(), record.target, matcherFor(ctx, platform), false);
    if (!m) throw new NotFoundError(`image ${refOrID} has no manifest for the requested platform`, { reference: refOrID });
    target = m.descriptor;
  }
  const content = ctx.content;
  return {
    target,
    async open(desc: Descriptor): Promise<Readable> {
      const r = await content.readerAt({ digest: desc.digest as Digest });
      // The reader's handle is closed when the stream ends, fails or is dropped by the caller.
      return Readable.from((async function* () {
        try { yield* r.stream(); } finally { await r.close(); }
      })(), { objectMode: false });
    },
  };
}
