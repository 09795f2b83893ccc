/**
 * Pull-through mirror (`--mirror-of URL`): what the store lacks is fetched from the upstream registry,
 * stored, and served. Manifests are stored as images of the upstream's name (`docker.io/library/alpine:3`
 * for Docker Hub), so a second pull is answered locally with no upstream request; blobs stream to the
 * first client as they arrive while they are written to a content ingest (resumed and verified by the
 * registry client), and clients asking for the same blob meanwhile wait for that one download.
 *
 * Credentials: a client's Basic credentials are passed on to the upstream when the server itself has no
 * auth (otherwise the header is the server's own); without them the server's (docker's config.json).
 */
import { once } from 'node:events';
import {
  Header, RegistryClient, failResponse, fetchBlobInto, pullScope, type BlobSink, type CredentialSource, type Repository, type Transport,
} from '../../distribution/index.js';
import type { Writer } from '../../content/index.js';
import { isStowageError } from '../../errors/index.js';
import type { RepositoryView, StoredManifest } from '../../images/index.js';
import { isDigest, manifestChildren, parseNormalizedNamed, type Descriptor, type Digest } from '../../oci/index.js';
import { RegistryError } from './errors.js';
import { REALM } from './auth.js';
import type { Exchange } from './exchange.js';

export interface MirrorOptions {
  /** The upstream registry's URL (`https://registry-1.docker.io`, `http://127.0.0.1:5001`). */
  upstream: string;
  /** Pass a client's Basic credentials on to the upstream (only when the server has no auth of its own). */
  passClientCredentials: boolean;
  /** The server's own upstream credentials; default docker's config.json. */
  credentials?: CredentialSource;
  transport?: Transport;
}

/** The reference domain of an upstream URL: Docker Hub's API host is `docker.io` in image names. */
export function upstreamDomain(upstream: string): string {
  const u = new URL(upstream);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new RegistryError('UNSUPPORTED', `mirror upstream must be an http(s) URL: ${upstream}`);
  return ['registry-1.docker.io', 'index.docker.io', 'docker.io'].includes(u.host) ? 'docker.io' : u.host;
}

export class Mirror {
  readonly domain: string;
  private readonly shared: RegistryClient;
  private readonly byAuth = new Map<string, RegistryClient>();
  private readonly manifests = new Map<string, Promise<StoredManifest | undefined>>();
  private readonly downloads = new Map<Digest, Promise<void>>();
  /** Blob descriptors learnt from fetched manifests, so that a blob request needs no HEAD upstream. */
  private readonly known = new Map<Digest, Descriptor>();
  /** Indexes that list a manifest (learnt from fetched indexes), which adopt it once it is complete. */
  private readonly parents = new Map<Digest, Digest[]>();
  /** Tags fetched whose image is being completed: served from the store meanwhile, not fetched again. */
  private readonly pendingTags = new Map<string, Digest>();
  private readonly background = new Set<Promise<void>>();

  constructor(private readonly view: RepositoryView, private readonly opts: MirrorOptions) {
    this.domain = upstreamDomain(opts.upstream);
    this.shared = this.newClient(opts.credentials);
  }

  private newClient(credentials?: CredentialSource | Record<string, { username: string; password: string }>): RegistryClient {
    const plain = new URL(this.opts.upstream).protocol === 'http:';
    return new RegistryClient({
      ...(credentials ? { credentials } : {}),
      ...(plain ? { insecureRegistries: [this.domain] } : {}),
      ...(this.opts.transport ? { transport: this.opts.transport } : {}),
    });
  }

  private client(ex: Exchange): RegistryClient {
    const auth = ex.req.headers.authorization;
    const m = this.opts.passClientCredentials ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(auth ?? '') : null;
    if (!m) return this.shared;
    let c = this.byAuth.get(m[1]!);
    if (!c) {
      const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      c = this.newClient({ [this.domain]: { username: decoded.slice(0, Math.max(0, colon)), password: decoded.slice(colon + 1) } });
      if (this.byAuth.size > 64) this.byAuth.clear();
      this.byAuth.set(m[1]!, c);
    }
    return c;
  }

  private upstreamError(e: unknown): RegistryError | undefined {
    if (isStowageError(e, 'NotFound')) return undefined;
    if (isStowageError(e, 'Unauthorized')) {
      // A challenge, so that docker and containerd send the credentials the upstream wants.
      return new RegistryError('UNAUTHORIZED', `upstream ${this.domain}: ${e.message}`, undefined, { headers: { 'www-authenticate': `Basic realm="${REALM}"` } });
    }
    if (isStowageError(e, 'Forbidden')) return new RegistryError('DENIED', `upstream ${this.domain}: ${e.message}`);
    if (isStowageError(e, 'ResourceExhausted')) return new RegistryError('TOOMANYREQUESTS', `upstream ${this.domain}: ${e.message}`);
    return new RegistryError('UNAVAILABLE', `upstream ${this.domain}: ${e instanceof Error ? e.message : String(e)}`);
  }

  /** Fetches, stores and returns a manifest the store lacks; undefined when the upstream has none either. */
  manifest(ex: Exchange, repo: string, reference: string): Promise<StoredManifest | undefined> {
    const key = `${repo}@${reference}`;
    let p = this.manifests.get(key);
    if (!p) {
      p = this.fetchManifest(this.client(ex), repo, reference).finally(() => this.manifests.delete(key));
      this.manifests.set(key, p);
    }
    return p;
  }

  private async fetchManifest(client: RegistryClient, repo: string, reference: string): Promise<StoredManifest | undefined> {
    const pending = this.pendingTags.get(`${repo}:${reference}`);
    if (pending) return this.view.manifest(pending);
    const ref = parseNormalizedNamed(`${this.domain}/${repo}${isDigest(reference) ? '@' : ':'}${reference}`);
    let bytes: Buffer;
    let descriptor: Descriptor;
    let repository: Repository;
    try {
      const resolved = await client.resolve(ref);
      descriptor = resolved.descriptor;
      repository = resolved.repository;
      bytes = (await client.fetchManifest(repository, descriptor)).bytes;
    } catch (e) {
      const err = this.upstreamError(e);
      if (err) throw err;
      return undefined;
    }
    const put = await this.view.storeFetchedManifest(repo, reference, bytes, descriptor.mediaType);
    const stored = await this.view.manifest(put.descriptor.digest);
    if (!stored) return undefined;
    for (const child of manifestChildren(stored.parsed)) {
      this.known.set(child.digest, child);
      if (stored.parsed.kind === 'index') this.parents.set(child.digest, [...(this.parents.get(child.digest) ?? []), stored.descriptor.digest]);
    }
    const name = isDigest(reference) ? undefined : `${this.domain}/${repo}:${reference}`;
    if (stored.parsed.kind === 'index') {
      // An index is complete as it is: its children join it (adoptChild) as each one is complete.
      if (name) this.view.nameImage(name, stored.descriptor);
    } else {
      if (name) this.pendingTags.set(`${repo}:${reference}`, stored.descriptor.digest);
      this.inBackground(this.complete(client, repository, stored, name).finally(() => { if (name) this.pendingTags.delete(`${repo}:${reference}`); }));
    }
    return stored;
  }

  /**
   * Makes a fetched image manifest a whole image of the store: its config and layers are fetched (the
   * same single downloads clients share), then it is named (a tag) and joins the indexes that list it,
   * as a pull would leave it. A failure leaves it unnamed, held by its lease: a later request fetches again.
   */
  private async complete(client: RegistryClient, repository: Repository, m: StoredManifest, name: string | undefined): Promise<void> {
    if (m.parsed.kind !== 'manifest') return;
    for (const blob of [m.parsed.manifest.config, ...m.parsed.manifest.layers]) {
      // download() joins a download already running (a client's); one that failed is tried once more.
      for (let attempt = 0; attempt < 2 && await this.view.blobSize(blob.digest) === undefined; attempt++) {
        await this.download(client, repository, blob, undefined).catch(() => {});
      }
      if (await this.view.blobSize(blob.digest) === undefined) throw new RegistryError('BLOB_UNKNOWN', `${blob.digest} could not be fetched from ${this.domain}`);
    }
    if (name) this.view.nameImage(name, m.descriptor);
    for (const parent of this.parents.get(m.descriptor.digest) ?? []) await this.view.adoptChild(parent, m.descriptor.digest);
  }

  private inBackground(p: Promise<unknown>): void {
    const tracked = p.then(() => {}, () => {}).finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  /** Resolves when the background completions have ended (a graceful stop waits for them). */
  async settle(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  private async describe(client: RegistryClient, repository: Repository, digest: Digest): Promise<Descriptor | undefined> {
    const known = this.known.get(digest);
    if (known) return known;
    try {
      const res = await client.request(repository, { method: 'HEAD', url: `/v2/${repository.path}/blobs/${digest}`, scopes: [pullScope(repository.path)] });
      res.body.resume();
      if (res.status === 404) return undefined;
      if (res.status !== 200) throw await failResponse(res, `HEAD ${digest}`, repository).catch((e: unknown) => e);
      const size = Number(res.headers['content-length']);
      if (!Number.isSafeInteger(size) || size < 0) throw new RegistryError('UNAVAILABLE', `upstream ${this.domain} gave no size for ${digest}`);
      return { mediaType: 'application/octet-stream', digest, size };
    } catch (e) {
      if (e instanceof RegistryError) throw e;
      const err = this.upstreamError(e);
      if (err) throw err;
      return undefined;
    }
  }

  /**
   * Fetches a blob the store lacks (one download however many ask), without answering the client:
   * returns its size, or undefined when the upstream has none. `headOnly` asks the upstream for the size only.
   */
  async fetchBlob(ex: Exchange, repo: string, digest: Digest, headOnly: boolean): Promise<number | undefined> {
    const client = this.client(ex);
    const repository = client.repository(`${this.domain}/${repo}`);
    const running = this.downloads.get(digest);
    if (running) { await running; return this.view.blobSize(digest); }
    const desc = await this.describe(client, repository, digest);
    if (!desc || headOnly) return desc?.size;
    await this.download(client, repository, desc, undefined);
    return desc.size;
  }

  /**
   * Answers a GET of a blob the store lacks with the bytes as they arrive from upstream, storing them.
   * false when the client must be answered from the store instead (another download of it just finished,
   * the upstream has none: then the store has none either and the caller answers 404).
   */
  async streamBlob(ex: Exchange, repo: string, digest: Digest): Promise<boolean> {
    const client = this.client(ex);
    const repository = client.repository(`${this.domain}/${repo}`);
    const running = this.downloads.get(digest);
    if (running) { await running; return false; }
    const desc = await this.describe(client, repository, digest);
    if (!desc) return false;
    return this.download(client, repository, desc, ex);
  }

  /** One download per digest; `ex` (when given) is answered from the same bytes. true when `ex` was answered. */
  private async download(client: RegistryClient, repository: Repository, desc: Descriptor, ex: Exchange | undefined): Promise<boolean> {
    const running = this.downloads.get(desc.digest);
    if (running) { await running; return false; }
    let answered = false;
    const run = (async () => {
      const sink: BlobSink = {
        writer: async (o) => {
          const w = await this.view.fetchedBlobWriter({ digest: desc.digest, size: desc.size }, o.signal);
          // A resumed ingest starts past byte 0: that client is answered from the store when it is done.
          const tee = ex && w.status().offset === 0 ? startTee(ex, desc) : undefined;
          if (tee) answered = true;
          return teeWriter(w, tee);
        },
      };
      try {
        await fetchBlobInto(client, repository, sink, desc, {});
      } catch (e) {
        if (answered) ex!.res.destroy();
        const err = this.upstreamError(e);
        if (err) throw err;
        throw new RegistryError('BLOB_UNKNOWN', `blob ${desc.digest} unknown to upstream ${this.domain}`);
      }
      if (answered) ex!.res.end();
    })();
    this.downloads.set(desc.digest, run);
    try { await run; } finally { this.downloads.delete(desc.digest); }
    return answered;
  }
}

interface Tee { write(chunk: Uint8Array): Promise<void>; abandon(): void; sent: number }

function startTee(ex: Exchange, desc: Descriptor): Tee {
  const { res } = ex;
  res.statusCode = 200;
  res.setHeader(Header.ApiVersion, 'registry/2.0');
  res.setHeader('content-type', 'application/octet-stream');
  res.setHeader('content-length', desc.size);
  res.setHeader(Header.ContentDigest, desc.digest);
  res.flushHeaders();
  let gone = false;
  res.once('close', () => { gone = true; });
  const tee: Tee = {
    sent: 0,
    async write(chunk) {
      if (gone) return;
      tee.sent += chunk.length;
      // The download goes at the client's pace while it listens; a client that leaves stops slowing it.
      if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    },
    abandon() { gone = true; res.destroy(); },
  };
  return tee;
}

function teeWriter(w: Writer, tee: Tee | undefined): Writer {
  return {
    get ref() { return w.ref; },
    async write(chunk) { await w.write(chunk); await tee?.write(chunk); },
    digest: () => w.digest(),
    status: () => w.status(),
    async truncate(size) {
      // Starting over: bytes already sent cannot be taken back, so that client is dropped (it retries).
      if (tee && tee.sent > 0) tee.abandon();
      await w.truncate(size);
    },
    close: () => w.close(),
    commit: (size, expected, o) => w.commit(size, expected, o),
  };
}
