// The image service: the surface the command line and the Engine API server use.
export { Stowage, openStowage, defaultRoot } from './stowage.js';
export type * from './types.js';
export type * from './api-types.js';
export { RepositoryView, type RepositoryViewOptions, type StoredManifest, type PutManifestResult } from './repositories.js';
export { applyChanges, CHANGE_COMMANDS } from './changes.js';
