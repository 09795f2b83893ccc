import { PassThrough, pipeline, type Readable } from 'node:stream';
import { LayerFile } from '../snapshots/index.js';
import type { Digest } from '../oci/index.js';
import type { Ingester, Provider, ReaderAt, Writer, WriterOptions } from '../content/index.js';

/**
 * Gives the bytes a download writes into its ingest to a second reader (the unpacker), so a layer can be
 * unpacked while it downloads. When the store's ingest is a file this process can read (Writer.readerAt
 * with an fd), the reader gets a LayerFile of it: it reads the file as the download writes it, on a
 * thread of the apply pool, and waits where the download has not written yet (no copy, no stall).
 * Otherwise it gets a stream of copies, and the download never waits for the unpacker: once the reader
 * falls a buffer behind, the copy stops there and the reader goes on from the ingest's file, following
 * it as the download writes (Writer.readerAt), or, for a store that cannot read an ingest, from that
 * offset of the committed blob. A stalled download would leave the socket's buffers full (tens of MB on a fast link),
 * all lost if the process is killed; written to the ingest they are kept, and the download's slot is
 * free for the next layer sooner. The reader's stream ends only after the commit verified the blob.
 * The copy is only faithful for an ingest written from byte 0 in one pass; anything else (a resumed
 * ingest, a restart after the registry ignored Range, a blob already present) breaks the tee, and the
 * caller unpacks from the committed blob instead.
 */
/**
 * How far the unpacker may fall behind before it reads from the file instead: 256 KiB. With 1 MiB (and
 * 1 MiB blob reads) a pull of 5 layers peaked at 165-171 MiB, with 256 KiB at 132-136 MiB and the same
 * speed (see READ_CHUNK in src/content/local.ts for why the sizes of Buffers matter).
 */
const TEE_BUFFER = 256 << 10;
/** Reads from the ingest's file: 256 KiB, as the store's blob streams (READ_CHUNK). */
const FOLLOW_CHUNK = 256 << 10;

export class LayerTee {
  readonly stream = new PassThrough({ highWaterMark: TEE_BUFFER });
  private active = true;
  /** Bytes handed to the reader so far. */
  private copied = 0;
  /** Set once the reader fell a buffer behind: the rest comes from the file. */
  private behind = false;
  /** The ingest read back as the download writes it, opened with the writer (undefined: the store cannot). */
  private follow: Promise<ReaderAt | undefined> | undefined;
  /** The download committed this digest (the blob is verified): the reader may end. */
  private committed: Digest | undefined;
  private pumping = false;
  private again = false;
  /** File mode: the ingest as a LayerFile, and the reader whose fd it reads (closed by detach()). */
  private file: LayerFile | undefined;
  private fileReader: ReaderAt | undefined;
  /** What the unpacker reads, known once the download's writer is made (or the tee failed first). */
  private chosen: Promise<Readable | LayerFile>;
  private choose!: (source: Readable | LayerFile) => void;
  private hasChosen = false;

  /** `blobs` serves the committed blob to a reader that fell behind, when the ingest cannot be read. */
  constructor(private readonly blobs: Provider) {
    this.chosen = new Promise((resolve) => { this.choose = (source) => { this.hasChosen = true; resolve(source); }; });
    this.stream.on('drain', () => { if (this.behind) this.pump(); });
    this.stream.on('close', () => { this.release(); });
  }

  get live(): boolean { return this.active; }

  /** The unpacker's input: a LayerFile following the ingest, or a stream (see above). */
  source(): Promise<Readable | LayerFile> { return this.chosen; }

  /** The download ended without writing through this tee (the blob was there already...): the reader fails. */
  noWriter(): void { if (!this.hasChosen) this.fail(new Error('the download wrote no ingest to follow')); }

  write(buf: Uint8Array): void {
    if (!this.active) return;
    if (this.file) { this.copied += buf.length; this.file.grow(this.copied); return; }
    if (this.behind) { this.pump(); return; }
    this.copied += buf.length;
    if (!this.stream.write(buf)) this.behind = true;
  }

  /** The download committed `digest`: the reader gets the rest of it, then end-of-stream. */
  private end(digest: Digest): void {
    if (!this.active) return;
    this.committed = digest;
    if (this.file) { this.active = false; this.file.complete(this.copied); return; }
    if (!this.behind) { this.active = false; this.stream.end(); this.release(); return; }
    this.pump();
  }

  /**
   * Behind: hands the reader what the download has written past `copied`, as fast as it reads, until
   * the commit; after the commit, when the ingest cannot be read, the rest of the committed blob.
   * Called on every write, drain and the commit; one pass at a time, and again if called meanwhile.
   */
  private pump(): void {
    if (this.pumping) { this.again = true; return; }
    this.pumping = true;
    void (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again && this.active);
      } catch (e) {
        this.fail(e instanceof Error ? e : new Error(String(e)));
      } finally {
        this.pumping = false;
      }
    })();
  }

  private async pass(): Promise<void> {
    if (!this.active) return;
    const ra = await this.follow;
    if (!ra) {
      if (this.committed === undefined || !this.active) return;
      this.active = false;
      let blob: ReaderAt;
      try {
        blob = await this.blobs.readerAt({ digest: this.committed });
      } catch (e) {
        this.stream.destroy(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      pipeline(blob.stream({ start: this.copied }), this.stream, () => { void blob.close(); });
      return;
    }
    while (this.active) {
      const written = ra.size;
      if (this.copied >= written) {
        if (this.committed === undefined) return; // the next write or the commit calls again
        this.active = false;
        this.stream.end();
        this.release();
        return;
      }
      if (this.stream.writableNeedDrain) return; // 'drain' calls again
      const buf = await ra.readAt(this.copied, Math.min(FOLLOW_CHUNK, written - this.copied));
      if (!this.active) return;
      if (buf.length === 0) throw new Error(`ingest file ended at ${this.copied} of ${written} bytes written`);
      this.copied += buf.length;
      this.stream.write(buf);
    }
  }

  /** Closes the ingest's reader, if one was opened (in file mode, only once the unpacker is done: detach()). */
  private release(): void {
    if (this.file) return;
    const f = this.follow;
    this.follow = Promise.resolve(undefined);
    void f?.then((ra) => ra?.close()).catch(() => undefined);
  }

  /** The copy is no longer faithful: the reader fails. */
  fail(err: Error): void {
    if (!this.hasChosen) this.choose(this.stream);
    if (!this.active) return;
    this.active = false;
    if (this.file) this.file.fail(); // nothing listens to the stream
    else this.stream.destroy(err);
    this.release();
  }

  /** The reader is done (or gave up): stop giving it bytes, let the download go on. */
  detach(): void {
    this.active = false;
    this.file?.fail();
    this.stream.resume();
    if (this.fileReader) {
      const r = this.fileReader;
      this.fileReader = undefined;
      void r.close().catch(() => undefined);
    }
    this.release();
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
        return await this.wrap(w);
      },
      abort: async (ref: string) => { this.fail(new Error('ingest aborted')); await inner.abort?.(ref); },
    };
  }

  private async wrap(w: Writer): Promise<Writer> {
    const tee = this;
    // Opened now, while the ingest's file is where the writer made it (commit moves it).
    const reader = w.readerAt ? await w.readerAt().catch(() => undefined) : undefined;
    if (!this.active || this.hasChosen) {
      await reader?.close().catch(() => undefined);
    } else if (reader?.fd !== undefined) {
      this.fileReader = reader;
      this.file = new LayerFile(reader.fd);
      this.choose(this.file);
    } else {
      this.follow = Promise.resolve(reader);
      this.choose(this.stream);
    }
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
