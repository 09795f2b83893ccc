// The metadata floor's door: one SQLite database per store root.
import { MetadataStore } from './store.js';
import type { Metadata } from './types.js';

export type * from './types.js';
export { labelStoreFor } from './content.js';
export { MAX_LABEL_BYTES, GC_EXPIRE, GC_FLAT, GC_ROOT } from './labels.js';
export { migrate, SCHEMA_VERSION } from './schema.js';
export { DB_FILE } from './db.js';
export {
  collectGarbage, DEAD_LEASE_GRACE_MS, type GcBackends, type GcContentBackend, type GcSnapshotBackend, type GcOptions, type GcReport, type GcStep,
} from './gc.js';

/** Opens (creating and migrating as needed) `<root>/metadata.db`. Safe from many processes at once. */
export function openMetadata(root: string): Metadata {
  return new MetadataStore(root);
}
export { checkStore, type CheckContentBackend, type CheckOptions, type CheckReport, type CheckStep, type Problem, type ProblemKind, type FindingClass } from './check.js';
