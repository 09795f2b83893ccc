// The registry client: references to repositories, auth, resolve, verified fetches, pull and push.
export { RegistryClient, type RegistryClientOptions } from './client.js';
export { ManifestReader, type Resolved } from './manifests.js';
export type { ManifestAccess, RepositoryAccess, Repository, RequestOptions, TransferSettings } from './access.js';
export * from './defaults.js';
export { isTransientNetworkError, type RetryOptions, type RetrySettings } from './retry.js';
export { Authorizer, basicHeader, pullScope, pushScope, scopeKey } from './auth.js';
export { parseChallenges, type Challenge } from './challenge.js';
export {
  chainCredentials, configKey, dockerConfigCredentials, dockerConfigDir, eraseCredentials, staticCredentials, storeCredentials,
  type CredentialSource, type Credentials,
} from './credentials.js';
export { errorFromResponse, failResponse } from './errors.js';
export { fetchBlobInto, makeRefKey, type BlobSink, type FetchBlobOptions, type FetchBlobResult } from './fetch.js';
export { apiHost, isLoopback, schemeFor, DOCKER_HUB_API_HOST, DOCKER_HUB_CONFIG_KEY } from './hosts.js';
export { login, logout, type LoginOptions } from './login.js';
export { TransferLimit, limitValue } from './limit.js';
export { progressChannel, runLimited, type ProgressChannel, type ProgressEvent, type ProgressFn, type ProgressPhase } from './progress.js';
export {
  addSourceLabel, documentGcLabels, pullGraph, registryDocuments, walkGraph,
  type DocumentKind, type GraphWalk, type PullOptions, type PullResult, type PullSink, type PulledManifest, type ReadDocument, type WalkOptions, type WalkedDocument,
} from './pull.js';
export {
  mountSource, pushBlob, pushGraph, pushManifest,
  type LabelLookup, type PushBlobOptions, type PushBlobStatus, type PushOptions, type PushResult,
} from './push.js';
export * from './protocol.js';
export {
  defaultCaCertificates, nodeTransport, redactUrl, type HttpRequest, type HttpResponse, type NodeTransportOptions, type RegistryRequest, type RoundTripper, type Transport,
} from './transport.js';
export { indexSearch, walkCatalog, type IndexSearchResult } from './search.js';
