/**
 * The store seen as a registry's repositories: what the registry server (src/server/registry) serves
 * and writes, with no HTTP in it.
 *
 * Names. An image `REGISTRY/PATH:TAG` of the store is served as repository `PATH`, tag `TAG`, and also
 * under the qualified repository `R/PATH`, where R is REGISTRY with `:` written as `-`
 * (`docker.io/library/alpine`, `localhost-5000/fixtures/app`), so that every image stays reachable when
 * two registries hold the same path. When they do, the bare `PATH:TAG` is the image of, in order: the
 * server's own registry name (images pushed to it), then `docker.io`, then the other registries in byte
 * order of their names. A push to repository `N`, tag `T` records the image `<own registry>/N:T`.
 *
 * Content is one namespace: a blob or a manifest stored once is served by digest under any repository
 * (the store is one trust domain, as a content-addressed cache), and cross-repository mounts of a
 * present blob always succeed.
 *
 * Lifetime. Uploaded blobs and manifests pushed by digest are held by a lease for LEASE_TTL_MS, so that
 * the manifest naming them may come later; tagged manifests are image records, and reference their
 * children through containerd's GC labels like pulled images. Uploads are content ingests: an upload
 * session is a lease (`registry-upload-<id>`) and the ingest of the same name, both on disk, so a
 * killed server resumes every session it acknowledged.
 */
import { randomUUID } from 'node:crypto';
import type { ReaderAt, Writer } from '../content/index.js';
import {
  DigestMismatchError, FailedPreconditionError, NotFoundError, ResourceExhaustedError, isStowageError,
} from '../errors/index.js';
import type { ImageRecord } from '../metadata/index.js';
import {
  MAX_MANIFEST_SIZE, baseMediaType, digestOf, isDigest, isManifestOrIndexType, parseDigest, parseManifest,
  parseNormalizedNamed, validateTag, type Descriptor, type Digest, type ParsedManifest,
} from '../oci/index.js';
import type { Ctx } from './context.js';
import { emitImageEvent } from './events.js';
import { isDanglingName } from './names.js';
import { setName } from './tag.js';
import { setLabel } from './unpack.js';
import { LEASE_PURPOSE, REGISTRY_MEDIA_TYPE, REGISTRY_SUBJECT, childGcLabels, distributionSourceKey, gcRefManifest } from '../content/index.js';

/** How long an uploaded blob or a manifest pushed by digest is kept before something must name it. */
export const LEASE_TTL_MS = 24 * 3600_000;

const UPLOAD_LEASE = 'registry-upload-';
const BLOB_LEASE = 'registry-blob-';
const SESSION_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface RepositoryViewOptions {
  /** The registry name images pushed to the server are recorded under (`127.0.0.1:5000`). */
  registry: string;
}

/** A manifest or index as stored: its exact bytes and type. */
export interface StoredManifest { descriptor: Descriptor; bytes: Buffer; parsed: ParsedManifest }

/** What a manifest PUT stored. */
export interface PutManifestResult { descriptor: Descriptor; subject?: Digest; recordName?: string }

/** The registry name as a repository path component: lower case, `:` → `-`; undefined when it cannot be one. */
export function qualifiedComponent(domain: string): string | undefined {
  const c = domain.toLowerCase().replace(/:/g, '-');
  return /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/.test(c) ? c : undefined;
}

interface Served { repo: string; tag: string; rank: string; record: ImageRecord }

export class RepositoryView {
  readonly registry: string;

  constructor(private readonly ctx: Ctx, opts: RepositoryViewOptions) {
    this.registry = opts.registry;
  }

  // ---- names

  /** Every (repository, tag) the store serves, with the rank that settles a shared path. */
  private served(): Served[] {
    const out: Served[] = [];
    for (const record of this.ctx.md.images.list()) {
      if (isDanglingName(record.name)) continue;
      let ref;
      try { ref = parseNormalizedNamed(record.name); } catch { continue; }
      if (ref.tag === undefined) continue;
      const order = ref.domain === this.registry ? '0' : ref.domain === 'docker.io' ? '1' : `2${ref.domain}`;
      out.push({ repo: ref.path, tag: ref.tag, rank: order, record });
      const q = qualifiedComponent(ref.domain);
      if (q) out.push({ repo: `${q}/${ref.path}`, tag: ref.tag, rank: `3${ref.domain}`, record });
    }
    return out;
  }

  /** Repository names, sorted. */
  repositories(): string[] {
    return [...new Set(this.served().map((s) => s.repo))].sort();
  }

  /** The repository's tags, sorted (byte order); undefined when no image names the repository. */
  tags(repo: string): string[] | undefined {
    const tags = new Set(this.served().filter((s) => s.repo === repo).map((s) => s.tag));
    return tags.size === 0 ? undefined : [...tags].sort();
  }

  /** The record that `repo:tag` serves, undefined when none does. */
  resolveTag(repo: string, tag: string): ImageRecord | undefined {
    let best: Served | undefined;
    for (const s of this.served()) {
      if (s.repo !== repo || s.tag !== tag) continue;
      if (!best || s.rank < best.rank) best = s;
    }
    return best?.record;
  }

  // ---- blobs

  /** Size of a present blob, undefined when absent. */
  async blobSize(digest: Digest): Promise<number | undefined> {
    try { return (await this.ctx.content.info(digest)).size; } catch (e) {
      if (isStowageError(e, 'NotFound')) return undefined;
      throw e;
    }
  }

  /** Random access to a present blob (NotFound otherwise); the caller closes it. */
  openBlob(digest: Digest): Promise<ReaderAt> {
    return this.ctx.content.readerAt({ digest });
  }

  /** A manifest or index stored under `digest`, undefined when the blob is absent or is not one. */
  async manifest(digest: Digest): Promise<StoredManifest | undefined> {
    const size = await this.blobSize(digest);
    if (size === undefined || size > MAX_MANIFEST_SIZE) return undefined;
    const bytes = await this.ctx.blobs().bytes({ digest, size }, MAX_MANIFEST_SIZE);
    let declared: string | undefined;
    try { declared = (await this.ctx.content.info(digest)).labels[REGISTRY_MEDIA_TYPE]; } catch { /* gone meanwhile */ }
    let parsed: ParsedManifest;
    try { parsed = parseManifest(bytes, declared); } catch { return undefined; }
    return { descriptor: { mediaType: parsed.mediaType, digest, size: bytes.length }, bytes, parsed };
  }

  /** A present blob becomes part of `repo` (a cross-repository mount): held like an upload. */
  async mount(digest: Digest, repo: string): Promise<boolean> {
    const size = await this.blobSize(digest);
    if (size === undefined) return false;
    this.holdBlob(digest, size);
    await this.addSource(digest, repo);
    return true;
  }

  // ---- upload sessions

  /** Starts an upload session; returns its id. */
  startUpload(): string {
    const id = randomUUID();
    this.ctx.md.leases.create({ id: `${UPLOAD_LEASE}${id}`, expiresInMs: LEASE_TTL_MS, labels: { [LEASE_PURPOSE]: 'registry upload' } });
    return id;
  }

  /** Whether the session exists (it was started and neither finished nor cancelled, here or before a restart). */
  hasUpload(id: string): boolean {
    if (!SESSION_RE.test(id)) return false;
    try { this.ctx.md.leases.listResources(`${UPLOAD_LEASE}${id}`); return true; } catch { return false; }
  }

  /** The session's ingest ref. */
  private uploadRef(id: string): string { return `${UPLOAD_LEASE}${id}`; }

  /** Bytes received so far by a session (0 before the first chunk). */
  async uploadOffset(id: string): Promise<number> {
    try { return (await this.ctx.content.status(this.uploadRef(id))).offset; } catch (e) {
      if (isStowageError(e, 'NotFound')) return 0;
      throw e;
    }
  }

  /** Opens the session's ingest for writing (waits for another writer of the same session). */
  uploadWriter(id: string, signal?: AbortSignal): Promise<Writer> {
    return this.ctx.content.withLease(`${UPLOAD_LEASE}${id}`).writer({ ref: this.uploadRef(id), wait: true, ...(signal ? { signal } : {}) });
  }

  /**
   * Commits the session's bytes as `digest` (DigestMismatch / SizeMismatch when they are not: then the
   * session is cancelled and nothing is stored). The blob is held for LEASE_TTL_MS and the session ends.
   */
  async finishUpload(id: string, writer: Writer, digest: Digest, repo: string): Promise<number> {
    const size = writer.status().offset;
    try {
      await writer.commit(0, digest);
    } catch (e) {
      if (isStowageError(e, 'DigestMismatch') || isStowageError(e, 'SizeMismatch')) {
        await this.cancelUpload(id);
        throw e;
      }
      if (!isStowageError(e, 'AlreadyExists')) throw e;
    }
    this.holdBlob(digest, size);
    this.endSession(id);
    await this.addSource(digest, repo);
    return size;
  }

  /** Cancels a session: its bytes and its lease go. */
  async cancelUpload(id: string): Promise<void> {
    try { await this.ctx.content.abort(this.uploadRef(id)); } catch (e) { if (!isStowageError(e, 'NotFound')) throw e; }
    this.endSession(id);
  }

  private endSession(id: string): void {
    try { this.ctx.md.leases.delete(`${UPLOAD_LEASE}${id}`); } catch (e) { if (!isStowageError(e, 'NotFound')) throw e; }
  }

  /** Keeps a blob for LEASE_TTL_MS under a lease of its own. */
  private holdBlob(digest: Digest, size: number): void {
    const lease = this.ctx.md.leases.create({ id: `${BLOB_LEASE}${randomUUID()}`, expiresInMs: LEASE_TTL_MS, labels: { [LEASE_PURPOSE]: 'registry blob' } });
    this.ctx.content.withLease(lease.id).record(digest, size);
  }

  /** Adds `repo` to the blob's distribution.source label for this registry (push mounts use it). */
  private async addSource(digest: Digest, repo: string): Promise<void> {
    const key = distributionSourceKey(this.registry);
    let existing = '';
    try { existing = (await this.ctx.content.info(digest)).labels[key] ?? ''; } catch { return; }
    const repos = new Set(existing ? existing.split(',') : []);
    if (repos.has(repo)) return;
    repos.add(repo);
    const value = [...repos].sort().join(',');
    if (value.length <= 4096) await setLabel(this.ctx.content, digest, key, value);
  }

  // ---- manifests

  /**
   * Stores a pushed manifest or index under `reference` (a tag or its digest) of `repo`, recorded as the
   * image `<server's registry name>/<repo>:<tag>` for a tag. Refuses: an invalid document
   * (InvalidArgument), a digest reference the bytes do not hash to (DigestMismatch), a document over
   * 4 MiB (ResourceExhausted), and one whose config, layers or child manifests are missing
   * (FailedPrecondition, `data.missing` = the digest).
   */
  async putManifest(repo: string, reference: string, bytes: Buffer, contentType: string | undefined): Promise<PutManifestResult> {
    return this.storeManifest(repo, reference, bytes, contentType, { fetched: false });
  }

  /**
   * Stores a manifest or index a pull-through mirror fetched, held by a lease and named by nothing yet:
   * its children may still be missing. An index gets no GC references to its children here (adoptChild
   * adds each once complete), so that nothing the store's check walks is missing; name it with nameImage
   * once what it references is present.
   */
  async storeFetchedManifest(repo: string, reference: string, bytes: Buffer, contentType: string | undefined): Promise<PutManifestResult> {
    return this.storeManifest(repo, reference, bytes, contentType, { fetched: true });
  }

  /** Names a stored manifest or index as the image `name` (a fetched one, once complete). */
  nameImage(name: string, descriptor: Descriptor): void {
    setName(this.ctx, name, descriptor);
    emitImageEvent(this.ctx, 'pull', descriptor.digest, name);
  }

  /** The index `parent` now references its complete child manifest `child` for GC (containerd's m.N labels). */
  async adoptChild(parent: Digest, child: Digest): Promise<void> {
    const m = await this.manifest(parent);
    if (!m || m.parsed.kind !== 'index') return;
    const positions = m.parsed.index.manifests.map((d, i) => (d.digest === child ? i : -1)).filter((i) => i >= 0);
    for (const i of positions) await setLabel(this.ctx.content, parent, gcRefManifest(i), child);
  }

  private async storeManifest(repo: string, reference: string, bytes: Buffer, contentType: string | undefined, opts: { fetched: boolean }): Promise<PutManifestResult> {
    if (bytes.length > MAX_MANIFEST_SIZE) throw new ResourceExhaustedError(`manifest is ${bytes.length} bytes, over the ${MAX_MANIFEST_SIZE}-byte limit`, { size: bytes.length });
    const byDigest = isDigest(reference);
    if (!byDigest) validateTag(reference);
    const digest = digestOf(bytes, byDigest ? parseDigest(reference).algorithm : 'sha256');
    if (byDigest && digest !== reference) throw new DigestMismatchError(`manifest content has digest ${digest}, not ${reference}`, { expected: reference, digest });
    const declared = baseMediaType(contentType);
    const parsed = parseManifest(bytes, isManifestOrIndexType(declared) ? declared : undefined);
    const docType = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
    const children = parsed.kind === 'index' ? parsed.index.manifests : [parsed.manifest.config, ...parsed.manifest.layers];
    if (!opts.fetched) {
      for (const child of children) {
        // Non-distributable layers live elsewhere (their `urls`): registries do not hold them.
        if (child.urls?.length && child.mediaType.includes('nondistributable')) continue;
        if (child.mediaType.includes('foreign')) continue;
        if (await this.blobSize(child.digest) === undefined) {
          throw new FailedPreconditionError(`blob ${child.digest} named by the manifest is not in the registry`, { missing: child.digest });
        }
      }
    }
    const descriptor: Descriptor = { mediaType: parsed.mediaType, digest, size: bytes.length };
    // A fetched (mirrored) index keeps only the children fetched later (adoptChild).
    const labels = childGcLabels(parsed, parsed.kind === 'index' && !opts.fetched ? parsed.index.manifests : []);
    const subject = parsed.kind === 'index' ? parsed.index.subject : parsed.manifest.subject;
    if (subject) labels[REGISTRY_SUBJECT] = subject.digest;
    if (typeof docType !== 'string' && declared) labels[REGISTRY_MEDIA_TYPE] = parsed.mediaType;

    const lease = this.ctx.md.leases.create({ id: `${BLOB_LEASE}${randomUUID()}`, expiresInMs: LEASE_TTL_MS, labels: { [LEASE_PURPOSE]: 'registry manifest' } });
    const content = this.ctx.content.withLease(lease.id);
    const ref = `registry-manifest-${digest}`;
    try {
      const w = await content.writer({ ref, desc: { digest, size: bytes.length }, wait: true });
      try {
        await w.write(bytes);
        await w.commit(bytes.length, digest, { labels });
      } catch (e) {
        await w.close().catch(() => {});
        throw e;
      }
    } catch (e) {
      if (!isStowageError(e, 'AlreadyExists')) throw e;
      for (const [k, v] of Object.entries(labels)) await setLabel(content, digest, k, v);
    } finally {
      this.forgetIngest(lease.id, ref);
    }
    let recordName: string | undefined;
    if (!opts.fetched) {
      await this.addSource(digest, repo);
      if (!byDigest) {
        recordName = `${this.registry}/${repo}:${reference}`;
        setName(this.ctx, recordName, descriptor);
        emitImageEvent(this.ctx, 'push', digest, recordName);
      }
    }
    return { descriptor, ...(subject ? { subject: subject.digest } : {}), ...(recordName ? { recordName } : {}) };
  }

  /** Removes `repo:tag` (every record served under that name). NotFound when there is none. */
  deleteTag(repo: string, tag: string): void {
    const names = this.served().filter((s) => s.repo === repo && s.tag === tag).map((s) => s.record.name);
    if (names.length === 0) throw new NotFoundError(`${repo}:${tag}: manifest unknown`, { repository: repo, tag });
    for (const name of new Set(names)) this.dropRecord(name);
  }

  /**
   * Removes every tag of `repo` that points at `digest`. NotFound when the store holds no such manifest.
   * The content stays until the store's GC finds nothing else naming it.
   */
  async deleteManifest(repo: string, digest: Digest): Promise<void> {
    const names = this.served().filter((s) => s.repo === repo && s.record.target.digest === digest).map((s) => s.record.name);
    if (names.length === 0 && await this.manifest(digest) === undefined) {
      throw new NotFoundError(`${repo}@${digest}: manifest unknown`, { repository: repo, digest });
    }
    for (const name of new Set(names)) this.dropRecord(name);
  }

  private dropRecord(name: string): void {
    let target: Digest | undefined;
    try { target = this.ctx.md.images.get(name).target.digest; } catch { return; }
    try { this.ctx.md.images.delete(name); } catch (e) { if (!isStowageError(e, 'NotFound')) throw e; }
    emitImageEvent(this.ctx, 'untag', target, name);
  }

  /**
   * Manifests and indexes whose `subject` is `digest`, as the referrers API lists them: media type,
   * digest, size, artifactType (the manifest's, else an image manifest's config type) and annotations.
   */
  async referrers(digest: Digest, artifactType?: string): Promise<Descriptor[]> {
    const found: Digest[] = [];
    await this.ctx.content.walk((info) => { found.push(info.digest); }, `labels."${REGISTRY_SUBJECT}"==${digest}`);
    const out: Descriptor[] = [];
    for (const d of found.sort()) {
      const m = await this.manifest(d);
      if (!m) continue;
      const doc = m.parsed.kind === 'index' ? m.parsed.index : m.parsed.manifest;
      const type = doc.artifactType ?? (m.parsed.kind === 'manifest' ? m.parsed.manifest.config.mediaType : undefined);
      if (artifactType !== undefined && type !== artifactType) continue;
      out.push({
        mediaType: m.descriptor.mediaType, digest: d, size: m.descriptor.size,
        ...(type !== undefined ? { artifactType: type } : {}),
        ...(doc.annotations ? { annotations: doc.annotations } : {}),
      });
    }
    return out;
  }

  // ---- for a pull-through mirror

  /**
   * A writer for a blob fetched from elsewhere, held for LEASE_TTL_MS once committed. A writer closed
   * before its commit keeps its ingest (the next fetch resumes it) and the lease's hold on it.
   */
  async fetchedBlobWriter(desc: Pick<Descriptor, 'digest' | 'size'>, signal?: AbortSignal): Promise<Writer> {
    const lease = this.ctx.md.leases.create({ id: `${BLOB_LEASE}${randomUUID()}`, expiresInMs: LEASE_TTL_MS, labels: { [LEASE_PURPOSE]: 'registry mirror' } });
    const ref = `registry-fetch-${desc.digest}`;
    let w: Writer;
    try {
      w = await this.ctx.content.withLease(lease.id).writer({ ref, desc, wait: true, ...(signal ? { signal } : {}) });
    } catch (e) {
      this.forgetIngest(lease.id, ref);
      throw e;
    }
    const forget = (): void => this.forgetIngest(lease.id, ref);
    return {
      get ref() { return w.ref; },
      write: (c) => w.write(c),
      digest: () => w.digest(),
      status: () => w.status(),
      truncate: (n) => w.truncate(n),
      close: () => w.close(),
      async commit(size, expected, o) {
        try { await w.commit(size, expected, o); } catch (e) {
          if (isStowageError(e, 'AlreadyExists')) forget();
          throw e;
        }
        forget();
      },
    };
  }

  /** A committed (or refused) ingest is no longer something the lease holds; the blob it became is. */
  private forgetIngest(lease: string, ref: string): void {
    try { this.ctx.md.leases.deleteResource(lease, { type: 'ingests', id: ref }); } catch (e) { if (!isStowageError(e, 'NotFound')) throw e; }
  }
}
