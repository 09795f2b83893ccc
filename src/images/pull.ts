import { AbortedError, ForbiddenError, InvalidArgumentError, NotFoundError, SizeMismatchError, isStowageError, throwIfAborted } from '../errors/index.js';
import {
  familiarName, familiarString, isAttestation, requireMediaType, isIndexType, isLayerType, isUnknownPlatform,
  referenceString, selectPlatformManifests, tagNameOnly, onlyPlatform, hostPlatform, formatPlatform,
  type Descriptor, type Digest, type ImageConfig, type NamedReference, type Platform,
} from '../oci/index.js';
import { gcRefSnapshot, writeBlob } from '../content/index.js';
import {
  DEFAULT_CONCURRENCY, addSourceLabel, documentGcLabels, limitValue, walkGraph, type PulledManifest, type ReadDocument, type TransferLimit,
} from '../distribution/index.js';
import { applyPool, chainID } from '../snapshots/index.js';
import type { Ctx } from './context.js';
import { emitImageEvent } from './events.js';
import { ProgressSink, progressId } from './progress.js';
import type { RemoteFactory, RemoteRepository } from './remote.js';
import { LayerTee } from './tee.js';
import { toPlatform } from './resolve.js';
import { setName } from './tag.js';
import type { TrackedContent } from './tracked-content.js';
import type { PullOptions, PullResult } from './types.js';
import { setLabel, unpackLayer } from './unpack.js';
import { OPERATION_LEASE_TTL_MS, operationLease } from './op-lease.js';
import { parseUserReference } from './names.js';


/** Ingest refs are stable per digest so that a pull interrupted anywhere resumes where it stopped. */
export function ingestRef(kind: 'index' | 'manifest' | 'config' | 'layer', digest: Digest): string { return `${kind}-${digest}`; }

function parsePullRef(input: string): NamedReference {
  const ref = parseUserReference(input.replace(/:$/, ''));
  if (ref.domain === 'docker.io' && ref.path === 'library/scratch') throw new ForbiddenError("'scratch' is a reserved name", { reference: input });
  return ref;
}

/**
 * The platform an index entry claims must be the one its config describes (os and architecture; the
 * variant is left out, configs often omit it): else the store would keep, say, arm64 layers under an
 * amd64 name. docker checks the config's os against the requested one; this extends that to the index.
 */
function checkIndexPlatform(entry: Descriptor, config: ImageConfig): void {
  const p = entry.platform;
  if (!p || isUnknownPlatform(p)) return;
  if (p.os !== config.os || p.architecture !== config.architecture) {
    throw new InvalidArgumentError(`manifest ${entry.digest}: the index lists it as ${formatPlatform(p)} but its config says ${formatPlatform(config)}`,
      { digest: entry.digest, indexPlatform: p, configPlatform: { os: config.os, architecture: config.architecture } });
  }
}

/** A small document (index, manifest, config) from the store when present, else fetched into it; `fetched` says which. */
async function fetchDocument(ctx: Ctx, content: TrackedContent, remote: RemoteRepository, desc: Descriptor, kind: 'index' | 'manifest' | 'config', signal?: AbortSignal): Promise<{ bytes: Buffer; fetched: boolean }> {
  const blobs = ctx.blobs();
  if (await blobs.has(desc.digest)) {
    const bytes = await blobs.bytes(desc, Math.max(desc.size, 1));
    // The registry path checks the size on the wire; a local copy is held to the descriptor too.
    if (bytes.length !== desc.size) throw new SizeMismatchError(`${desc.digest}: the descriptor says ${desc.size} bytes, the stored blob has ${bytes.length}`, { digest: desc.digest, size: bytes.length, expected: desc.size });
    content.record(desc.digest, desc.size);
    return { bytes, fetched: false };
  }
  const bytes = await remote.fetchBytes(desc, signal);
  try {
    await writeBlob(content, ingestRef(kind, desc.digest), bytes, { digest: desc.digest, size: desc.size }, signal ? { signal } : {});
  } catch (e) {
    if (!isStowageError(e, 'AlreadyExists')) throw e;
    content.record(desc.digest, desc.size);
  }
  return { bytes, fetched: true };
}

/** docker's pseudo image (spec §0.5): an attestation, `unknown/unknown`, or layers none of which is a filesystem layer. */
function isPseudo(p: PulledManifest): boolean {
  const d = p.descriptor;
  return isAttestation(d) || isUnknownPlatform(d.platform) || (p.manifest.layers.length > 0 && !p.manifest.layers.some((l) => isLayerType(l.mediaType)));
}

export interface PullDeps { remote: RemoteFactory; /** Layers downloaded at once (default 3); a live limit may change during the pull. */ concurrency?: number | TransferLimit }

/** `docker pull` (spec §1.8, C8D): one platform (default host) or all; unpacked by chain ID as layers arrive. */
export async function pullImage(ctx: Ctx, input: string, opts: PullOptions, deps: PullDeps): Promise<PullResult> {
  const ref0 = parsePullRef(input);
  if (opts.allTags && ref0.tag === undefined && ref0.digest === undefined) {
    const remote = await deps.remote(ref0, remoteOpts(opts));
    const tags = await remote.listTags(opts.signal);
    let last: PullResult | undefined;
    for (const tag of tags) last = await pullOne(ctx, { ...ref0, tag }, opts, deps, remote, true);
    if (!last) throw new NotFoundError(`no tags found for ${familiarName(ref0)}`, { reference: input });
    return last;
  }
  return pullOne(ctx, tagNameOnly(ref0), opts, deps);
}

function remoteOpts(opts: PullOptions) {
  return { ...(opts.credentials ? { credentials: opts.credentials } : {}), ...(opts.insecure ? { insecure: true } : {}) };
}

async function pullOne(ctx: Ctx, ref: NamedReference, opts: PullOptions, deps: PullDeps, remote0?: RemoteRepository, bareName = false): Promise<PullResult> {
  const signal = opts.signal;
  const progress = new ProgressSink(opts.onProgress);
  const canonical = referenceString(ref.digest ? { domain: ref.domain, path: ref.path, digest: ref.digest } : ref);
  const familiar = familiarString(ref.digest ? { domain: ref.domain, path: ref.path, digest: ref.digest } : ref);
  const platform: Platform | undefined = opts.platform !== undefined ? toPlatform(opts.platform) : undefined;

  const remote = remote0 ?? await deps.remote(ref, remoteOpts(opts));
  throwIfAborted(signal);
  const target = await remote.resolve(ref, signal).catch(async (e: unknown) => { throw await pullError(e, ref, remote, signal); });
  let previous: Digest | undefined;
  try { previous = ctx.md.images.get(canonical).target.digest; } catch { /* new name */ }
  // A new image under this name: its layers are likely to be unpacked. A thread takes ~50-100 ms to
  // start here, which the next round trips hide; pullLayers starts the rest once it knows how many.
  if (target.digest !== previous) applyPool()?.prestart(1);
  // docker: id = the tag, or the whole reference for a digest pull; this line has no progressDetail.
  progress.message(`Pulling from ${ref.path}`, ref.digest ? canonical : ref.tag!);

  // A pull of the same image that died part-way is adopted: nothing it fetched is fetched again.
  const lease = operationLease(ctx, `pull ${canonical}`, OPERATION_LEASE_TTL_MS);
  const content = ctx.content.withLease(lease.id);
  let downloaded = 0;
  try {
    // The graph walk (distribution's): documents come from the store when present, else from the registry.
    const read: ReadDocument = async (desc, kind) => {
      const d = await fetchDocument(ctx, content, remote, desc, kind, signal);
      if (d.fetched) downloaded++;
      return d.bytes;
    };
    const walk = await walkGraph(read, target, {
      ...(signal ? { signal } : {}),
      select: (index, desc) => {
        if (desc.digest !== target.digest) throw new InvalidArgumentError(`${desc.digest}: nested indexes are not supported`);
        if (opts.all) return index.manifests.filter((d) => !isIndexType(d.mediaType));
        const want = platform ?? hostPlatform();
        const chosen = selectPlatformManifests(index.manifests, onlyPlatform(want), 1);
        if (chosen.length === 0) {
          throw new NotFoundError(`no matching manifest for ${formatPlatform(want)} in the manifest list entries`, { reference: canonical, platform: want });
        }
        return chosen;
      },
      // Nothing is fetched for a config this store cannot read (docker: "unsupported media type").
      checkManifest: (desc, manifest) => requireMediaType(manifest.config.mediaType, ['config'], `config of manifest ${desc.digest}`),
      checkImage: ({ descriptor: md, manifest, config }) => {
        checkIndexPlatform(md, config);
        if (platform && !opts.all && md.digest === target.digest) {
          // A single-manifest image must still be what was asked for.
          if (!onlyPlatform(platform).match({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) })) {
            throw new NotFoundError(`image with reference ${familiar} was found but does not match the specified platform: wanted ${formatPlatform(platform)}, actual: ${formatPlatform(config)}`, { reference: canonical });
          }
        }
        if (config.rootfs.diff_ids.length !== manifest.layers.length) {
          throw new InvalidArgumentError(`manifest ${md.digest} has ${manifest.layers.length} layers but its config lists ${config.rootfs.diff_ids.length} diff ids`);
        }
      },
    });
    // GC labels: an index keeps its pulled children (filtered-out platforms are never fetched nor kept, and
    // children kept by an earlier pull of another platform keep theirs); a manifest its config and layers.
    for (const doc of walk.documents) {
      const labels = documentGcLabels(doc, (await content.info(doc.desc.digest)).labels);
      for (const [k, v] of Object.entries(labels)) await setLabel(ctx.content, doc.desc.digest, k, v);
    }
    const pulls = walk.images;

    for (const p of pulls) {
      // Pseudo images (BuildKit attestations with in-toto JSON "layers") are kept, never unpacked.
      downloaded += isPseudo(p)
        ? await fetchBlobsOnly(content, remote, p, signal)
        : await pullLayers(ctx, content, remote, p, lease.id, progress, signal, deps.concurrency ?? DEFAULT_CONCURRENCY);
    }

    // Where every blob came from (cross-repository mounts on push).
    const all = new Set<Digest>(walk.documents.map((d) => d.desc.digest));
    for (const p of pulls) { all.add(p.manifest.config.digest); for (const l of p.manifest.layers) all.add(l.digest); }
    for (const d of all) await addSourceLabel(content, ref, d);

    // The record: the name moves to the new target; the old target is kept dangling if nothing else names it.
    const { moved, created } = setName(ctx, canonical, target);
    const upToDate = !created && !moved && previous === target.digest && downloaded === 0;
    progress.status(`Digest: ${target.digest}`);
    const statusName = bareName ? familiarName(ref) : familiar;
    progress.status(upToDate ? `Status: Image is up to date for ${statusName}` : `Status: Downloaded newer image for ${statusName}`);
    const labels = pulls[0]?.config.config?.Labels ?? {};
    emitImageEvent(ctx, 'pull', familiar, familiarName(ref), labels ?? {});
    return { ref: canonical, id: target.digest, target, updated: !upToDate };
  } finally {
    try { ctx.md.leases.delete(lease.id); } catch { /* expired or gone */ }
  }
}

/** Fetches the missing blobs of a pseudo image into the store (no snapshots); returns how many it fetched. */
async function fetchBlobsOnly(content: TrackedContent, remote: RemoteRepository, p: PulledManifest, signal: AbortSignal | undefined): Promise<number> {
  let fetched = 0;
  const seen = new Set<string>();
  for (const l of p.manifest.layers) {
    if (seen.has(l.digest)) continue;
    seen.add(l.digest);
    const present = await content.info(l.digest).then(() => true, (e: unknown) => { if (isStowageError(e, 'NotFound')) return false; throw e; });
    if (present) { content.record(l.digest, l.size); continue; }
    await remote.fetchBlob(l, content, ingestRef('layer', l.digest), signal ? { signal } : {});
    fetched++;
  }
  return fetched;
}

/**
 * Downloads the missing layers of one platform concurrently and unpacks them as they arrive: several
 * layers are applied at once, each into a directory of its own, and each becomes a snapshot once its
 * parent is one. Returns the number of blobs downloaded.
 *
 * Progress: each layer id (12 hex of the blob digest) ends with exactly one terminal line. 'Already
 * exists' is only for a layer whose snapshot was there before the pull started (nothing to fetch or
 * unpack); every other layer shows 'Pulling fs layer', then 'Downloading' (from the offset of a partial
 * ingest a previous pull left) and 'Download complete' (at once when the blob was already fetched),
 * 'Extracting', and 'Pull complete'. A blob that appears twice in the manifest is fetched and reported once.
 */
async function pullLayers(ctx: Ctx, content: TrackedContent, remote: RemoteRepository, p: PulledManifest, lease: string, progress: ProgressSink, signal: AbortSignal | undefined, concurrency: number | TransferLimit): Promise<number> {
  const layers = p.manifest.layers;
  const diffIds = p.config.rootfs.diff_ids;
  const blobs = ctx.blobs();
  const chains: Digest[] = [];
  for (const d of diffIds) chains.push(chainID(chains[chains.length - 1], d));
  // The state before anything is fetched; present snapshots make the blob optional (as a discarded-layers store).
  const blobPresent: boolean[] = [];
  const snapPresent: boolean[] = [];
  for (let i = 0; i < layers.length; i++) {
    blobPresent[i] = await blobs.has(layers[i]!.digest);
    snapPresent[i] = await ctx.sizes.exists(chains[i]!);
  }
  const first = layers.map((l) => layers.findIndex((x) => x.digest === l.digest));
  const last = layers.map((l) => layers.findLastIndex((x) => x.digest === l.digest));
  // Per blob (its first occurrence): fetched, and fully present (every occurrence unpacked) beforehand.
  const toFetch = layers.map((_, i) => first[i] === i && layers.some((_x, j) => first[j] === i && !blobPresent[j] && !snapPresent[j]));
  const existed = layers.map((_, i) => layers.every((_x, j) => first[j] !== first[i] || snapPresent[j]));
  const show = existed.some((e) => !e);
  if (show) {
    for (let i = 0; i < layers.length; i++) {
      if (first[i] === i) progress.status(existed[i] ? 'Already exists' : 'Pulling fs layer', progressId(layers[i]!.digest));
    }
  }
  for (let i = 0; i < layers.length; i++) if (blobPresent[i]) content.record(layers[i]!.digest, layers[i]!.size);
  if (!show && layers.length > 0) {
    const top = chains[chains.length - 1]!;
    ctx.md.leases.addResource(lease, { type: `snapshots/${ctx.snaps.name}`, id: top });
    await setLabel(ctx.content, p.manifest.config.digest, gcRefSnapshot(ctx.snaps.name), top);
    return 0;
  }

  // The unpacks' threads start while the first bytes are on their way.
  applyPool()?.prestart(existed.filter((e) => !e).length);

  // Downloads: a small pool over the needed blobs, in manifest order; each blob has a gate that opens
  // when it is committed, for an unpack that could not read it while it downloaded.
  const ctrl = new AbortController();
  const onAbort = () => ctrl.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const sig = ctrl.signal;
  let downloaded = 0;
  const gates = layers.map(() => deferred());
  // An abort releases whoever waits on a gate that will never open.
  sig.addEventListener('abort', () => { for (const g of gates) g.reject(new AbortedError('pull aborted')); }, { once: true });
  const queue: number[] = [];
  for (let i = 0; i < layers.length; i++) {
    if (first[i] !== i) continue;
    if (toFetch[i]) queue.push(i);
    else {
      // Fetched by an earlier pull (also one that was interrupted before unpacking it).
      if (!existed[i]) progress.status('Download complete', progressId(layers[i]!.digest));
      gates[i]!.resolve();
    }
  }
  let running = 0;
  // Per blob: its download has started (with a tee to read it from as it arrives) or it is present.
  const begun = layers.map(() => deferred());
  for (let i = 0; i < layers.length; i++) if (first[i] === i && !toFetch[i]) begun[i]!.resolve();
  // After an abort no download starts: whoever waits goes on to its gate, which has failed.
  sig.addEventListener('abort', () => { for (const b of begun) b.resolve(); }, { once: true });
  const tees = new Map<number, LayerTee>();
  const startNext = (): void => {
    while (running < limitValue(concurrency) && queue.length > 0 && !sig.aborted) {
      const i = queue.shift()!;
      const l = layers[i]!;
      const id = progressId(l.digest);
      running++;
      // Unpacked while it downloads when its unpack has started by then (see LayerTee: never a stall).
      const tee = new LayerTee(content);
      tees.set(i, tee);
      begun[i]!.resolve();
      remote.fetchBlob(l, tee.ingester(content), ingestRef('layer', l.digest), {
        signal: sig,
        onProgress: (cur, total) => progress.bytes('Downloading', id, cur, total || l.size),
        onRangeIgnored: () => progress.message('Registry ignored the Range request: downloading again from the start', id),
      }).then(() => {
        downloaded++;
        tee.noWriter();
        progress.status('Download complete', id);
        gates[i]!.resolve();
      }, (e: unknown) => {
        tee.fail(e instanceof Error ? e : new Error(String(e)));
        if (isStowageError(e, 'AlreadyExists')) {
          content.record(l.digest, l.size);
          progress.status('Download complete', id);
          gates[i]!.resolve();
        } else gates[i]!.reject(e);
      }).finally(() => { running--; startNext(); });
    }
  };

  /** Layer i: from its tee while it downloads, else from the committed blob; its snapshot after its parent's. */
  const unpackAt = async (i: number, parentReady: Promise<unknown> | undefined): Promise<void> => {
    const l = layers[i]!;
    const id = progressId(l.digest);
    const parent = i > 0 ? chains[i - 1] : undefined;
    const input = {
      ...(parent ? { parent } : {}), layer: l, diffId: diffIds[i]!, lease, signal: sig,
      ...(parentReady ? { parentReady } : {}),
      onProgress: (cur: number, total: number) => progress.bytes('Extracting', id, cur, total),
    };
    await begun[first[i]!]!.promise;
    const tee = first[i] === i ? tees.get(i) : undefined;
    tees.delete(i);
    if (tee) {
      const followed = await unpackLayer(ctx, { ...input, source: () => tee.source() }).then(() => true, (e: unknown) => {
        if (sig.aborted) throw e;
        return false;
      }).finally(() => tee.detach());
      if (followed) return;
    }
    await gates[first[i]!]!.promise;
    throwIfAborted(sig);
    if (await ctx.sizes.exists(chains[i]!)) {
      ctx.md.leases.addResource(lease, { type: `snapshots/${ctx.snaps.name}`, id: chains[i]! });
      return;
    }
    progress.bytes('Extracting', id, 0, l.size, true);
    await unpackLayer(ctx, input);
  };

  if (signal?.aborted) ctrl.abort(signal.reason);
  // A raised limit starts waiting layers at once; a lowered one lets the running downloads finish.
  const unsubscribe = typeof concurrency === 'number' ? undefined : concurrency.onChange(startNext);
  startNext();
  // Unpacks start in manifest order, twice as many at once as downloads: each running download's layer
  // is unpacked as it arrives (it follows its ingest, see LayerTee), and as many more from blobs already
  // committed, so no core waits while a download runs. A layer's parent has always started before it,
  // so one waiting for its parent never holds the place the parent needs.
  const unpacks: Promise<void>[] = [];
  let unpacking = 0;
  let slotFreed: (() => void) | undefined;
  let failure: { error: unknown } | undefined;
  try {
    for (let i = 0; i < layers.length; i++) {
      while (unpacking >= 2 * Math.max(1, limitValue(concurrency)) && !failure) await new Promise<void>((r) => { slotFreed = r; });
      if (failure) break;
      throwIfAborted(signal);
      unpacking++;
      const done = unpackAt(i, unpacks[i - 1]);
      unpacks.push(done);
      done.then(() => {
        if (last[i] === i && !existed[i]) progress.status('Pull complete', progressId(layers[i]!.digest));
      }, (e: unknown) => {
        failure ??= { error: e };
        ctrl.abort(e);
      }).finally(() => { unpacking--; slotFreed?.(); slotFreed = undefined; });
    }
    await Promise.allSettled(unpacks);
    if (failure) throw failure.error;
    throwIfAborted(signal);
    const top = chains[chains.length - 1];
    if (top) await setLabel(ctx.content, p.manifest.config.digest, gcRefSnapshot(ctx.snaps.name), top);
  } catch (e) {
    ctrl.abort(e);
    queue.length = 0;
    while (running > 0) await new Promise((r) => setTimeout(r, 10));
    await Promise.allSettled(unpacks);
    for (const tee of tees.values()) tee.detach();
    throw e;
  } finally {
    unsubscribe?.();
    signal?.removeEventListener('abort', onAbort);
  }
  return downloaded;
}

/** A promise with its settle functions; a rejection nobody awaits yet is not an unhandled one. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** docker's wording for a repository or tag the registry does not give us. */
async function pullError(e: unknown, ref: NamedReference, remote: RemoteRepository, signal?: AbortSignal): Promise<unknown> {
  if (isStowageError(e, 'NotFound') || isStowageError(e, 'Unauthorized') || isStowageError(e, 'Forbidden')) {
    const repo = familiarName(ref);
    let manifestUnknown = isStowageError(e, 'NotFound') && /manifest/i.test(e.message) && !/repository|name unknown/i.test(e.message);
    // A manifest HEAD answers a missing tag and a missing repository with the same bare 404: a repository
    // whose tag list can be read exists, so only the tag (or digest) is missing.
    if (!manifestUnknown && isStowageError(e, 'NotFound')) manifestUnknown = await remote.listTags(signal).then(() => true, () => false);
    if (manifestUnknown) {
      const what = ref.digest ? `${repo}@${ref.digest}` : `${repo}:${ref.tag ?? 'latest'}`;
      return new NotFoundError(`manifest for ${what} not found: manifest unknown: manifest unknown`, { reference: referenceString(ref) }, { cause: e });
    }
    return new NotFoundError(`pull access denied for ${repo}, repository does not exist or may require 'docker login'`, { reference: referenceString(ref) }, { cause: e });
  }
  return e;
}
