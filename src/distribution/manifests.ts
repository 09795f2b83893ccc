import {
  DigestMismatchError, NotFoundError, ResourceExhaustedError, SizeMismatchError, isStowageError, stowageErrorOf,
} from '../errors/index.js';
import {
  MANIFEST_ACCEPT, MediaType, MAX_MANIFEST_SIZE, baseMediaType, digestOf, isDigest, parseDigest, parseManifest, referenceString,
  type Descriptor, type Digest, type NamedReference,
} from '../oci/index.js';
import type { RepositoryAccess, Repository } from './access.js';
import { pullScope } from './auth.js';
import { MANIFEST_CACHE_ENTRIES } from './defaults.js';
import { failResponse } from './errors.js';
import { Header, manifestAcceptHeader } from './protocol.js';
import { backoffMs, pause } from './retry.js';
import { BODY_READ_FAILED, discard, header, readBody } from './transport.js';

export interface Resolved {
  /** Canonical reference string (`docker.io/library/alpine:latest`). */
  name: string;
  ref: NamedReference;
  repository: Repository;
  descriptor: Descriptor;
}

/**
 * Manifests over a registry: resolve a reference to its descriptor, and read small documents (manifests,
 * indexes, configs) by descriptor, capped and verified. The last few manifests read are remembered by
 * digest, so that the pull that follows a resolve does not GET the same manifest again.
 */
export class ManifestReader {
  private readonly cache = new Map<Digest, Buffer>();

  constructor(private readonly access: RepositoryAccess) {}

  /**
   * Resolves a reference to the descriptor of its manifest or index: HEAD first (trusting
   * Docker-Content-Digest only with a Content-Length), GET when HEAD cannot answer (405, 403, no digest),
   * hashing the body. Schema 1 is refused; digests are always verified; sizes capped.
   */
  async resolve(repo: Repository, ref: NamedReference, opts: { signal?: AbortSignal } = {}): Promise<Resolved> {
    const target = ref.digest ?? ref.tag!;
    if (ref.digest !== undefined) parseDigest(ref.digest);
    const path = `/v2/${repo.path}/manifests/${target}`;
    const accept = manifestAcceptHeader();
    const scopes = [pullScope(repo.path)];
    const name = referenceString(ref);

    const head = await this.access.request(repo, { method: 'HEAD', url: path, headers: { accept }, scopes, signal: opts.signal });
    discard(head.body);
    if (head.status === 404) {
      if (ref.digest) return this.resolveFromBlobs(repo, ref, name, opts.signal);
      throw new NotFoundError(`${name}: not found`, { reference: name });
    }
    if (head.status === 401) await failResponse(head, `resolving ${name}`, repo);
    if (head.status === 200) {
      const mt = baseMediaType(header(head, 'content-type'));
      const dcd = header(head, Header.ContentDigest);
      const len = header(head, 'content-length');
      if (mt === MediaType.DockerManifestV1 || mt === MediaType.DockerManifestV1Signed) parseManifest('{}', mt); // throws NotImplemented
      const size = len !== undefined ? Number(len) : NaN;
      if (Number.isSafeInteger(size) && size > MAX_MANIFEST_SIZE) {
        throw new ResourceExhaustedError(`${name}: manifest is ${size} bytes, over the ${MAX_MANIFEST_SIZE}-byte limit`, { reference: name, size });
      }
      const digest = ref.digest ?? dcd;
      if (digest && isDigest(digest) && Number.isSafeInteger(size) && size > 0 && (MANIFEST_ACCEPT as readonly string[]).includes(mt)) {
        if (ref.digest && dcd && dcd !== ref.digest) throw new DigestMismatchError(`${name}: registry answered digest ${dcd}`, { expected: ref.digest, digest: dcd });
        return { name, ref, repository: repo, descriptor: { mediaType: mt, digest: digest as Digest, size } };
      }
    }
    // HEAD could not answer (405 without HEAD support, 403 or other errors without a body, no digest):
    // GET gives the content, or the registry's own words for the error.

    const get = await this.access.request(repo, { method: 'GET', url: path, headers: { accept }, scopes, signal: opts.signal });
    if (get.status === 404) {
      discard(get.body);
      if (ref.digest) return this.resolveFromBlobs(repo, ref, name, opts.signal);
      throw new NotFoundError(`${name}: not found`, { reference: name });
    }
    if (get.status !== 200) await failResponse(get, `resolving ${name}`, repo);
    const bytes = await readBody(get.body, MAX_MANIFEST_SIZE);
    if (!bytes) throw new ResourceExhaustedError(`${name}: manifest over the ${MAX_MANIFEST_SIZE}-byte limit`, { reference: name });
    // Hash with the reference's algorithm (name@sha512:… is valid), sha256 for a tag.
    const digest = digestOf(bytes, ref.digest ? parseDigest(ref.digest).algorithm : 'sha256');
    if (ref.digest && ref.digest !== digest) {
      throw new DigestMismatchError(`${name}: manifest content has digest ${digest}`, { expected: ref.digest, digest });
    }
    const dcd = header(get, Header.ContentDigest);
    if (!ref.digest && dcd && isDigest(dcd) && parseDigest(dcd).algorithm === 'sha256' && dcd !== digest) {
      throw new DigestMismatchError(`${name}: Docker-Content-Digest ${dcd} does not match the content's ${digest}`, { expected: dcd, digest });
    }
    const parsedManifest = parseManifest(bytes, header(get, 'content-type'));
    this.rememberManifest(digest, bytes);
    return { name, ref, repository: repo, descriptor: { mediaType: parsedManifest.mediaType, digest, size: bytes.length } };
  }

  /**
   * containerd's FetchByDigest fallback: a digest the manifests endpoint does not know (404) may still be
   * stored as a plain blob of the repository (registries that keep referrers or foreign manifests that
   * way). The blob endpoint answers application/octet-stream, so the media type comes from the JSON itself.
   */
  private async resolveFromBlobs(repo: Repository, ref: NamedReference, name: string, signal?: AbortSignal): Promise<Resolved> {
    const digest = ref.digest as Digest;
    const bytes = await this.manifestBlob(repo, digest, MAX_MANIFEST_SIZE, signal);
    if (!bytes) throw new NotFoundError(`${name}: not found`, { reference: name });
    const parsed = parseManifest(bytes);
    this.rememberManifest(digest, bytes);
    return { name, ref, repository: repo, descriptor: { mediaType: parsed.mediaType, digest, size: bytes.length } };
  }

  /**
   * GET /v2/<name>/blobs/<digest> for a manifest: at most `cap` bytes, verified against the digest.
   * Undefined when the registry has no such blob either.
   */
  private async manifestBlob(repo: Repository, digest: Digest, cap: number, signal?: AbortSignal): Promise<Buffer | undefined> {
    const res = await this.access.request(repo, {
      method: 'GET', url: `/v2/${repo.path}/blobs/${digest}`, headers: { accept: [...MANIFEST_ACCEPT, '*/*'].join(', ') },
      scopes: [pullScope(repo.path)], signal,
    });
    if (res.status === 404) { discard(res.body); return undefined; }
    if (res.status !== 200) await failResponse(res, `fetching ${digest}`, repo);
    const len = Number(header(res, 'content-length'));
    if (Number.isSafeInteger(len) && len > cap) {
      discard(res.body);
      throw new ResourceExhaustedError(`${digest}: blob is ${len} bytes, over the ${cap}-byte limit for a manifest`, { digest, size: len, limit: cap });
    }
    const bytes = await readBody(res.body, cap);
    if (!bytes) throw new ResourceExhaustedError(`${digest}: blob is over the ${cap}-byte limit for a manifest`, { digest, limit: cap });
    const got = digestOf(bytes, parseDigest(digest).algorithm);
    if (got !== digest) throw new DigestMismatchError(`${digest}: content has digest ${got}`, { expected: digest, digest: got });
    return bytes;
  }

  private rememberManifest(digest: Digest, bytes: Buffer): void {
    this.cache.set(digest, bytes);
    if (this.cache.size > MANIFEST_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
  }

  /**
   * Fetches bytes of a small blob (manifest, index, config) by descriptor, read whole but never beyond
   * `cap` nor the descriptor's size, and verified against its digest and size.
   */
  async fetchBytes(repo: Repository, desc: Descriptor, cap: number, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    // request() retries until the headers arrive; a connection lost in the body is retried here.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.fetchBytesOnce(repo, desc, cap, opts);
      } catch (e) {
        if (!isStowageError(e, 'Unavailable') || stowageErrorOf(e)!.data?.reason !== BODY_READ_FAILED || attempt >= this.access.settings.retry.attempts || opts.signal?.aborted) throw e;
        await pause(backoffMs(this.access.settings.retry, attempt), opts.signal);
      }
    }
  }

  private async fetchBytesOnce(repo: Repository, desc: Descriptor, cap: number, opts: { signal?: AbortSignal }): Promise<Buffer> {
    if (desc.size > cap) throw new ResourceExhaustedError(`${desc.digest}: ${desc.size} bytes is over the ${cap}-byte limit for ${desc.mediaType}`, { digest: desc.digest, size: desc.size, limit: cap });
    const isManifest = (MANIFEST_ACCEPT as readonly string[]).includes(desc.mediaType);
    const cached = isManifest ? this.cache.get(desc.digest) : undefined;
    if (cached && cached.length === desc.size) return cached;
    const url = `/v2/${repo.path}/${isManifest ? 'manifests' : 'blobs'}/${desc.digest}`;
    const accept = isManifest ? manifestAcceptHeader(desc.mediaType) : `${desc.mediaType}, */*`;
    const res = await this.access.request(repo, { method: 'GET', url, headers: { accept }, scopes: [pullScope(repo.path)], signal: opts.signal });
    if (res.status === 404 && isManifest) {
      // Fetching by digest: a manifest the manifests endpoint does not know may be stored as a blob.
      discard(res.body);
      const blob = await this.manifestBlob(repo, desc.digest, desc.size, opts.signal);
      if (!blob) throw new NotFoundError(`${desc.digest}: manifest unknown`, { digest: desc.digest });
      if (blob.length !== desc.size) throw new SizeMismatchError(`${desc.digest}: got ${blob.length} bytes, expected ${desc.size}`, { digest: desc.digest, size: blob.length, expected: desc.size });
      this.rememberManifest(desc.digest, blob);
      return blob;
    }
    if (res.status !== 200) await failResponse(res, `fetching ${desc.digest}`, repo);
    const bytes = await readBody(res.body, desc.size);
    if (!bytes) throw new SizeMismatchError(`${desc.digest}: registry sent more than the ${desc.size} bytes the descriptor says`, { digest: desc.digest, size: desc.size });
    if (bytes.length !== desc.size) throw new SizeMismatchError(`${desc.digest}: got ${bytes.length} bytes, expected ${desc.size}`, { digest: desc.digest, size: bytes.length, expected: desc.size });
    const digest = digestOf(bytes, parseDigest(desc.digest).algorithm);
    if (digest !== desc.digest) throw new DigestMismatchError(`${desc.digest}: content has digest ${digest}`, { expected: desc.digest, digest });
    if (isManifest) this.rememberManifest(desc.digest, bytes);
    return bytes;
  }
}
