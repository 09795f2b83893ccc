import type { ImageRecord } from '../metadata/index.js';
import { familiarName, familiarString, parseNormalizedNamed, referenceString, type Digest } from '../oci/index.js';
import type { ImageManifestSummary, ImageSummary } from './api-types.js';
import type { Ctx } from './context.js';
import { FilterArgs, globToRegExp, parseUntil } from './filters.js';
import { containersByImage, imageUsage } from './image-info.js';
import type { BlobReader, PlatformManifestImpl } from './manifest.js';
import { platformManifests } from './manifest.js';
import { familiarOf, isDanglingRecord, repoDigestOf } from './names.js';
import { bestManifest, matcherFor, resolveRecord } from './resolve.js';
import type { ListOptions } from './types.js';
import { CONTAINER_MANIFEST, PARENT_IMAGE } from '../content/index.js';

export const LIST_FILTERS = ['before', 'dangling', 'label', 'label!', 'reference', 'since', 'until'] as const;

const unixSeconds = (created: string | undefined): number => {
  if (!created) return 0;
  const t = Date.parse(created);
  return Number.isNaN(t) ? 0 : Math.floor(t / 1000);
};

/** The four forms docker matches a reference glob against. */
function nameForms(name: string): string[] {
  const ref = parseNormalizedNamed(name);
  const forms = [familiarName(ref), referenceString({ domain: ref.domain, path: ref.path })];
  if (ref.tag !== undefined || ref.digest !== undefined) forms.push(familiarString(ref), referenceString(ref));
  return forms;
}

export async function createdOf(ctx: Ctx, blobs: BlobReader, target: ImageRecord['target']): Promise<number> {
  const m = await bestManifest(ctx, blobs, target, matcherFor(ctx, undefined));
  if (!m) return 0;
  return unixSeconds((await m.readConfig()).created);
}

/** One `Manifests[]` entry. */
export async function manifestSummary(ctx: Ctx, m: PlatformManifestImpl, containers: string[]): Promise<ImageManifestSummary> {
  const present = await m.present();
  const available = present && await m.contentAvailable();
  const content = present ? await m.presentContentSize() : 0;
  const unpacked = present ? await m.snapshotUsage() : 0;
  let kind: ImageManifestSummary['Kind'] = 'unknown';
  if (m.isAttestation()) kind = 'attestation';
  else if (present && !(await m.isPseudoImage())) kind = 'image';
  else if (!present && m.descriptor.platform && m.descriptor.platform.os !== 'unknown') kind = 'image';
  const out: ImageManifestSummary = {
    ID: m.digest,
    Descriptor: m.descriptor,
    Available: available,
    Size: { Total: content + unpacked, Content: content },
    Kind: kind,
  };
  if (kind === 'image') {
    let platform = m.descriptor.platform;
    if (!platform && present) platform = await m.platform().catch(() => undefined);
    out.ImageData = { Platform: platform ?? { os: '', architecture: '' }, Containers: containers, Size: { Unpacked: unpacked } };
  } else if (kind === 'attestation') {
    out.AttestationData = { For: m.attestationFor() ?? '' };
  }
  return out;
}

/** `docker images`: one summary per image ID, as docker's containerd image store lists them. */
export async function listImages(ctx: Ctx, opts: ListOptions = {}): Promise<ImageSummary[]> {
  const f = new FilterArgs(opts.filters).validate(LIST_FILTERS);
  const dangling = f.bool('dangling');
  const untils = f.get('until').map((u) => parseUntil(u));
  const patterns = f.get('reference').map(globToRegExp);
  const blobs = ctx.blobs();

  let beforeTime: number | undefined;
  for (const b of f.get('before')) {
    const t = await createdOf(ctx, blobs, resolveRecord(ctx, b).record.target);
    beforeTime = beforeTime === undefined ? t : Math.min(beforeTime, t);
  }
  let sinceTime: number | undefined;
  for (const s of f.get('since')) {
    const t = await createdOf(ctx, blobs, resolveRecord(ctx, s).record.target);
    sinceTime = sinceTime === undefined ? t : Math.max(sinceTime, t);
  }

  const records = ctx.md.images.list();
  // Builder parents (hidden intermediates when !all).
  const parents = new Set(records.map((r) => r.labels[PARENT_IMAGE]).filter((p): p is string => !!p));
  const groups = new Map<Digest, ImageRecord[]>();
  for (const r of records) {
    if (dangling !== undefined && isDanglingRecord(r) !== dangling) continue;
    if (untils.some((u) => !(r.createdAt.getTime() < u))) continue;
    if (!opts.all && isDanglingRecord(r) && parents.has(r.target.digest)) continue;
    const g = groups.get(r.target.digest) ?? [];
    g.push(r);
    groups.set(r.target.digest, g);
  }
  const users = containersByImage(ctx);
  const out: ImageSummary[] = [];
  const sharedBook = opts.sharedSize ? new Map<Digest, { blobs: Map<Digest, number>; snaps: Map<Digest, number> }>() : undefined;

  const summarize = async (digest: Digest, group: ImageRecord[]): Promise<void> => {
    let named = group.filter((r) => !isDanglingRecord(r));
    if (patterns.length) {
      // docker filters the records themselves: names that do not match give neither RepoTags nor the
      // RepoDigests entry (which is derived from the chosen record), and untagged images never match.
      named = named.filter((r) => { try { return nameForms(r.name).some((form) => patterns.some((p) => p.test(form))); } catch { return false; } });
      if (named.length === 0) return;
    }
    // A dangling record only stands for the image when no named record exists.
    const chosen = named[0] ?? group[0]!;
    const tags = named.map((r) => r.name);
    const target = chosen.target;
    const manifests = await platformManifests(target, blobs, ctx.sizes);
    const best = await bestManifest(ctx, blobs, target, matcherFor(ctx, undefined));
    const config = best ? await best.readConfig().catch(() => undefined) : undefined;
    const labels = config?.config?.Labels ?? {};
    if (!(await labelFilterMatches(f, manifests, labels))) return;
    const created = unixSeconds(config?.created);
    if (beforeTime !== undefined && !(created < beforeTime)) return;
    if (sinceTime !== undefined && !(created > sinceTime)) return;

    const containers = users.get(digest) ?? [];
    const manifestSummaries: ImageManifestSummary[] = [];
    if (opts.manifests) {
      for (const m of manifests) {
        manifestSummaries.push(await manifestSummary(ctx, m, containers.filter((c) => !c.labels[CONTAINER_MANIFEST] || c.labels[CONTAINER_MANIFEST] === m.digest).map((c) => c.id)));
      }
    }
    // Each blob and each unpacked layer counts once, however many platforms share it: the image's Size
    // is then what removing it alone could free, and /system/df's total is never below the sum.
    const usage = await imageUsage(ctx, blobs, target);
    const summary: ImageSummary = {
      Id: digest,
      ParentId: chosen.labels[PARENT_IMAGE] ?? '',
      RepoTags: tags.map(familiarOf),
      RepoDigests: [],
      Created: created,
      Size: usage.size,
      SharedSize: -1,
      Labels: { ...labels },
      Containers: containers.length,
      Descriptor: target,
    };
    const rd = named.length ? repoDigestOf(chosen.name, digest) : undefined;
    if (rd) summary.RepoDigests.push(rd);
    if (!best) summary.Created = 0; // no platform present locally
    if (opts.manifests) summary.Manifests = manifestSummaries;
    out.push(summary);
    if (sharedBook) sharedBook.set(digest, usage);
  };
  await mapLimit([...groups], 16, ([d, g]) => summarize(d, g));

  if (sharedBook) {
    const blobUse = new Map<Digest, number>();
    const snapUse = new Map<Digest, number>();
    for (const { blobs: b, snaps: s } of sharedBook.values()) {
      for (const d of b.keys()) blobUse.set(d, (blobUse.get(d) ?? 0) + 1);
      for (const d of s.keys()) snapUse.set(d, (snapUse.get(d) ?? 0) + 1);
    }
    for (const s of out) {
      const book = sharedBook.get(s.Id as Digest)!;
      let shared = 0;
      for (const [d, n] of book.blobs) if ((blobUse.get(d) ?? 0) > 1) shared += n;
      for (const [d, n] of book.snaps) if ((snapUse.get(d) ?? 0) > 1) shared += n;
      s.SharedSize = shared;
    }
  }
  out.sort((a, b) => b.Created - a.Created || (a.Id < b.Id ? -1 : a.Id > b.Id ? 1 : 0));
  return out;
}

/** label / label! filters over the image's platform configs (attestations skipped). */
async function labelFilterMatches(f: FilterArgs, manifests: PlatformManifestImpl[], bestLabels: Record<string, string>): Promise<boolean> {
  if (!f.has('label') && !f.has('label!')) return true;
  const configs: Array<Record<string, string>> = [];
  for (const m of manifests) {
    if (m.isAttestation() || !(await m.present())) continue;
    const c = await m.readConfig().catch(() => undefined);
    if (c) configs.push(c.config?.Labels ?? {});
  }
  if (configs.length === 0) configs.push(bestLabels);
  if (f.has('label') && !configs.some((l) => f.labelsMatch(l, 'label'))) return false;
  if (f.has('label!') && !configs.every((l) => f.labelsMatch(l, 'label!'))) return false;
  return true;
}

/** Runs `fn` over `items` with at most `limit` in flight (file reads overlap on the thread pool). */
export async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
