import { PassThrough, pipeline } from 'node:stream';
import type { Digest } from '../oci/index.js';
import type { Ingester, Provider, Writer, WriterOptions } from '../content/index.js';

/**
 * Copies the bytes a download writes into its ingest to a second reader (the unpacker), so a layer can be
 * unpacked while it downloads. The download never waits for the unpacker: once the reader falls a buffer
 * behind, the copy stops there and, when the download has committed, the reader goes on from that offset
 * of the committed blob. A stalled download would leave the socket's buffers full (tens of MB on a fast
 * link), all lost if the process is killed; written to the ingest they are kept, and the download's slot
 * is free for the next layer sooner. The copy is only faithful for an ingest written from byte 0 in one
 * pass; anything else (a resumed ingest, a restart after the registry ignored Range, a blob already
 * present) breaks the tee, and the caller unpacks from the committed blob instead.
 */
/**
 * How far the unpacker may fall behind before it reads from the committed blob instead: 256 KiB. With
 * 1 MiB (and 1 MiB blob reads) a pull of 5 layers peaked at 165-171 MiB, with 256 KiB at 132-136 MiB
 * and the same speed (see READ_CHUNK in src/content/local.ts for why the sizes of Buffers matter).
 */
const TEE_BUFFER = 256 << 10;

export class LayerTee {
  readonly stream = new PassThrough({ highWaterMark: TEE_BUFFER });
  private active = true;
  /** Bytes handed to the reader so far. */
  private copied = 0;
  /** Set once the reader fell a buffer behind: the rest comes from the committed blob. */
  private behind = false;

  /** `blobs` serves the committed blob to a reader that fell behind. */
  constructor(private readonly blobs: Provider) {}

  get live(): boolean { return this.active; }

  write(buf: Uint8Array): void {
    if (!this.active || this.behind) return;
    this.copied += buf.length;
    if (!this.stream.write(buf)) this.behind = true;
  }

  /** The download committed `digest`: the reader gets the rest of it, then end-of-stream. */
  private end(digest: Digest): void {
    if (!this.active) return;
    this.active = false;
    if (!this.behind) { this.stream.end(); return; }
    void this.blobs.readerAt({ digest }).then((ra) => {
      pipeline(ra.stream({ start: this.copied }), this.stream, () => { void ra.close(); });
    }, (e: unknown) => { this.stream.destroy(e instanceof Error ? e : new Error(String(e))); });
  }

  /** The copy is no longer faithful: the reader fails. */
  fail(err: Error): void {
    if (!this.active) return;
    this.active = false;
    this.stream.destroy(err);
  }

  /** The reader gave up: stop copying, let the download go on. */
  detach(): void {
    this.active = false;
    this.stream.resume();
  }

  /** An ingester whose writer feeds this tee (only for a fresh ingest). */
  ingester(inner: Ingester & { abort?(ref: string): Promise<void> }): Ingester & { abort(ref: string): Promise<void> } {
    return {
      writer: async (opts: WriterOptions): Promise<Writer> => {
        let w: Writer;
        try {
          w = await inner.writer(opts);
        } catch (e) {
          this.fail(e instanceof Error ? e : new Error(String(e)));
          throw e;
        }
        if (w.status().offset !== 0) { this.fail(new Error('resumed ingest: unpacking from the committed blob')); return w; }
        return this.wrap(w);
      },
      abort: async (ref: string) => { this.fail(new Error('ingest aborted')); await inner.abort?.(ref); },
    };
  }

  private wrap(w: Writer): Writer {
    const tee = this;
    return {
      get ref() { return w.ref; },
      async write(chunk) { await w.write(chunk); tee.write(chunk); },
      digest: () => w.digest(),
      status: () => w.status(),
      async truncate(size) { tee.fail(new Error('ingest restarted')); await w.truncate(size); },
      async close() { tee.fail(new Error('download interrupted')); await w.close(); },
      async commit(size, expected, opts) {
        try {
          await w.commit(size, expected, opts);
        } catch (e) {
          tee.fail(e instanceof Error ? e : new Error(String(e)));
          throw e;
        }
        tee.end((expected ?? w.digest()) as Digest);
      },
    };
  }
}
