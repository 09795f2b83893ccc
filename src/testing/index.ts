/**
 * `stowage/testing`: helpers for test suites that need real images without a daemon: a throwaway
 * registry preloaded with images, checkouts into temporary directories, and tree comparisons with a
 * readable diff. They work with any test runner (assertions throw plain Errors).
 */
export { checkoutToTemp, type TempCheckout } from './checkout.js';
export {
  compareTrees, formatTreeDiff, assertSameTree, listDirectory, listFileTree,
  type CompareOptions, type TreeDifference, type TreeEntry, type TreeListing,
} from './trees.js';
export { startTestRegistry, type TestRegistry, type TestRegistryOptions } from './registry.js';
