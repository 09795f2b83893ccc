/**
 * The content store's door: blobs by digest, ingests by ref, verified commit (the semantics of
 * containerd's content store, `core/content` and `plugins/content/local`).
 *
 * Layout under the root: `blobs/<alg>/<hex>` (read-only, immutable), `ingest/<sha256(ref)>/` with
 * `data`, `ref`, `startedat`, `updatedat`, `total`, `expected`, `hashstate`; `locks/<sha256(ref)>`
 * (per-ref O_EXCL lock files shared by all processes); `labels/<alg>/<hex>.json` (updatedAt, and labels
 * when no LabelStore is given).
 *
 * Error classes (all StowageError codes):
 * - commit with a wrong size → SizeMismatch, wrong digest → DigestMismatch (containerd says
 *   FailedPrecondition for both; ours are typed finer). The ingest is kept and the ref unlocked.
 * - commit of a digest already present → AlreadyExists (the ingest is removed; callers treat it as success).
 * - a ref held by a live writer in any process → Unavailable (data: heldSince, heldForMs, holderPid,
 *   holderHost); a holder whose process died is taken over. `wait: true` / openWriterWaiting retry.
 * - bad ref, malformed digest, unknown algorithm, bad filter → InvalidArgument; missing blob/ingest → NotFound.
 * - use of a closed writer, an ingest left inconsistent by a failed write → FailedPrecondition.
 * - ENOSPC/EDQUOT → ResourceExhausted (a failed write is rolled back so data and digest agree).
 */
export type * from './types.js';
export * from './label-keys.js';
export { openContentStore, validateRef, type LocalStoreOptions } from './local.js';
export type { ResumeReport } from './checkpoint.js';
export {
  copyInto,
  writeBlob,
  readBlob,
  openWriterWaiting,
  DEFAULT_MAX_BLOB_READ,
  type CopySource,
  type SeekableSource,
  type CopyOptions,
} from './helpers.js';
