import { InvalidArgumentError } from '../errors/index.js';
import type { ImageConfig } from '../oci/index.js';
import type { HistoryResponseItem, ImageConfigSection, InspectResponse } from './api-types.js';
import type { Ctx } from './context.js';
import { containersByImage, totalImageSize } from './image-info.js';
import { platformManifests } from './manifest.js';
import { manifestSummary } from './list.js';
import { familiarOf, isDanglingRecord, repoDigestOf } from './names.js';
import { bestManifest, matcherFor, platformMissing, resolveRecord, toPlatform } from './resolve.js';
import type { InspectOptions, PlatformOption } from './types.js';
import { CONTAINER_MANIFEST, PARENT_IMAGE } from '../content/index.js';

function configSection(c: ImageConfig): ImageConfigSection {
  const src = (c.config ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'OnBuild', 'StopSignal', 'Shell', 'Healthcheck', 'ArgsEscaped']) {
    if (src[k] !== undefined) out[k] = src[k];
  }
  return out as ImageConfigSection;
}

/** `docker image inspect`, in the shape docker's containerd image store gives. */
export async function inspectImage(ctx: Ctx, input: string, opts: InspectOptions = {}): Promise<InspectResponse> {
  if (opts.manifests && opts.platform !== undefined) {
    throw new InvalidArgumentError('conflicting options: manifests and platform options cannot both be set');
  }
  const platform = opts.platform !== undefined ? toPlatform(opts.platform) : undefined;
  const { record, all } = resolveRecord(ctx, input);
  const blobs = ctx.blobs();
  const best = await bestManifest(ctx, blobs, record.target, matcherFor(ctx, platform), platform === undefined);
  if (!best && platform) throw platformMissing(input, platform);
  const config = best ? await best.readConfig() : undefined;

  const named = all.filter((r) => !isDanglingRecord(r));
  const repoTags = [...new Set(named.map((r) => familiarOf(r.name)))];
  const repoDigests = [...new Set(named.map((r) => repoDigestOf(r.name, record.target.digest)).filter((s): s is string => !!s))];
  const lastTag = all.reduce<Date | undefined>((max, r) => (!isDanglingRecord(r) && (!max || r.updatedAt > max) ? r.updatedAt : max), undefined);

  const history = config?.history ?? [];
  const size = best ? await best.presentContentSize() + await best.snapshotUsage() : await totalImageSize(ctx, blobs, record.target);
  // Field order as docker prints it (Go struct order), optional fields only when they have a value.
  const parent = record.labels[PARENT_IMAGE];
  const comment = history.length ? history[history.length - 1]!.comment : undefined;
  const dockerVersion = typeof config?.docker_version === 'string' ? config.docker_version : '';
  const diffIds = config?.rootfs.diff_ids ?? [];
  const out = {
    Id: platform && best ? best.digest : record.target.digest,
    RepoTags: repoTags,
    RepoDigests: repoDigests,
    ...(parent ? { Parent: parent } : {}),
    ...(comment ? { Comment: comment } : {}),
    ...(config?.created ? { Created: config.created } : {}),
    ...(dockerVersion ? { DockerVersion: dockerVersion } : {}),
    ...(config?.author ? { Author: config.author } : {}),
    Config: config ? configSection(config) : {},
    Architecture: config?.architecture ?? '',
    ...(config?.variant ? { Variant: config.variant } : {}),
    Os: config?.os ?? '',
    ...(config?.['os.version'] ? { OsVersion: config['os.version'] } : {}),
    Size: size,
    RootFS: diffIds.length ? { Type: 'layers', Layers: [...diffIds] } : { Type: 'layers' },
    Metadata: lastTag ? { LastTagTime: lastTag.toISOString() } : {},
    Descriptor: record.target,
  } as InspectResponse;
  if (opts.manifests) {
    const users = containersByImage(ctx).get(record.target.digest) ?? [];
    out.Manifests = [];
    for (const m of await platformManifests(record.target, blobs, ctx.sizes)) {
      out.Manifests.push(await manifestSummary(ctx, m, users.filter((c) => c.labels[CONTAINER_MANIFEST] === m.digest).map((c) => c.id)));
    }
  }
  return out;
}

/** `docker history`: newest first, `<missing>` below the image itself, empty layers 0 bytes. */
export async function imageHistory(ctx: Ctx, input: string, opts: PlatformOption = {}): Promise<HistoryResponseItem[]> {
  const platform = opts.platform !== undefined ? toPlatform(opts.platform) : undefined;
  const { record } = resolveRecord(ctx, input);
  const blobs = ctx.blobs();
  const best = await bestManifest(ctx, blobs, record.target, matcherFor(ctx, platform, false), platform === undefined);
  if (!best) throw platformMissing(input, platform);
  const config = await best.readConfig();
  const chain = await best.chainIds();
  const entries = config.history ?? [];
  const rows: HistoryResponseItem[] = [];
  let layer = 0;
  for (const h of entries) {
    let size = 0;
    if (!h.empty_layer) {
      const id = chain[layer];
      if (id === undefined) throw new InvalidArgumentError('unable to find the size of the layer: too many non-empty layers in History section', { image: input });
      size = await ctx.sizes.usage(id);
      layer++;
    }
    const t = h.created ? Date.parse(h.created) : NaN;
    rows.push({
      Id: '<missing>',
      Created: Number.isNaN(t) ? 0 : Math.floor(t / 1000),
      CreatedBy: h.created_by ?? '',
      Tags: null,
      Size: size,
      Comment: h.comment ?? '',
    });
  }
  rows.reverse();
  // Walk the builder parent chain: each row going older gets the next ancestor.
  let current: typeof record | undefined = record;
  for (const row of rows) {
    if (!current) break;
    row.Id = current.target.digest;
    const names = ctx.md.images.list().filter((r) => r.target.digest === current!.target.digest && !isDanglingRecord(r)).map((r) => familiarOf(r.name));
    row.Tags = names.length ? names : null;
    const parent: string | undefined = current.labels[PARENT_IMAGE];
    current = parent ? ctx.md.images.list().find((r) => r.target.digest === parent) : undefined;
  }
  return rows;
}
