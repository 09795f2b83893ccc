/**
 * `stowage/testing`: helpers for test suites that need real images without a daemon: a throwaway
 * registry preloaded with images ({@link startTestRegistry}), checkouts into temporary directories
 * ({@link checkoutToTemp}), and tree comparisons with a readable diff ({@link compareTrees},
 * {@link assertSameTree}). They work with any test runner (assertions throw plain Errors).
 *
 * @packageDocumentation
 * @module stowage/testing
 */
export { checkoutToTemp, type TempCheckout } from './checkout.js';
export {
  compareTrees, formatTreeDiff, assertSameTree, listDirectory, listFileTree,
  type CompareOptions, type TreeDifference, type TreeEntry, type TreeListing,
} from './trees.js';
export { startTestRegistry, type TestRegistry, type TestRegistryOptions } from './registry.js';
