import { MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, isConfigType, isManifestOrIndexType, type Descriptor, type NamedReference } from '../oci/index.js';
import { RegistryClient, type RegistryClientOptions } from '../distribution/index.js';
import type { RemoteFactory, RemoteOptions, RemoteRepository } from './remote.js';

/** A registry client for a domain: the store's shared one, or a private one for explicit credentials / insecure. */
export type ClientFactory = (domain: string, opts: RemoteOptions) => RegistryClient;

export function registryClients(base: RegistryClientOptions = {}): ClientFactory {
  let shared: RegistryClient | undefined;
  return (domain, opts) => {
    if (!opts.credentials && !opts.insecure) return (shared ??= new RegistryClient(base));
    const o: RegistryClientOptions = { ...base };
    if (opts.credentials) {
      const c = opts.credentials;
      o.credentials = {
        [domain]: {
          ...(c.username ? { username: c.username } : {}), ...(c.password ? { password: c.password } : {}),
          ...(c.identityToken ? { identityToken: c.identityToken } : {}), ...(c.registryToken ? { registryToken: c.registryToken } : {}),
        },
      };
    }
    if (opts.insecure) o.insecureRegistries = [...(base.insecureRegistries ?? []), domain];
    return new RegistryClient(o);
  };
}

/**
 * The registry side of pull and push, over the distribution floor's RegistryClient. One client per
 * store (token cache, connection reuse); explicit credentials or an insecure host get their own.
 */
export function registryRemotes(clients: ClientFactory): RemoteFactory {
  return async (ref: NamedReference, opts: RemoteOptions): Promise<RemoteRepository> => remoteRepository(clients(ref.domain, opts), ref);
}

function remoteRepository(client: RegistryClient, ref: NamedReference): RemoteRepository {
  const repo = client.repository(ref);
  return {
    name: `${ref.domain}/${ref.path}`,
    async resolve(r, signal) {
      return (await client.resolve(r, signal ? { signal } : {})).descriptor;
    },
    fetchBytes(desc: Descriptor, signal?: AbortSignal) {
      const cap = isManifestOrIndexType(desc.mediaType) ? MAX_MANIFEST_SIZE : isConfigType(desc.mediaType) ? MAX_CONFIG_SIZE : Math.max(MAX_CONFIG_SIZE, desc.size);
      return client.fetchBytes(repo, desc, cap, signal ? { signal } : {});
    },
    async fetchBlob(desc, store, ingestRef, opts) {
      await client.fetchBlobInto(store, repo, desc, {
        ref: ingestRef,
        ...(opts.signal ? { signal: opts.signal } : {}),
        onProgress: (ev) => {
          if (ev.note === 'range-ignored') opts.onRangeIgnored?.();
          if (ev.phase === 'downloading') opts.onProgress?.(ev.current, ev.total);
        },
      });
    },
    listTags(signal) { return client.listTags(repo, signal ? { signal } : {}); },
    async push(reference, provider, root, opts) {
      await client.push({ domain: ref.domain, path: ref.path, ...(reference.includes(':') ? { digest: reference } : { tag: reference }) }, provider, root, {
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.labelsOf ? { labelsOf: opts.labelsOf } : {}),
        ...(opts.filterChildren ? { filterChildren: opts.filterChildren } : {}),
        ...(opts.uploadStateDir ? { uploadStateDir: opts.uploadStateDir } : {}),
        ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
        ...(opts.onBlob ? {
          onProgress: (ev) => {
            const phase = ev.phase === 'uploading' || ev.phase === 'done' || ev.phase === 'exists' || ev.phase === 'mounted' ? ev.phase : undefined;
            if (phase) opts.onBlob!({ digest: ev.digest, mediaType: ev.mediaType, size: ev.total }, phase, ev.current);
          },
        } : {}),
      });
    },
  };
}
