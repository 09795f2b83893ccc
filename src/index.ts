/**
 * The library's front door: what users of Stowage may import. Open a store with `openStowage`; build
 * images in code with `buildImage`; every error is a `StowageError` with a stable `code`.
 * Test helpers (throwaway registry, checkouts, tree diffs) are in `stowage/testing`.
 */
export * from './errors/index.js';
export * from './oci/index.js';
export * from './images/index.js';
export * from './imagebuilder/index.js';
