import { isStowageError, stowageErrorOf } from '../errors/index.js';
import { validateRef, type ContentStore, type Info, type ReaderAt, type Status, type Writer, type WriterOptions, type CommitOptions } from '../content/index.js';
import type { Metadata } from '../metadata/index.js';
import { parseDigest, type Descriptor, type Digest } from '../oci/index.js';

/**
 * The content store as the image service uses it: every committed blob is recorded in the metadata
 * database (so GC knows it), attached to the operation's lease when there is one, and ingests are
 * attached to the lease while they are open (a committed or aborted ingest leaves it, as in containerd,
 * so that the lease never names ingests that are gone). This is containerd's metadata-wrapped content
 * store, in one small adapter.
 */
export class TrackedContent implements ContentStore {
  constructor(readonly inner: ContentStore, readonly md: Metadata, readonly lease?: string) {}

  /** The same store, writing under `lease`. */
  withLease(lease: string | undefined): TrackedContent { return new TrackedContent(this.inner, this.md, lease); }

  readerAt(desc: Pick<Descriptor, 'digest'>): Promise<ReaderAt> { return this.inner.readerAt(desc); }
  status(ref: string): Promise<Status> { return this.inner.status(ref); }
  listStatuses(...filters: string[]): Promise<Status[]> { return this.inner.listStatuses(...filters); }
  async abort(ref: string): Promise<void> {
    await this.inner.abort(ref);
    this.releaseIngest(ref);
  }
  info(digest: Digest): Promise<Info> { return this.inner.info(digest); }
  update(info: Pick<Info, 'digest' | 'labels'>, ...fieldpaths: string[]): Promise<Info> { return this.inner.update(info, ...fieldpaths); }
  walk(fn: (info: Info) => void | Promise<void>, ...filters: string[]): Promise<void> { return this.inner.walk(fn, ...filters); }
  async delete(digest: Digest): Promise<void> {
    await this.inner.delete(digest);
    this.md.content.forget(digest);
  }

  async writer(opts: WriterOptions): Promise<Writer> {
    // Bad input is refused before the lease records anything for it.
    validateRef(opts.ref);
    if (opts.desc?.digest !== undefined) parseDigest(opts.desc.digest);
    if (this.lease !== undefined) {
      this.md.leases.addResource(this.lease, { type: 'ingests', id: opts.ref });
      // Protect the digest before looking whether it exists: an old unreferenced copy could otherwise
      // be collected by a GC in another process between "already exists" and the record below.
      if (opts.desc?.digest) await this.protect(opts.desc.digest);
    }
    try {
      return this.wrap(await this.inner.writer(opts));
    } catch (e) {
      // The blob is already there: make sure the lease holds it for the rest of the operation; no ingest was made.
      if (isStowageError(e, 'AlreadyExists')) {
        if (opts.desc?.digest) this.record(opts.desc.digest, opts.desc.size);
        this.releaseIngest(opts.ref);
      }
      throw e;
    }
  }

  /** The ingest `ref` is gone (committed, aborted, never made): the lease no longer holds it. */
  private releaseIngest(ref: string): void {
    if (this.lease === undefined) return;
    try {
      this.md.leases.deleteResource(this.lease, { type: 'ingests', id: ref });
    } catch (e) {
      if (!isStowageError(e, 'NotFound')) throw e; // the lease itself is gone, and its resources with it
    }
  }

  /** Adds the digest to the lease, waiting out a GC that is deleting that very blob right now. */
  private async protect(digest: Digest): Promise<void> {
    for (let delay = 5; ; delay = Math.min(delay * 2, 500)) {
      try {
        this.md.leases.addResource(this.lease!, { type: 'content', id: digest });
        return;
      } catch (e) {
        if (!(isStowageError(e, 'Unavailable') && stowageErrorOf(e)!.data.retry)) throw e;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Records a blob (present now) in the database under the lease. */
  record(digest: Digest, size?: number, labels?: Record<string, string>): void {
    const lease = this.lease;
    let n = size;
    if (n === undefined || n < 0) n = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        this.md.content.recordBlob(digest, n, { ...(lease ? { lease } : {}), ...(labels ? { labels } : {}) });
        return;
      } catch (e) {
        // GC is deleting this digest right now: the caller's blob is gone with it; surface it.
        if (attempt < 2 && isStowageError(e, 'Unavailable') && !stowageErrorOf(e)!.data.retry) continue;
        throw e;
      }
    }
  }

  private wrap(w: Writer): Writer {
    const self = this;
    return {
      get ref() { return w.ref; },
      write: (c) => w.write(c),
      digest: () => w.digest(),
      status: () => w.status(),
      truncate: (s) => w.truncate(s),
      close: () => w.close(),
      ...(w.readerAt ? { readerAt: () => w.readerAt!() } : {}),
      async commit(size: number, expected?: Digest, opts?: CommitOptions): Promise<void> {
        const digest = expected ?? w.digest();
        const written = w.status().offset;
        try {
          await w.commit(size, expected, opts);
        } catch (e) {
          if (isStowageError(e, 'AlreadyExists')) {
            self.record(digest, size || written, opts?.labels);
            self.releaseIngest(w.ref);
          }
          throw e;
        }
        self.record(digest, size || written, opts?.labels);
        self.releaseIngest(w.ref);
      },
    };
  }
}
