import { PassThrough } from 'node:stream';
import type { Ingester, Writer, WriterOptions } from '../content/index.js';

/**
 * Copies the bytes a download writes into its ingest to a second reader (the unpacker), so a layer can be
 * unpacked while it downloads. Backpressure is shared: the download waits for the unpacker. The copy is
 * only faithful for an ingest written from byte 0 in one pass; anything else (a resumed ingest, a restart
 * after the registry ignored Range, a blob already present) breaks the tee, and the caller unpacks from
 * the committed blob instead.
 */
export class LayerTee {
  readonly stream = new PassThrough({ highWaterMark: 4 << 20 });
  private active = true;
  private release: (() => void) | undefined;

  get live(): boolean { return this.active; }

  async write(buf: Uint8Array): Promise<void> {
    if (!this.active) return;
    if (this.stream.write(buf)) return;
    await new Promise<void>((resolve) => {
      this.release = resolve;
      this.stream.once('drain', resolve);
    });
    this.release = undefined;
  }

  /** The download committed: the reader gets end-of-stream. */
  end(): void {
    if (!this.active) return;
    this.active = false;
    this.stream.end();
  }

  /** The copy is no longer faithful: the reader fails. */
  fail(err: Error): void {
    if (!this.active) return;
    this.active = false;
    this.stream.destroy(err);
    this.release?.();
  }

  /** The reader gave up: stop copying, let the download go on. */
  detach(): void {
    this.active = false;
    this.release?.();
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
      async write(chunk) { await w.write(chunk); await tee.write(chunk); },
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
        tee.end();
      },
    };
  }
}
