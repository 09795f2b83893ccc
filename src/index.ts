/**
 * Stowage: a daemonless, rootless container-image store. This is the library's front door; it holds
 * what users may import and nothing else.
 *
 * - Open a store with {@link openStowage} (at a path, or `temporary: true` for a store removed on close).
 * - Build images in code with {@link buildImage}; write them into a store with `store.addImage`, or out
 *   with {@link writeOciLayout} / {@link writeImageArchive}.
 * - Serve a store over the OCI distribution API with {@link startRegistryServer}.
 * - Every failure is a {@link StowageError} with a stable `code`: test the code, not the message.
 * - Helpers for test suites (a throwaway registry, checkouts, tree diffs) are in `stowage/testing`.
 *
 * @packageDocumentation
 * @module stowage
 */
export {
  StowageError, NotFoundError, AlreadyExistsError, ConflictError, InvalidArgumentError, FailedPreconditionError,
  UnavailableError, DigestMismatchError, SizeMismatchError, UnauthorizedError, ForbiddenError, NotImplementedError,
  AbortedError, ResourceExhaustedError, isStowageError, stowageErrorOf, type ErrorCode,
} from './errors/index.js';
export {
  MediaType, digestOf, parsePlatform, formatPlatform, hostPlatform, parseNormalizedNamed, familiarString, referenceString,
  type Descriptor, type Digest, type Platform, type ImageConfig, type Manifest, type Index, type Reference, type NamedReference,
} from './oci/index.js';
export { Stowage, openStowage, defaultRoot, applyChanges, CHANGE_COMMANDS } from './images/index.js';
export type * from './images/index.js';
export { startRegistryServer, type RegistryServer, type RegistryServerOptions } from './server/index.js';
export * from './imagebuilder/index.js';
export { build, type BuildOptions, type BuildResult } from './build/index.js';
