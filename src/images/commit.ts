import { randomBytes } from 'node:crypto';
import { isStowageError } from '../errors/index.js';
import type { Digest, ImageConfig } from '../oci/index.js';
import { exportSnapshotLayer, layerChanges } from '../snapshots/index.js';
import { applyChanges } from './changes.js';
import { findContainer } from './containers.js';
import type { Ctx } from './context.js';
import { baseImage, underLease, writeImage } from './create.js';
import { danglingName } from './names.js';
import { ProgressSink, layerWritten } from './progress.js';
import { squashImage } from './squash.js';
import { parseTagTarget } from './tag.js';
import type { CommitOptions, ContainerConfig } from './types.js';
import { CONTAINER_IMAGE_ID, CONTAINER_NAME } from '../content/index.js';

/**
 * Docker's merge of a commit's config with the container's (moby daemon/commit.go): the user's values
 * win, gaps are filled from the container; ports, volumes and labels are unions; Env is merged by key.
 */
export function mergeContainerConfig(user: ContainerConfig, image: ContainerConfig): ContainerConfig {
  const c: ContainerConfig = structuredClone(user);
  if (!c.User) { if (image.User !== undefined) c.User = image.User; }
  if (!c.ExposedPorts || Object.keys(c.ExposedPorts).length === 0) { if (image.ExposedPorts) c.ExposedPorts = { ...image.ExposedPorts }; }
  else for (const p of Object.keys(image.ExposedPorts ?? {})) c.ExposedPorts[p] ??= {};
  if (!c.Env || c.Env.length === 0) { if (image.Env) c.Env = [...image.Env]; }
  else {
    const keys = new Set(c.Env.map((e) => e.split('=')[0]));
    for (const e of image.Env ?? []) if (!keys.has(e.split('=')[0])) c.Env.push(e);
  }
  const labels = { ...(c.Labels ?? {}) };
  for (const [k, v] of Object.entries(image.Labels ?? {})) if (!(k in labels)) labels[k] = v;
  if (Object.keys(labels).length > 0 || c.Labels !== undefined) c.Labels = labels;
  if (!c.Entrypoint || c.Entrypoint.length === 0) {
    if (!c.Cmd || c.Cmd.length === 0) { if (image.Cmd !== undefined) c.Cmd = image.Cmd; }
    if (c.Entrypoint === undefined && image.Entrypoint !== undefined) c.Entrypoint = image.Entrypoint;
  }
  if (image.Healthcheck !== undefined) {
    if (c.Healthcheck === undefined) c.Healthcheck = image.Healthcheck;
    else {
      const u = c.Healthcheck as Record<string, unknown>;
      const i = image.Healthcheck as Record<string, unknown>;
      for (const k of ['Test', 'Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries']) {
        const v = u[k];
        if (v === undefined || v === 0 || (Array.isArray(v) && v.length === 0)) { if (i[k] !== undefined) u[k] = i[k]; }
      }
    }
  }
  if (!c.WorkingDir && image.WorkingDir !== undefined) c.WorkingDir = image.WorkingDir;
  if (!c.Volumes || Object.keys(c.Volumes).length === 0) { if (image.Volumes) c.Volumes = { ...image.Volumes }; }
  else for (const [k, v] of Object.entries(image.Volumes ?? {})) c.Volumes[k] = v;
  if (!c.StopSignal && image.StopSignal !== undefined) c.StopSignal = image.StopSignal;
  return c;
}

/**
 * `docker commit` (as docker's containerd image store does it): the working container's own layer (whiteouts for deletions) as a
 * new layer on its image (none when nothing changed: the history entry is then `empty_layer`), the
 * config merged as docker does, author, comment, parent label. With `squash`, the result's layers are
 * merged into one. Events: image `create` (and `tag`), container `commit`.
 */
export async function commitContainer(ctx: Ctx, container: string, opts: CommitOptions = {}): Promise<{ id: Digest }> {
  const c = findContainer(ctx, container);
  const changes = opts.changes ?? [];
  applyChanges({}, changes); // refuse bad lines and names before any work
  if (opts.ref) parseTagTarget(opts.ref);
  const imageId = c.labels[CONTAINER_IMAGE_ID] as Digest;
  const base = await baseImage(ctx, imageId);
  const baseCfg = base.config.config ?? {};
  const user = applyChanges(opts.config ?? baseCfg, changes);
  const merged = mergeContainerConfig(user, baseCfg);

  const progress = new ProgressSink(opts.onProgress);
  const layers = ctx.snaps.layers(c.snapshotKey);
  const empty = layerChanges(layers.slice(1), layers[0]!).length === 0;
  const id = await underLease(ctx, `commit ${c.id}`, async (lease) => {
    const content = ctx.content.withLease(lease);
    const stored = [];
    if (!empty) {
      const writer = await content.writer({ ref: `commit-${c.id}-${randomBytes(6).toString('hex')}`, ...(opts.signal ? { signal: opts.signal } : {}) });
      const d = await exportSnapshotLayer(ctx.snaps, c.snapshotKey, writer, { compression: 'gzip', ...(opts.signal ? { signal: opts.signal } : {}) })
        .catch(async (e: unknown) => { await content.abort(writer.ref).catch(() => undefined); throw e; });
      const layer = { descriptor: { mediaType: d.mediaType, digest: d.digest, size: d.size }, diffId: d.diffID };
      stored.push(layer);
      layerWritten(progress, layer);
    }
    const created = new Date().toISOString();
    const author = opts.author ?? base.config.author;
    const createdBy = [...(baseCfg.Entrypoint ?? []), ...(baseCfg.Cmd ?? [])].join(' ');
    const config: ImageConfig = {
      ...base.config,
      created,
      ...(author !== undefined ? { author } : {}),
      config: merged,
      history: [
        ...(base.config.history ?? []),
        {
          created,
          ...(createdBy ? { created_by: createdBy } : {}),
          ...(author ? { author } : {}),
          ...(opts.message ? { comment: opts.message } : {}),
          ...(empty ? { empty_layer: true } : {}),
        },
      ],
    };
    if (config.author === undefined) delete config.author;
    return writeImage(ctx, {
      config, base, layers: stored, lease, event: opts.squash ? null : 'create',
      ...(opts.ref && !opts.squash ? { ref: opts.ref } : {}), ...(opts.signal ? { signal: opts.signal } : {}),
      // With squash, the image asked for is the squashed one: squash says `Created`.
      ...(opts.squash ? {} : { progress }),
    });
  });
  let result = id;
  if (opts.squash) {
    // The unsquashed step was never asked for: its dangling record goes, whether the squash works or not
    // (GC takes the blobs); a record someone else holds for the same ID stays.
    const dropStep = () => { try { ctx.md.images.delete(danglingName(id)); } catch (e) { if (!isStowageError(e, 'NotFound')) throw e; } };
    try {
      result = (await squashImage(ctx, id, {
        ...(opts.ref ? { ref: opts.ref } : {}), ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      })).id;
    } catch (e) {
      dropStep();
      throw e;
    }
    if (result !== id) dropStep();
  }
  try {
    ctx.md.events.append({
      type: 'container', action: 'commit', id: c.id,
      attributes: { comment: opts.message ?? '', imageID: result, imageRef: opts.ref ?? '', ...(c.labels[CONTAINER_NAME] ? { name: c.labels[CONTAINER_NAME]! } : {}) },
    });
  } catch { /* an event that cannot be written never fails the operation */ }
  return { id: result };
}
