export * from './digest.js';
export * from './descriptor.js';
export * from './mediatypes.js';
export * from './reference.js';
export * from './manifest.js';
export * from './platform.js';
