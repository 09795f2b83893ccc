import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../errors/index.js';
import type { Digest, ImageConfig } from '../oci/index.js';
import { checkout, diffDirs, writeDiffLayer } from '../snapshots/index.js';
import type { Ctx } from './context.js';
import { baseImage, underLease, writeImage, type BaseImage } from './create.js';
import { chainIds } from './manifest.js';
import { ProgressSink, layerWritten } from './progress.js';
import { bestManifest, matcherFor, resolveRecord } from './resolve.js';
import { parseTagTarget } from './tag.js';
import type { SquashOptions } from './types.js';
import { ensureUnpacked } from './unpack.js';

/**
 * Docker's SquashImage (its graphdriver backend's; the containerd backend has none): a new image whose
 * layers are the parent's plus one layer holding the merged changes from the parent's tree to the
 * image's (from scratch without a parent). History entries above the parent become `empty_layer` and
 * a final `merge <id> to <parent>` / `create new from <id>` entry is added; the image itself is untouched.
 */
export async function squashImage(ctx: Ctx, image: string, opts: SquashOptions = {}): Promise<{ id: Digest }> {
  if (opts.ref) parseTagTarget(opts.ref);
  const { record } = resolveRecord(ctx, image);
  const m = await bestManifest(ctx, ctx.blobs(), record.target, matcherFor(ctx, undefined), false);
  if (!m) throw new InvalidArgumentError(`image ${image} has no platform to squash`, { image });
  const cfg = await m.readConfig();
  const diffIds = cfg.rootfs.diff_ids;
  const platform = await m.platform();
  let parent: BaseImage | undefined;
  if (opts.parent !== undefined && opts.parent !== '') {
    parent = await baseImage(ctx, opts.parent, platform);
    const p = parent.config.rootfs.diff_ids;
    if (p.length > diffIds.length || p.some((d, i) => d !== diffIds[i])) {
      throw new InvalidArgumentError(`${opts.parent} is not a parent of ${image}`, { image, parent: opts.parent });
    }
  }
  const id = record.target.digest;
  const progress = new ProgressSink(opts.onProgress);
  return underLease(ctx, `squash ${image}`, async (lease) => {
    const top = await ensureUnpacked(ctx, m, lease, opts.signal);
    const parentChains = parent ? chainIds(parent.config.rootfs.diff_ids) : [];
    const parentTop = parentChains[parentChains.length - 1];
    if (parentTop) {
      // The parent's chain is a prefix of the image's, so it is unpacked too.
      ctx.md.leases.addResource(lease, { type: `snapshots/${ctx.snaps.name}`, id: parentTop });
    }
    // The merged tree of the image, compared with the parent's layers: one layer of the difference.
    const tmp = path.join(ctx.root, 'tmp', `squash-${randomBytes(8).toString('hex')}`);
    fs.mkdirSync(path.dirname(tmp), { recursive: true, mode: 0o700 });
    try {
      const so = opts.signal ? { signal: opts.signal } : {};
      await checkout(ctx.snaps, top ? ctx.snaps.layers(top) : [], tmp, so);
      const changes = await diffDirs(parentTop ? ctx.snaps.layers(parentTop) : [], tmp, so);
      const content = ctx.content.withLease(lease);
      const writer = await content.writer({ ref: `squash-${randomBytes(8).toString('hex')}`, ...so });
      const d = await writeDiffLayer(changes, tmp, writer, { compression: 'gzip', ...so })
        .catch(async (e: unknown) => { await content.abort(writer.ref).catch(() => undefined); throw e; });
      const layer = { descriptor: { mediaType: d.mediaType, digest: d.digest, size: d.size }, diffId: d.diffID };
      layerWritten(progress, layer);
      const created = new Date().toISOString();
      const keep = parent?.config.history?.length ?? 0;
      const history = (cfg.history ?? []).map((h, i) => (i < keep ? h : { ...h, empty_layer: true }));
      history.push({ created, comment: parent ? `merge ${id} to ${parent.id}` : `create new from ${id}` });
      const config: ImageConfig = { ...cfg, created, history };
      const newId = await writeImage(ctx, {
        config, ...(parent ? { base: parent } : {}),
        layers: [layer], lease, event: 'create', ...(opts.ref ? { ref: opts.ref } : {}), ...so, progress,
      });
      return { id: newId };
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
}

