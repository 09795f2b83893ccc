export * from './digest.js';
export * from './descriptor.js';
export * from './mediatypes.js';
