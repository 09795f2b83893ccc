/**
 * The classic builder's image cache (MakeImageCache). Locally, a step's earlier result is a child of the
 * same parent (builder parent label, or fromscratch) whose stored run config equals the step's. With
 * `cacheFrom` images — pulled or loaded, so without builder labels — docker's source cache applies:
 * an image whose history extends the parent's by an entry written by this step (created_by equal to the
 * step's Cmd) stands for the step; its last step is the image itself, an inner step is restored as a new
 * image from the parent plus that entry's layer.
 */
import { isStowageError } from '../errors/index.js';
import { MAX_LABEL_BYTES } from '../metadata/index.js';
import { onlyPlatform, type Digest, type ImageConfig, type Platform } from '../oci/index.js';
import type { Ctx } from './context.js';
import { baseImage, underLease, writeImage, type BaseImage } from './create.js';
import { bestManifest, matcherFor, resolveRecord } from './resolve.js';
import type { ContainerConfig } from './types.js';
import { BUILD_CONTAINER_CONFIG, BUILD_FROM_SCRATCH, PARENT_IMAGE } from '../content/index.js';

/** The classic builder's image cache (MakeImageCache). */
export interface ImageCache {
  /** The ID of an image made from `parent` (undefined: scratch) by a step with this run config, if one exists. */
  getCache(parent: Digest | undefined, runConfig: ContainerConfig, platform?: Platform): Promise<Digest | undefined>;
}

export interface ImageCacheOptions {
  /** `--cache-from` images: trusted as cache sources by their history; local results count only when they descend from one. */
  cacheFrom?: string[];
}

/** The builder labels of a step's image: its run config (for the cache), and fromscratch without a parent. */
export function builderLabels(runConfig: ContainerConfig, parent: Digest | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  if (!parent) labels[BUILD_FROM_SCRATCH] = '1';
  const cc = JSON.stringify(runConfig);
  if (Buffer.byteLength(cc) <= MAX_LABEL_BYTES) labels[BUILD_CONTAINER_CONFIG] = cc;
  return labels;
}

const sameList = (a: readonly string[] | null | undefined, b: readonly string[] | null | undefined): boolean =>
  (a ?? []).length === (b ?? []).length && (a ?? []).every((x, i) => x === (b ?? [])[i]);
const sameSet = (a: Record<string, unknown> | null | undefined, b: Record<string, unknown> | null | undefined): boolean => {
  const ka = Object.keys(a ?? {});
  const kb = new Set(Object.keys(b ?? {}));
  return ka.length === kb.size && ka.every((k) => kb.has(k));
};
const sameMap = (a: Record<string, string> | null | undefined, b: Record<string, string> | null | undefined): boolean =>
  sameSet(a, b) && Object.entries(a ?? {}).every(([k, v]) => (b ?? {})[k] === v);

/**
 * Docker's cache comparison of two run configs: Cmd, Env, Entrypoint, Shell and OnBuild in order;
 * ports, volumes and labels as sets; the scalar fields (user, working dir, attach/tty flags…) equal.
 */
export function sameRunConfig(a: ContainerConfig, b: ContainerConfig): boolean {
  const scalars = ['User', 'WorkingDir', 'StopSignal', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'Tty', 'OpenStdin', 'NetworkDisabled', 'ArgsEscaped'];
  for (const k of scalars) if ((a[k] || undefined) !== (b[k] || undefined)) return false;
  if (!sameList(a.Cmd, b.Cmd) || !sameList(a.Env, b.Env) || !sameList(a.Entrypoint, b.Entrypoint)) return false;
  if (!sameList(a.Shell, b.Shell) || !sameList(a.OnBuild, b.OnBuild)) return false;
  if (!sameSet(a.ExposedPorts, b.ExposedPorts) || !sameSet(a.Volumes, b.Volumes)) return false;
  if (!sameMap(a.Labels, b.Labels)) return false;
  return JSON.stringify(a.Healthcheck ?? null) === JSON.stringify(b.Healthcheck ?? null);
}

const platformOf = (c: ImageConfig): Platform => ({ os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) });

/** The newest local child of `parent` made by a step with this run config. */
async function localHit(ctx: Ctx, parent: Digest | undefined, runConfig: ContainerConfig, platform: Platform): Promise<Digest | undefined> {
  const records = ctx.md.images.list().filter((r) => (parent ? r.labels[PARENT_IMAGE] === parent : r.labels[BUILD_FROM_SCRATCH] === '1'));
  const matcher = onlyPlatform(platform);
  let best: { id: Digest; created: string } | undefined;
  for (const r of records) {
    const raw = r.labels[BUILD_CONTAINER_CONFIG];
    if (!raw) continue;
    let stored: ContainerConfig;
    try { stored = JSON.parse(raw) as ContainerConfig; } catch { continue; }
    if (!sameRunConfig(stored, runConfig)) continue;
    const m = await bestManifest(ctx, ctx.blobs(), r.target, matcherFor(ctx, undefined), false);
    if (!m || !(await m.contentAvailable())) continue;
    const cfg = await m.readConfig();
    if (!matcher.match(platformOf(cfg))) continue;
    const created = cfg.created ?? '';
    if (!best || created > best.created) best = { id: r.target.digest, created };
  }
  return best?.id;
}

/** Whether `ancestor` is `id` or one of its builder parents. */
function descendsFrom(ctx: Ctx, id: Digest, ancestor: Digest): boolean {
  const records = ctx.md.images.list();
  let cur: Digest | undefined = id;
  for (let hops = 0; cur && hops < 10_000; hops++) {
    if (cur === ancestor) return true;
    const rec = records.find((r) => r.target.digest === cur);
    cur = rec?.labels[PARENT_IMAGE] as Digest | undefined;
  }
  return false;
}

type History = NonNullable<ImageConfig['history']>;

/** docker's isValidParent: the parent's history and layers are a prefix of the candidate's. */
function extendsParent(target: ImageConfig, parent: ImageConfig | undefined): boolean {
  const th = target.history ?? [];
  if (th.length === 0) return false;
  if (!parent || ((parent.history ?? []).length === 0 && parent.rootfs.diff_ids.length === 0)) return true;
  const ph = parent.history ?? [];
  if (ph.length >= th.length || parent.rootfs.diff_ids.length > target.rootfs.diff_ids.length) return false;
  return ph.every((h, i) => JSON.stringify(h) === JSON.stringify(th[i])) && parent.rootfs.diff_ids.every((d, i) => d === target.rootfs.diff_ids[i]);
}

/** The index of the layer a history entry made (undefined for an empty-layer entry). */
function layerIndexOf(history: History, at: number): number | undefined {
  if (history[at]?.empty_layer) return undefined;
  return history.slice(0, at).filter((h) => !h.empty_layer).length;
}

export async function makeImageCache(ctx: Ctx, opts: ImageCacheOptions = {}): Promise<ImageCache> {
  let sources: BaseImage[] = [];
  for (const ref of opts.cacheFrom ?? []) {
    try {
      sources.push(await baseImage(ctx, resolveRecord(ctx, ref).record.target.digest));
    } catch (e) {
      // docker skips a cache-from image it cannot find (it warns); an unreadable one is an error.
      if (!isStowageError(e, 'NotFound')) throw e;
    }
  }
  return {
    async getCache(parent, runConfig, platform) {
      const want = platform ?? ctx.host;
      const local = await localHit(ctx, parent, runConfig, want);
      if (local && (sources.length === 0 || sources.some((s) => descendsFrom(ctx, local, s.id)))) return local;
      if (sources.length === 0) return undefined;

      const base = parent ? await baseImage(ctx, parent) : undefined;
      const lenHistory = base?.config.history?.length ?? 0;
      const createdBy = (runConfig.Cmd ?? []).join(' ');
      const matcher = onlyPlatform(want);
      for (const target of sources) {
        const th = target.config.history ?? [];
        if (!matcher.match(platformOf(target.config)) || !extendsParent(target.config, base?.config)) continue;
        if (th[lenHistory]?.created_by !== createdBy) continue;
        if (th.length - 1 === lenHistory) return target.id;
        // An inner step of the source: restored as its own image on the parent.
        const entry = th[lenHistory]!;
        const li = layerIndexOf(th, lenHistory);
        const config: ImageConfig = {
          architecture: target.config.architecture, os: target.config.os, ...(target.config.variant ? { variant: target.config.variant } : {}),
          ...(target.config.author ? { author: target.config.author } : {}),
          ...(entry.created ? { created: entry.created } : {}),
          config: runConfig, rootfs: { type: 'layers', diff_ids: [] }, history: [...(base?.config.history ?? []), entry],
        };
        const layers = li === undefined ? [] : [{ descriptor: target.manifest.layers[li]!, diffId: target.config.rootfs.diff_ids[li]! }];
        const id = await underLease(ctx, 'build cache', (lease) => writeImage(ctx, {
          config, layers, lease, event: 'create', labels: builderLabels(runConfig, base?.id), ...(base ? { base } : {}),
        }));
        sources = [target]; // stay on one source from here, as docker does
        return id;
      }
      return undefined;
    },
  };
}
