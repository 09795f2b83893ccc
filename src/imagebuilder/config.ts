import { InvalidArgumentError } from '../errors/index.js';
import { hostPlatform, normalizePlatform, parsePlatform, type Digest, type ImageConfig, type Platform } from '../oci/index.js';

/** One history entry of the image config, as `docker history` shows it. */
export interface HistoryEntry {
  createdBy?: string;
  comment?: string;
  author?: string;
  created?: Date | string;
  /** True for steps that made no layer (ENV, CMD...). */
  emptyLayer?: boolean;
}

/** The image config of a built image: what runs, with what environment, on which platform. */
export interface ImageConfigSpec {
  /**
   * `os/arch[/variant]` or an object. Default: the host's. Give it for digests that are the same on
   * every machine.
   */
  platform?: string | Platform;
  entrypoint?: string[];
  cmd?: string[];
  /** `{ NAME: 'value' }` or docker's `['NAME=value']`; merged over the base image's by name. */
  env?: Record<string, string> | string[];
  workingDir?: string;
  user?: string;
  /** Merged over the base image's labels. */
  labels?: Record<string, string>;
  /** `['8080/tcp', '53/udp']`. */
  exposedPorts?: string[];
  volumes?: string[];
  stopSignal?: string;
  author?: string;
  /** The config's `created` and the default time of history entries. Default: the epoch (reproducible). */
  created?: Date | string;
  /**
   * History entries of the new layers and steps, appended to the base image's. Default: one entry per
   * layer, created by `layer.comment` or "stowage imagebuilder: layer N".
   */
  history?: HistoryEntry[];
}

function iso(d: Date | string): string {
  const t = d instanceof Date ? d : new Date(d);
  if (Number.isNaN(t.getTime())) throw new InvalidArgumentError(`image config: "${String(d)}" is not a date`, { value: String(d) });
  return t.toISOString().replace('.000Z', 'Z');
}

export function platformOf(p: string | Platform | undefined): Platform {
  if (p === undefined) return hostPlatform();
  return typeof p === 'string' ? parsePlatform(p) : normalizePlatform(p);
}

function envList(env: Record<string, string> | string[]): string[] {
  return Array.isArray(env) ? [...env] : Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/** Docker's ENV merge: a name given again replaces its value in place; new names are appended. */
function mergeEnv(base: string[], add: string[]): string[] {
  const out = [...base];
  for (const kv of add) {
    const name = kv.split('=', 1)[0];
    const i = out.findIndex((e) => e.split('=', 1)[0] === name);
    if (i >= 0) out[i] = kv; else out.push(kv);
  }
  return out;
}

const asSet = (items: string[]): Record<string, object> => Object.fromEntries([...items].sort().map((k) => [k, {}]));

/**
 * The OCI image config of a built image: the base's config (when there is one) with the spec's fields
 * over it, the diff IDs of every layer, and the history. Keys are written in a fixed order.
 */
export function imageConfig(spec: ImageConfigSpec, layers: { diffId: Digest; comment?: string }[], base?: ImageConfig): ImageConfig {
  const created = iso(spec.created ?? new Date(0));
  const platform = spec.platform !== undefined || !base ? platformOf(spec.platform) : { os: base.os, architecture: base.architecture, ...(base.variant ? { variant: base.variant } : {}) };
  const prev = base?.config ?? {};
  const env = mergeEnv(prev.Env ?? [], spec.env ? envList(spec.env) : []);
  const labels = { ...(prev.Labels ?? {}), ...(spec.labels ?? {}) };
  const cfg: NonNullable<ImageConfig['config']> = {};
  const user = spec.user ?? prev.User;
  if (user) cfg.User = user;
  const ports = [...Object.keys(prev.ExposedPorts ?? {}), ...(spec.exposedPorts ?? [])];
  if (ports.length) cfg.ExposedPorts = asSet([...new Set(ports)]);
  if (env.length) cfg.Env = env;
  const entrypoint = spec.entrypoint ?? prev.Entrypoint;
  if (entrypoint) cfg.Entrypoint = entrypoint;
  // As docker: a new entrypoint resets a cmd inherited from the base.
  const cmd = spec.cmd ?? (spec.entrypoint ? undefined : prev.Cmd);
  if (cmd) cfg.Cmd = cmd;
  const volumes = [...Object.keys(prev.Volumes ?? {}), ...(spec.volumes ?? [])];
  if (volumes.length) cfg.Volumes = asSet([...new Set(volumes)]);
  const workingDir = spec.workingDir ?? prev.WorkingDir;
  if (workingDir) cfg.WorkingDir = workingDir;
  if (Object.keys(labels).length) cfg.Labels = Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const stopSignal = spec.stopSignal ?? prev.StopSignal;
  if (stopSignal) cfg.StopSignal = stopSignal;

  const history: HistoryEntry[] = spec.history ?? layers.map((l, i) => ({ createdBy: l.comment ?? `stowage imagebuilder: layer ${(base?.rootfs.diff_ids.length ?? 0) + i}` }));
  const layerSteps = history.filter((h) => !h.emptyLayer).length;
  if (layerSteps !== layers.length) {
    throw new InvalidArgumentError(`image config: ${layerSteps} history entries make layers but the image has ${layers.length} new layers`, { history: layerSteps, layers: layers.length });
  }
  const config: ImageConfig = {
    created,
    ...(spec.author ?? base?.author ? { author: spec.author ?? base?.author } : {}),
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: cfg,
    rootfs: { type: 'layers', diff_ids: [...(base?.rootfs.diff_ids ?? []), ...layers.map((l) => l.diffId)] },
    history: [
      ...(base?.history ?? []),
      ...history.map((h) => ({
        created: h.created !== undefined ? iso(h.created) : created,
        ...(h.createdBy !== undefined ? { created_by: h.createdBy } : {}),
        ...(h.author !== undefined ? { author: h.author } : {}),
        ...(h.comment !== undefined ? { comment: h.comment } : {}),
        ...(h.emptyLayer ? { empty_layer: true } : {}),
      })),
    ],
  };
  return config;
}
