// The image service: the surface the command line and the Engine API server use.
export { Stowage, openStowage, defaultRoot } from './stowage.js';
export type * from './types.js';
export type * from './api-types.js';
export {
  sameRunConfig,
  type BuildStepCommit, type BuildStepResult, type ImageCache, type ImageCacheOptions,
  type ReleasableLayer, type ImageAndLayer, type ReleasableLayerOptions,
} from './builder.js';
export { applyChanges, CHANGE_COMMANDS } from './changes.js';
export type { ServiceSettings, DistributionServices } from './service-info.js';
export type { RemoteRepository } from './remote.js';
export type { Attestation, AttestationOptions } from './attestations.js';
