import type { Readable } from 'node:stream';
import { readBlob, type Provider, type ReaderAt } from '../content/index.js';
import { DigestMismatchError, InvalidArgumentError, NotFoundError, UnavailableError, isStowageError, throwIfAborted } from '../errors/index.js';
import {
  MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, digestOf, formatPlatform, isDigest, isManifestOrIndexType, parseManifest, parseNormalizedNamed, referenceString,
  tagNameOnly, type Descriptor, type Digest, type NamedReference, type Reference,
} from '../oci/index.js';
import { pullScope, pushScope } from './auth.js';
import type { RegistryClient, Repository } from './client.js';
import { runLimited, type ProgressFn } from './progress.js';
import { DISTRIBUTION_SOURCE_PREFIX } from './pull.js';
import { discard, header, type HttpResponse } from './transport.js';

/** Content labels of a blob (from the metadata DB or the store); injected so distribution needs no DB. */
export type LabelLookup = (desc: Descriptor) => Promise<Record<string, string>> | Record<string, string>;

export interface PushBlobOptions {
  signal?: AbortSignal;
  onProgress?: ProgressFn;
  labelsOf?: LabelLookup;
}

export type PushBlobStatus = 'exists' | 'mounted' | 'uploaded';

export interface PushOptions extends PushBlobOptions {
  concurrency?: number;
  /** Only push these children of an index (default: every child manifest present in the provider). */
  filterChildren?: (desc: Descriptor) => boolean;
}

export interface PushResult {
  name: string;
  root: Descriptor;
  blobs: Record<PushBlobStatus, number>;
  bytesUploaded: number;
}

/** The repo to mount from: a source on the same registry, not the target, the longest common path prefix. */
export function mountSource(labels: Record<string, string>, repo: Pick<Repository, 'domain' | 'path'>): string | undefined {
  const value = labels[`${DISTRIBUTION_SOURCE_PREFIX}${repo.domain}`];
  if (!value) return undefined;
  const common = (a: string, b: string): number => {
    const x = a.split('/');
    const y = b.split('/');
    let i = 0;
    while (i < x.length && i < y.length && x[i] === y[i]) i++;
    return i;
  };
  let best: string | undefined;
  let bestScore = -1;
  for (const candidate of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (candidate === repo.path) continue;
    const score = common(candidate, repo.path);
    if (score > bestScore) { best = candidate; bestScore = score; }
  }
  return best;
}

/** Resolves an upload Location against the request URL, keeping its query, adding ours. */
function uploadUrl(location: string | undefined, base: URL, params: Record<string, string> = {}): URL {
  if (!location) throw new UnavailableError('registry started an upload without a Location', { url: base.origin });
  const u = new URL(location, base);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u;
}

function streamRange(ra: ReaderAt, start: number, end: number): () => Readable {
  return () => ra.stream({ start, end });
}

async function expectStatus(client: RegistryClient, res: HttpResponse, ok: number[], what: string, repo: Repository): Promise<void> {
  if (ok.includes(res.status)) return;
  await client.fail(res, what, repo);
}

function checkDigestHeader(res: HttpResponse, digest: Digest): void {
  const got = header(res, 'docker-content-digest');
  if (got && isDigest(got) && got !== digest) throw new DigestMismatchError(`registry stored ${got}, expected ${digest}`, { expected: digest, digest: got });
}

/**
 * Pushes one blob: HEAD (exists → done), cross-repository mount when a distribution.source label names
 * another repo on the same registry, else POST an upload and PUT it whole (small blobs) or PATCH it in
 * chunks (large ones), resuming an interrupted chunked upload from the registry's reported Range.
 */
export async function pushBlob(client: RegistryClient, repo: Repository, provider: Provider, desc: Descriptor, opts: PushBlobOptions = {}): Promise<PushBlobStatus> {
  const { signal } = opts;
  const emit = (phase: 'uploading' | 'exists' | 'mounted' | 'done' | 'verifying', current: number): void =>
    opts.onProgress?.({ digest: desc.digest, mediaType: desc.mediaType, phase, current, total: desc.size });
  const blobPath = `/v2/${repo.path}/blobs/${desc.digest}`;
  let scopes = [pushScope(repo.path)];

  const head = await client.request(repo, { method: 'HEAD', url: blobPath, scopes, signal });
  discard(head.body);
  if (head.status === 200) { emit('exists', desc.size); return 'exists'; }

  let location: URL | undefined;
  let minChunk = 0;
  const from = opts.labelsOf ? mountSource(await opts.labelsOf(desc), repo) : undefined;
  if (from) {
    const mountScopes = [...scopes, pullScope(from)];
    const url = `/v2/${repo.path}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`;
    const res = await client.request(repo, { method: 'POST', url, scopes: mountScopes, signal });
    discard(res.body);
    if (res.status === 201) { emit('mounted', desc.size); return 'mounted'; }
    if (res.status === 202) {
      location = uploadUrl(header(res, 'location'), res.url);
      scopes = mountScopes;
      minChunk = Number(header(res, 'oci-chunk-min-length') ?? 0) || 0;
    }
    // 401/403/404: the source may be private or gone; an ordinary upload follows.
  }
  if (!location) {
    const res = await client.request(repo, { method: 'POST', url: `/v2/${repo.path}/blobs/uploads/`, scopes, signal });
    discard(res.body);
    if (res.status === 201) { emit('exists', desc.size); return 'exists'; }
    if (res.status !== 202) await client.fail(res, `starting upload of ${desc.digest}`, repo);
    location = uploadUrl(header(res, 'location'), res.url);
    minChunk = Number(header(res, 'oci-chunk-min-length') ?? 0) || 0;
  }

  const ra = await provider.readerAt(desc);
  try {
    if (ra.size !== desc.size) throw new InvalidArgumentError(`${desc.digest}: local blob has ${ra.size} bytes, descriptor says ${desc.size}`);
    let res: HttpResponse;
    if (desc.size <= client.monolithicThreshold) {
      emit('uploading', 0);
      res = await client.request(repo, {
        method: 'PUT', url: uploadUrl(location.toString(), location, { digest: desc.digest }), scopes, signal,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body: streamRange(ra, 0, desc.size),
      });
    } else {
      // The registry's OCI-Chunk-Min-Length wins over a smaller configured chunk size.
      location = await patchChunks(client, repo, ra, desc, location, scopes, Math.max(client.chunkSize, minChunk), emit, signal);
      res = await client.request(repo, {
        method: 'PUT', url: uploadUrl(location.toString(), location, { digest: desc.digest }), scopes, signal,
        headers: { 'content-type': 'application/octet-stream', 'content-length': '0' }, body: Buffer.alloc(0),
      });
    }
    discard(res.body);
    await expectStatus(client, res, [200, 201, 202, 204], `uploading ${desc.digest}`, repo);
    checkDigestHeader(res, desc.digest);
    emit('done', desc.size);
    return 'uploaded';
  } finally {
    await ra.close().catch(() => {});
  }
}

/** Asks the registry how much of an upload it holds (`GET <location>` → 204, `Range: 0-<end>`). */
async function uploadOffset(client: RegistryClient, repo: Repository, location: URL, scopes: string[], signal?: AbortSignal): Promise<{ offset: number; location: URL } | undefined> {
  const res = await client.request(repo, { method: 'GET', url: location, scopes, signal, followRedirects: false });
  discard(res.body);
  if (res.status !== 204 && res.status !== 200) return undefined;
  const m = /^(?:bytes=)?0-(\d+)$/.exec(header(res, 'range') ?? '');
  const next = header(res, 'location') ? uploadUrl(header(res, 'location'), location) : location;
  return { offset: m ? Number(m[1]) + 1 : 0, location: next };
}

async function patchChunks(
  client: RegistryClient, repo: Repository, ra: ReaderAt, desc: Descriptor, start: URL, scopes: string[], chunkSize: number,
  emit: (phase: 'uploading', current: number) => void, signal?: AbortSignal,
): Promise<URL> {
  let location = start;
  let offset = 0;
  let failures = 0;
  while (offset < desc.size) {
    throwIfAborted(signal);
    const end = Math.min(desc.size, offset + chunkSize);
    emit('uploading', offset);
    let res: HttpResponse | undefined;
    try {
      res = await client.request(repo, {
        method: 'PATCH', url: location, scopes, signal, noRetryStatuses: [500, 502, 503, 504],
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${end - 1}`, 'content-length': String(end - offset) },
        body: streamRange(ra, offset, end),
      });
    } catch (e) {
      if (isStowageError(e, 'Aborted') || !isStowageError(e, 'Unavailable')) throw e;
    }
    if (res && res.status === 202) {
      discard(res.body);
      location = uploadUrl(header(res, 'location') ?? location.toString(), location);
      const m = /^(?:bytes=)?0-(\d+)$/.exec(header(res, 'range') ?? '');
      offset = m ? Number(m[1]) + 1 : end;
      failures = 0;
      continue;
    }
    // A failed or refused chunk (416 out of order, 5xx, connection lost): ask where the upload stands.
    if (res) discard(res.body);
    if (++failures > client.retry.attempts) {
      if (res) await client.fail(res, `uploading ${desc.digest}`, repo);
      throw new UnavailableError(`uploading ${desc.digest}: chunk at ${offset} keeps failing`, { digest: desc.digest, offset });
    }
    const st = await uploadOffset(client, repo, location, scopes, signal);
    if (!st) {
      if (res) await client.fail(res, `uploading ${desc.digest}`, repo);
      throw new UnavailableError(`uploading ${desc.digest}: the registry lost the upload session`, { digest: desc.digest, offset });
    }
    location = st.location;
    offset = st.offset;
  }
  emit('uploading', desc.size);
  return location;
}

/** PUTs a manifest or index by tag or digest; the registry's digest must equal ours. */
export async function pushManifest(client: RegistryClient, repo: Repository, bytes: Buffer, mediaType: string, reference: string, opts: { signal?: AbortSignal } = {}): Promise<Descriptor> {
  const digest = digestOf(bytes);
  const res = await client.request(repo, {
    method: 'PUT', url: `/v2/${repo.path}/manifests/${reference}`, scopes: [pushScope(repo.path)], signal: opts.signal,
    headers: { 'content-type': mediaType }, body: bytes,
  });
  discard(res.body);
  await expectStatus(client, res, [200, 201, 202, 204], `pushing manifest ${reference}`, repo);
  checkDigestHeader(res, digest);
  return { mediaType, digest, size: bytes.length };
}

/**
 * Pushes the graph under `root` from the provider to `reference` (a tag, or a digest that must equal the
 * root's): layers and configs, then manifests by digest, then the root by tag or digest.
 */
export async function pushImage(client: RegistryClient, reference: string | Reference, provider: Provider, root: Descriptor, opts: PushOptions = {}): Promise<PushResult> {
  const { signal } = opts;
  const parsed = typeof reference === 'string' ? parseNormalizedNamed(reference) : reference;
  const ref = tagNameOnly(parsed) as NamedReference;
  if (ref.digest && ref.digest !== root.digest) throw new InvalidArgumentError(`push: reference digest ${ref.digest} is not the image's ${root.digest}`);
  const repo = client.repository(ref);
  const result: PushResult = { name: referenceString(ref), root, blobs: { exists: 0, mounted: 0, uploaded: 0 }, bytesUploaded: 0 };

  const manifests: Array<{ desc: Descriptor; bytes: Buffer }> = [];
  const blobs = new Map<Digest, Descriptor>();
  const walk = async (desc: Descriptor, depth: number): Promise<void> => {
    if (depth > 4) throw new InvalidArgumentError(`${desc.digest}: indexes nested too deep`);
    let bytes: Buffer;
    try {
      bytes = await readBlob(provider, desc, MAX_MANIFEST_SIZE);
    } catch (e) {
      if (depth > 0 && isStowageError(e, 'NotFound')) {
        const p = desc.platform ? ` (${formatPlatform(desc.platform)})` : '';
        throw new NotFoundError(`push: the index references manifest ${desc.digest}${p}, which is not in the local store; push one platform instead`, { digest: desc.digest }, { cause: e });
      }
      throw e;
    }
    const p = parseManifest(bytes, desc.mediaType);
    if (p.kind === 'index') {
      for (const child of p.index.manifests) {
        if (opts.filterChildren && !opts.filterChildren(child)) continue;
        if (isManifestOrIndexType(child.mediaType)) await walk(child, depth + 1);
      }
    } else {
      if (p.manifest.config.size > MAX_CONFIG_SIZE) throw new InvalidArgumentError(`${p.manifest.config.digest}: config over ${MAX_CONFIG_SIZE} bytes`);
      blobs.set(p.manifest.config.digest, p.manifest.config);
      for (const l of p.manifest.layers) blobs.set(l.digest, l);
    }
    manifests.push({ desc, bytes });
  };
  await walk(root, 0);

  await runLimited([...blobs.values()], opts.concurrency ?? client.concurrency, async (d) => {
    const status = await pushBlob(client, repo, provider, d, opts);
    result.blobs[status]++;
    if (status === 'uploaded') result.bytesUploaded += d.size;
  }, signal);
  throwIfAborted(signal);

  // Children first (by digest), the root last under the requested tag (or digest).
  for (const m of manifests) {
    const isRoot = m.desc.digest === root.digest;
    if (!isRoot) await pushManifest(client, repo, m.bytes, m.desc.mediaType, m.desc.digest, { signal });
  }
  const top = manifests.find((m) => m.desc.digest === root.digest)!;
  await pushManifest(client, repo, top.bytes, root.mediaType, ref.digest ?? ref.tag!, { signal });
  return result;
}
