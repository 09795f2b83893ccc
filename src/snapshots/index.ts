// The snapshots floor: layers to trees (apply, checkout) and trees to layers (diff), over an
// overlay-layout directory snapshotter (`<root>/snapshots/<id>/fs`, one directory per layer) whose
// records live in the metadata database. Deletions inside layer directories are stored the OCI way
// (`.wh.<name>` files, `.wh..wh..opq` for opaque directories) so that everything works unprivileged;
// ownership that cannot be applied is kept as override records (see "Rootless mode" in the README).
export { detectCompression, decompressStream, compressStream, type Compression } from './compression.js';
export { tarStream } from './tar-stream.js';
export { applyLayer, type ApplyOptions, type ApplyResult, type PendingTarget } from './apply.js';
export { LayerFile } from './layer-file.js';
export { applyPool } from './apply-pool.js';
export {
  diffDirs, layerChanges, diffTarStream, writeDiffLayer, toApiChanges, comparePaths, treeSource,
  type Change, type ApiChange, type DiffLayer, type DiffTarOptions, type TreeSource,
} from './diff.js';
export {
  openSnapshotter, snapshotGcBackend, applyLayerToSnapshot, exportSnapshotLayer, chainID, diskUsage,
  hasSnapshotLayout, isSnapshotCleaner, hasDirectorySweep,
  type Snapshotter, type SnapshotLayout, type SnapshotCleaner, type SnapshotDirectorySweep, type DirectorySnapshotter, type SnapshotInfo, type Mount, type Usage, type SnapshotOptions,
  type ApplyToSnapshotInput, type ApplyToSnapshotResult,
} from './snapshotter.js';
export { checkout, type CheckoutOptions, type CheckoutResult } from './checkout.js';
export { prestartCheckoutThreads, setCheckoutThreads, type CheckoutThreads } from './checkout-threads.js';
export { captureTree } from './capture.js';
export { lookupMerged } from './merged.js';
export { OVERRIDE_XATTR, loadOverrides, saveOverrides, isPrivileged, sidecarPath, type OwnerOverride } from './ownership.js';
