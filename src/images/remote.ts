import type { TransferLimit } from '../distribution/index.js';
import type { Ingester, Provider } from '../content/index.js';
import type { Descriptor, NamedReference } from '../oci/index.js';
import type { Credentials } from './types.js';

/**
 * What pull and push need from a registry, one repository at a time. `registry.ts` adapts the
 * distribution floor's RegistryClient to it.
 */
export interface RemoteRepository {
  /** Canonical repository (`docker.io/library/alpine`). */
  readonly name: string;
  /** Tag or digest → the target descriptor (manifest or index). */
  resolve(ref: NamedReference, signal?: AbortSignal): Promise<Descriptor>;
  /** A small document (manifest, index, config), verified against the descriptor. */
  fetchBytes(desc: Descriptor, signal?: AbortSignal): Promise<Buffer>;
  /**
   * Streams a blob into the content store under ingest `ref` (resuming a partial ingest), verifies and
   * commits it. Resolves when committed (or already present).
   */
  fetchBlob(desc: Descriptor, store: Ingester, ref: string, opts: {
    signal?: AbortSignal;
    onProgress?: (current: number, total: number) => void;
    /** The registry ignored a Range request, so a partial download starts again from byte 0. */
    onRangeIgnored?: () => void;
  }): Promise<void>;
  listTags(signal?: AbortSignal): Promise<string[]>;
  /**
   * Pushes the graph under `root` from `provider` to `reference` (tag or digest): blobs (HEAD, cross-repo
   * mount by the blobs' distribution.source labels, upload), child manifests, then the root.
   */
  push(reference: string, provider: Provider, root: Descriptor, opts: RemotePushOptions): Promise<void>;
}

export interface RemoteOptions {
  credentials?: Credentials;
  insecure?: boolean;
  /** Push access wanted (scope pull,push). */
  push?: boolean;
}

export type RemoteFactory = (ref: NamedReference, opts: RemoteOptions) => Promise<RemoteRepository>;

export type PushPhase = 'uploading' | 'done' | 'exists' | 'mounted';

export interface RemotePushOptions {
  signal?: AbortSignal;
  onBlob?: (desc: Pick<Descriptor, 'digest' | 'mediaType' | 'size'>, phase: PushPhase, current: number) => void;
  labelsOf?: (desc: Descriptor) => Record<string, string> | Promise<Record<string, string>>;
  filterChildren?: (desc: Descriptor) => boolean;
  /** Where interrupted chunked uploads are remembered, so the next push continues them. */
  uploadStateDir?: string;
  /** Blobs uploaded at once (the store's live limit). */
  concurrency?: TransferLimit;
}
