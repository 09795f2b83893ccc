// The image service: the surface the command line and the Engine API server use.
export { Stowage, openStowage, defaultRoot } from './stowage.js';
export type * from './types.js';
export type * from './api-types.js';
export type {
  BuildStepCommit, BuildStepResult, ReleasableLayer, ImageAndLayer, ReleasableLayerOptions,
} from './builder.js';
export type { ImageCache, ImageCacheOptions } from './image-cache.js';
export { applyChanges, CHANGE_COMMANDS } from './changes.js';
export type { ServiceSettings, DistributionServices } from './service-info.js';
export type { RemoteRepository } from './remote.js';
export type { Attestation, AttestationOptions } from './attestations.js';
export { RepositoryView, type RepositoryViewOptions, type StoredManifest, type PutManifestResult } from './repositories.js';
