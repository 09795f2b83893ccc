/**
 * The service's settings and plumbing answers (docker's UpdateConfig, LayerStoreStatus, DistributionServices,
 * Map, LayerDiskUsage): what `/info` shows about storage, and the whole-store views the GD store offered.
 */
import fs from 'node:fs';
import type { TransferLimit } from '../distribution/index.js';
import type { Digest, ImageConfig } from '../oci/index.js';
import type { Ctx } from './context.js';
import type { RemoteFactory } from './remote.js';
import { bestManifest, matcherFor } from './resolve.js';

/** Transfer limits (docker's max-concurrent-downloads / max-concurrent-uploads). */
export interface ServiceSettings {
  maxConcurrentDownloads?: number;
  maxConcurrentUploads?: number;
}

export interface DistributionServices {
  /** Opens registry repositories with the store's settings (credentials, insecure hosts). */
  remotes: RemoteFactory;
  downloads: TransferLimit;
  uploads: TransferLimit;
}

/** statfs magic numbers of the file systems a store usually lives on. */
const FS_NAMES: Record<number, string> = {
  0xef53: 'extfs', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x01021994: 'tmpfs', 0x794c7630: 'overlayfs',
  0x2fc12fc1: 'zfs', 0x65735546: 'fuse', 0x6969: 'nfs', 0x5346544e: 'ntfs', 0x4d44: 'vfat',
};

/** `/info` DriverStatus: the snapshotter kind (as C8D reports it) and the file system under the store. */
export function layerStoreStatus(ctx: Ctx): Array<[string, string]> {
  const out: Array<[string, string]> = [['driver-type', 'io.containerd.snapshotter.v1']];
  try {
    const st = fs.statfsSync(ctx.snaps.root);
    out.push(['Backing Filesystem', FS_NAMES[st.type] ?? `0x${st.type.toString(16)}`]);
  } catch { /* no statfs: the driver type alone */ }
  return out;
}

/** Every image ID (distinct targets) with the config of its best platform manifest. */
export async function imagesMap(ctx: Ctx): Promise<Map<Digest, ImageConfig>> {
  const out = new Map<Digest, ImageConfig>();
  const blobs = ctx.blobs();
  for (const r of ctx.md.images.list()) {
    if (out.has(r.target.digest)) continue;
    const m = await bestManifest(ctx, blobs, r.target, matcherFor(ctx, undefined), true);
    if (m) out.set(r.target.digest, await m.readConfig());
  }
  return out;
}

/** Bytes used by every committed snapshot (unpacked layers), each once. */
export async function layerDiskUsage(ctx: Ctx): Promise<number> {
  let total = 0;
  const keys: string[] = [];
  await ctx.snaps.walk((info) => { if (info.kind === 'committed') keys.push(info.name); });
  for (const k of keys) total += (await ctx.snaps.usage(k)).size;
  return total;
}
