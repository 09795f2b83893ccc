import fs from 'node:fs';
import { FailedPreconditionError } from '../errors/index.js';
import { applyLayer } from './apply.js';
import { diffDirs, diffTarStream, treeSource, type Change } from './diff.js';
import { sidecarPath } from './ownership.js';
import type { Snapshotter, SnapshotLayout } from './snapshotter.js';

/**
 * The rootless way to change an active snapshot without mounting it: edit a checkout of it, then
 * capture the edited tree. The snapshot's own layer is replaced by the difference between `treeDir`
 * and the parent chain (whiteouts for deletions), so a later commit holds exactly those changes.
 * Returns the changes. The tree itself is left untouched.
 */
export async function captureTree(sn: Snapshotter & SnapshotLayout, key: string, treeDir: string, opts: { signal?: AbortSignal; rootless?: boolean } = {}): Promise<Change[]> {
  const info = await sn.stat(key);
  if (info.kind !== 'active') throw new FailedPreconditionError(`snapshot ${JSON.stringify(key)} is ${info.kind}: only active snapshots can be changed`, { key });
  const layers = sn.layers(key);
  const own = layers[0]!;
  const parents = layers.slice(1);
  const up = await treeSource(treeDir);
  const changes = await diffDirs(parents, up, opts.signal ? { signal: opts.signal } : {});
  const next = own + '.next';
  fs.rmSync(next, { recursive: true, force: true });
  fs.rmSync(sidecarPath(next), { force: true });
  const applyOpts: Parameters<typeof applyLayer>[2] = { mode: 'overlay', lowerDirs: parents };
  if (opts.signal) applyOpts.signal = opts.signal;
  if (opts.rootless !== undefined) applyOpts.rootless = opts.rootless;
  await applyLayer(diffTarStream(changes, up), next, applyOpts);
  // Swap the layer in: old aside, new in place, old removed.
  const old = own + '.old';
  fs.rmSync(old, { recursive: true, force: true });
  fs.renameSync(own, old);
  fs.renameSync(next, own);
  fs.rmSync(sidecarPath(own), { force: true });
  if (fs.existsSync(sidecarPath(next))) fs.renameSync(sidecarPath(next), sidecarPath(own));
  fs.rmSync(old, { recursive: true, force: true });
  return changes;
}
