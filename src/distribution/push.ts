import type { Readable } from 'node:stream';
import { distributionSourceKey, readBlob, type Provider, type ReaderAt } from '../content/index.js';
import { DigestMismatchError, InvalidArgumentError, NotFoundError, UnavailableError, isStowageError, throwIfAborted, stowageErrorOf } from '../errors/index.js';
import {
  MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, digestOf, formatPlatform, isDigest, isManifestOrIndexType, parseManifest, referenceString,
  type Descriptor, type Digest, type NamedReference,
} from '../oci/index.js';
import type { RepositoryAccess, Repository } from './access.js';
import { pullScope, pushScope } from './auth.js';
import { failResponse } from './errors.js';
import type { TransferLimit } from './limit.js';
import { runLimited, type ProgressFn } from './progress.js';
import { Header, formatChunkRange, parseUploadRange } from './protocol.js';
import { discard, header, type HttpResponse } from './transport.js';
import { UploadStateStore } from './upload-state.js';

/** Content labels of a blob (from the metadata DB or the store); injected so distribution needs no DB. */
export type LabelLookup = (desc: Descriptor) => Promise<Record<string, string>> | Record<string, string>;

export interface PushBlobOptions {
  signal?: AbortSignal;
  onProgress?: ProgressFn;
  labelsOf?: LabelLookup;
  /**
   * Keep chunked upload sessions in this directory (one small private file per blob) so that a later
   * push, after a killed process or a dropped connection, continues where the registry stands instead
   * of resending the whole blob. The image service passes `<store root>/uploads`. Unset: in memory only.
   */
  uploadStateDir?: string;
}

export type PushBlobStatus = 'exists' | 'mounted' | 'uploaded';

export interface PushOptions extends PushBlobOptions {
  /** Blobs at once; a TransferLimit may change while the transfer runs. */
  concurrency?: number | TransferLimit;
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
  const value = labels[distributionSourceKey(repo.domain)];
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
  // containerd: a Location that is a host and path without a scheme (`host:5000/v2/…`) gets the registry's
  // scheme; URL parsing would otherwise read `host:` as the scheme.
  const first = /^([^/?#]*)\//.exec(location)?.[1];
  const schemeless = !location.includes('://') && first !== undefined && !first.startsWith('.') && (/[.:]/.test(first) || first === 'localhost');
  const u = new URL(schemeless ? `${base.protocol}//${location}` : location, base);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u;
}

function streamRange(ra: ReaderAt, start: number, end: number): () => Readable {
  return () => ra.stream({ start, end });
}

/** Push failures keep the registry's own words: failResponse without a repository (its 401 wording is for pulls). */
async function expectStatus(res: HttpResponse, ok: number[], what: string): Promise<void> {
  if (ok.includes(res.status)) return;
  await failResponse(res, what);
}

function checkDigestHeader(res: HttpResponse, digest: Digest): void {
  const got = header(res, Header.ContentDigest);
  if (got && isDigest(got) && got !== digest) throw new DigestMismatchError(`registry stored ${got}, expected ${digest}`, { expected: digest, digest: got });
}

/** An upload session: where the next bytes go and how many the registry holds. */
interface Session {
  location: URL;
  offset: number;
  /** The registry's OCI-Chunk-Min-Length (0 when it gave none). */
  minChunk: number;
  startedAt?: string;
}

type Emit = (phase: 'uploading' | 'exists' | 'mounted' | 'done' | 'verifying', current: number, note?: 'resumed' | 'retrying') => void;

/** Errors after which a saved session is still worth asking about on the next push. */
function keepsSession(e: unknown): boolean {
  const se = stowageErrorOf(e);
  if (!se) return true;
  return ['Unavailable', 'Aborted', 'Unauthorized', 'ResourceExhausted'].includes(se.code);
}

/** The session a 202 to an upload POST began: its Location, and the registry's OCI-Chunk-Min-Length. */
function newSession(res: HttpResponse): Session {
  return { location: uploadUrl(header(res, 'location'), res.url), offset: 0, minChunk: Number(header(res, Header.OciChunkMinLength) ?? 0) || 0 };
}

/**
 * Starts an upload: a cross-repository mount when `from` is set (201 → mounted; 202 → an ordinary session
 * began), else a plain POST (201 here also means the registry has the blob).
 */
async function startUpload(
  client: RepositoryAccess, repo: Repository, desc: Descriptor, from: string | undefined, scopes: string[], signal?: AbortSignal,
): Promise<{ status: 'exists' | 'mounted' } | { status: 'upload'; session: Session; scopes: string[] }> {
  if (from) {
    const mountScopes = [...scopes, pullScope(from)];
    const url = `/v2/${repo.path}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`;
    const res = await client.request(repo, { method: 'POST', url, scopes: mountScopes, signal });
    discard(res.body);
    if (res.status === 201) return { status: 'mounted' };
    if (res.status === 202) {
      return { status: 'upload', scopes: mountScopes, session: newSession(res) };
    }
    // 401/403/404: the source may be private or gone; an ordinary upload follows.
  }
  const res = await client.request(repo, { method: 'POST', url: `/v2/${repo.path}/blobs/uploads/`, scopes, signal });
  discard(res.body);
  if (res.status === 201) return { status: 'exists' };
  if (res.status !== 202) await failResponse(res, `starting upload of ${desc.digest}`);
  return { status: 'upload', scopes, session: newSession(res) };
}

/**
 * A session saved by an earlier push (maybe another process), if the registry still knows it:
 * `GET <location>` → 204 with `Range` and a fresh Location. Unknown or refused sessions (distribution
 * answers 404 BLOB_UPLOAD_INVALID when the upload holds bytes its signed state does not account for, e.g.
 * half a chunk from a killed process) are forgotten, and the caller starts over.
 */
async function resumeSession(
  client: RepositoryAccess, repo: Repository, desc: Descriptor, states: UploadStateStore, scopes: string[], signal?: AbortSignal,
): Promise<Session | undefined> {
  const { state } = await states.load(repo.host, repo.path, desc.digest, desc.size);
  if (!state) return undefined;
  const st = await uploadStatus(client, repo, new URL(state.location), scopes, state.offset, signal);
  if (!st || st.offset > desc.size) {
    await states.remove(repo.host, repo.path, desc.digest);
    return undefined;
  }
  return { location: st.location, offset: st.offset, minChunk: state.minChunk, startedAt: state.startedAt };
}

/**
 * Pushes one blob: HEAD (exists → done), cross-repository mount when a distribution.source label names
 * another repo on the same registry, else POST an upload and PUT it whole (small blobs) or PATCH it in
 * chunks (large ones). A chunked upload resumes from the registry's reported Range after a failed chunk
 * and, with `uploadStateDir`, across processes: the session is saved after every accepted chunk and a
 * later push of the same blob continues it. A session the registry no longer accepts is started over.
 */
export async function pushBlob(client: RepositoryAccess, repo: Repository, provider: Provider, desc: Descriptor, opts: PushBlobOptions = {}): Promise<PushBlobStatus> {
  const { signal } = opts;
  const emit: Emit = (phase, current, note) =>
    opts.onProgress?.({ digest: desc.digest, mediaType: desc.mediaType, phase, current, total: desc.size, ...(note ? { note } : {}) });
  const blobPath = `/v2/${repo.path}/blobs/${desc.digest}`;
  let scopes = [pushScope(repo.path)];
  const chunked = desc.size > client.settings.monolithicThreshold;
  const states = opts.uploadStateDir ? new UploadStateStore(opts.uploadStateDir) : undefined;
  const forget = async (): Promise<void> => { await states?.remove(repo.host, repo.path, desc.digest); };
  const save = async (s: Session): Promise<void> => {
    await states?.save({
      host: repo.host, repository: repo.path, digest: desc.digest, size: desc.size,
      location: s.location.toString(), offset: s.offset, minChunk: s.minChunk, startedAt: s.startedAt,
    });
  };

  const head = await client.request(repo, { method: 'HEAD', url: blobPath, scopes, signal });
  discard(head.body);
  if (head.status === 200) { await forget(); emit('exists', desc.size); return 'exists'; }

  let session = states && chunked ? await resumeSession(client, repo, desc, states, scopes, signal) : undefined;
  if (session) {
    emit('uploading', session.offset, 'resumed');
  } else {
    const from = opts.labelsOf ? mountSource(await opts.labelsOf(desc), repo) : undefined;
    const started = await startUpload(client, repo, desc, from, scopes, signal);
    if (started.status !== 'upload') { await forget(); emit(started.status, desc.size); return started.status; }
    session = started.session;
    scopes = started.scopes;
  }

  const ra = await provider.readerAt(desc);
  try {
    if (ra.size !== desc.size) throw new InvalidArgumentError(`${desc.digest}: local blob has ${ra.size} bytes, descriptor says ${desc.size}`);
    let res: HttpResponse;
    if (!chunked) {
      emit('uploading', 0);
      res = await client.request(repo, {
        method: 'PUT', url: uploadUrl(session.location.toString(), session.location, { digest: desc.digest }), scopes, signal,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body: streamRange(ra, 0, desc.size),
      });
    } else {
      await save(session);
      for (let restarted = false; ;) {
        // The registry's OCI-Chunk-Min-Length wins over a smaller configured chunk size.
        const out = await patchChunks(client, repo, ra, desc, session, scopes, Math.max(client.settings.chunkSize, session.minChunk), emit, save, signal);
        if (!('lost' in out)) break;
        // The registry gave up the session (e.g. it kept half of a chunk whose connection dropped and now
        // refuses the session's state): start a fresh upload, once.
        await forget();
        if (restarted) throw out.lost;
        restarted = true;
        const started = await startUpload(client, repo, desc, undefined, [pushScope(repo.path)], signal);
        if (started.status !== 'upload') { emit('exists', desc.size); return 'exists'; }
        session = started.session;
        emit('uploading', 0, 'retrying');
        await save(session);
      }
      res = await client.request(repo, {
        method: 'PUT', url: uploadUrl(session.location.toString(), session.location, { digest: desc.digest }), scopes, signal,
        headers: { 'content-type': 'application/octet-stream', 'content-length': '0' }, body: Buffer.alloc(0),
      });
    }
    if (res.status === 404) {
      // The retry loop resends a PUT whose answer was lost; if the first one committed, the session is
      // gone (BLOB_UPLOAD_UNKNOWN) but the blob is there: ask before calling the push failed.
      const check = await client.request(repo, { method: 'HEAD', url: blobPath, scopes, signal });
      discard(check.body);
      if (check.status === 200) { discard(res.body); await forget(); emit('done', desc.size); return 'uploaded'; }
    }
    discard(res.body);
    await expectStatus(res, [200, 201, 202, 204], `uploading ${desc.digest}`);
    checkDigestHeader(res, desc.digest);
    await forget();
    emit('done', desc.size);
    return 'uploaded';
  } catch (e) {
    // Keep the session for the next push only when it may still be good (network, abort, auth, throttling).
    if (!keepsSession(e)) await forget();
    throw e;
  } finally {
    await ra.close().catch(() => {});
  }
}

/**
 * Asks the registry how much of an upload it holds (`GET <location>` → 204, `Range: 0-<end>`, fresh
 * Location). undefined: the registry no longer knows or accepts the session (404/400/410/416). Other
 * failures throw (a registry that is down says nothing about the session).
 * `known` settles `Range: 0-0`, which distribution also sends for an empty upload.
 */
async function uploadStatus(
  client: RepositoryAccess, repo: Repository, location: URL, scopes: string[], known: number, signal?: AbortSignal,
): Promise<{ offset: number; location: URL } | undefined> {
  const res = await client.request(repo, { method: 'GET', url: location, scopes, signal, followRedirects: false });
  if ([400, 404, 410, 416].includes(res.status)) { discard(res.body); return undefined; }
  if (res.status !== 204 && res.status !== 200) await failResponse(res, 'checking upload status');
  discard(res.body);
  const next = header(res, 'location') ? uploadUrl(header(res, 'location'), location) : location;
  const range = header(res, 'range');
  const end = parseUploadRange(range);
  if (end === undefined) return range === undefined && known === 0 ? { offset: 0, location: next } : undefined;
  if (end === 0) return known <= 1 ? { offset: known, location: next } : undefined;
  return { offset: end + 1, location: next };
}

/**
 * PATCHes [session.offset, size) in chunks, saving the session after every chunk the registry accepts.
 * Resolves with the final Location, or `lost` when the registry no longer knows the session.
 */
async function patchChunks(
  client: RepositoryAccess, repo: Repository, ra: ReaderAt, desc: Descriptor, session: Session, scopes: string[], chunkSize: number,
  emit: Emit, save: (s: Session) => Promise<void>, signal?: AbortSignal,
): Promise<{ location: URL } | { lost: Error }> {
  let failures = 0;
  while (session.offset < desc.size) {
    throwIfAborted(signal);
    const offset = session.offset;
    const end = Math.min(desc.size, offset + chunkSize);
    emit('uploading', offset);
    let res: HttpResponse | undefined;
    try {
      res = await client.request(repo, {
        method: 'PATCH', url: session.location, scopes, signal, noRetryStatuses: [500, 502, 503, 504],
        headers: { 'content-type': 'application/octet-stream', 'content-range': formatChunkRange(offset, end - offset), 'content-length': String(end - offset) },
        body: streamRange(ra, offset, end),
      });
    } catch (e) {
      if (isStowageError(e, 'Aborted') || !isStowageError(e, 'Unavailable')) throw e;
    }
    if (res && res.status === 202) {
      discard(res.body);
      session.location = uploadUrl(header(res, 'location') ?? session.location.toString(), session.location);
      const last = parseUploadRange(header(res, 'range'));
      session.offset = last !== undefined ? last + 1 : end;
      failures = 0;
      await save(session);
      continue;
    }
    // A failed or refused chunk (416 out of order, 5xx, connection lost): ask where the upload stands.
    if (res) discard(res.body);
    if (++failures > client.settings.retry.attempts) {
      if (res) await failResponse(res, `uploading ${desc.digest}`);
      throw new UnavailableError(`uploading ${desc.digest}: chunk at ${offset} keeps failing`, { digest: desc.digest, offset });
    }
    const st = await uploadStatus(client, repo, session.location, scopes, offset, signal);
    if (!st || st.offset > desc.size) {
      return { lost: new NotFoundError(`uploading ${desc.digest}: the registry lost the upload session at ${offset}`, { digest: desc.digest, offset }) };
    }
    session.location = st.location;
    session.offset = st.offset;
    await save(session);
  }
  emit('uploading', desc.size);
  return { location: session.location };
}

/** PUTs a manifest or index by tag or digest; the registry's digest must equal ours. */
export async function pushManifest(client: RepositoryAccess, repo: Repository, bytes: Buffer, mediaType: string, reference: string, opts: { signal?: AbortSignal } = {}): Promise<Descriptor> {
  const digest = digestOf(bytes);
  const res = await client.request(repo, {
    method: 'PUT', url: `/v2/${repo.path}/manifests/${reference}`, scopes: [pushScope(repo.path)], signal: opts.signal,
    headers: { 'content-type': mediaType }, body: bytes,
  });
  discard(res.body);
  await expectStatus(res, [200, 201, 202, 204], `pushing manifest ${reference}`);
  checkDigestHeader(res, digest);
  return { mediaType, digest, size: bytes.length };
}

/**
 * Pushes the graph under `root` from the provider to `repo` under `ref`'s tag (or its digest, which must
 * equal the root's): layers and configs, then manifests by digest, then the root by tag or digest.
 */
export async function pushGraph(client: RepositoryAccess, repo: Repository, ref: NamedReference, provider: Provider, root: Descriptor, opts: PushOptions = {}): Promise<PushResult> {
  const { signal } = opts;
  if (ref.digest && ref.digest !== root.digest) throw new InvalidArgumentError(`push: reference digest ${ref.digest} is not the image's ${root.digest}`);
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

  await runLimited([...blobs.values()], opts.concurrency ?? client.settings.concurrency, async (d, blobSignal) => {
    const status = await pushBlob(client, repo, provider, d, { ...opts, signal: blobSignal });
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
