// The library's front door: what users of Stowage may import.
export * from './errors/index.js';
export * from './oci/index.js';
export * from './images/index.js';
export { startRegistryServer, type RegistryServer, type RegistryServerOptions } from './server/index.js';
export { build, type BuildOptions, type BuildResult } from './build/index.js';
