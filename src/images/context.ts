import type { Metadata } from '../metadata/index.js';
import type { Platform } from '../oci/index.js';
import type { Snapshotter, SnapshotLayout } from '../snapshots/index.js';
import { BlobReader, type SnapshotSizes } from './manifest.js';
import type { ProgressSink } from './progress.js';
import type { TrackedContent } from './tracked-content.js';
import type { GcReport } from './types.js';

/** What every operation of the service works with: the opened floors of one store root. */
export interface Ctx {
  readonly root: string;
  readonly md: Metadata;
  readonly content: TrackedContent;
  readonly snaps: Snapshotter & SnapshotLayout;
  readonly sizes: SnapshotSizes;
  /** The platform images are ranked against when none is requested. */
  readonly host: Platform;
  /** Runs a garbage collection over the whole store; `progress` gets its steps (see maintenance-progress.ts). */
  gc(opts?: { signal?: AbortSignal | undefined; progress?: ProgressSink }): Promise<GcReport>;
  /** A fresh per-operation blob cache. */
  blobs(): BlobReader;
}

/** Snapshot presence and sizes by chain ID, from the snapshotter. */
export function snapshotSizes(sn: Snapshotter): SnapshotSizes {
  return {
    async exists(chainId) {
      try { const i = await sn.stat(chainId); return i.kind === 'committed'; } catch { return false; }
    },
    async usage(chainId) {
      try { return (await sn.usage(chainId)).size; } catch { return 0; }
    },
  };
}
