// The layer tee: an unpacker reads a layer while it downloads, and the download never waits for it.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openContentStore, type ContentStore, type Ingester } from '../../src/content/index.js';
import { LayerTee } from '../../src/images/tee.js';
import { LayerFile, LayerFileFailedError } from '../../src/snapshots/layer-file.js';
import { digestOf } from '../../src/oci/index.js';

let dir: string;
let store: ContentStore;
beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-tee-'));
  store = await openContentStore(dir);
});
afterEach(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** The store's ingester, with writers that cannot read their ingest back (no Writer.readerAt). */
function withoutReadBack(inner: ContentStore): Ingester {
  return {
    writer: async (o) => {
      const w = await inner.writer(o);
      return { get ref() { return w.ref; }, write: (c) => w.write(c), digest: () => w.digest(), status: () => w.status(),
        truncate: (n) => w.truncate(n), close: () => w.close(), commit: (size, expected, opts) => w.commit(size, expected, opts) };
    },
  };
}

/** The store's ingester, with writers whose read-back has no fd: the tee then hands out a stream of copies. */
function withoutFd(inner: ContentStore): Ingester {
  return {
    writer: async (o) => {
      const w = await inner.writer(o);
      return { get ref() { return w.ref; }, write: (c) => w.write(c), digest: () => w.digest(), status: () => w.status(),
        truncate: (n) => w.truncate(n), close: () => w.close(), commit: (size, expected, opts) => w.commit(size, expected, opts),
        readerAt: async () => {
          const r = await w.readerAt!();
          return { get size() { return r.size; }, readAt: (o2, l, i) => r.readAt(o2, l, i), stream: (range) => r.stream(range), close: () => r.close() };
        } };
    },
  };
}

/** Reads a LayerFile to its end as an apply on the main thread would (waiting through promises). */
async function readFile(file: LayerFile): Promise<Buffer> {
  const parts: Buffer[] = [];
  const buf = Buffer.alloc(300 << 10);
  for (let pos = 0; ;) {
    const r = file.read(buf, pos, false);
    const n = typeof r === 'number' ? r : await r;
    if (n === 0) return Buffer.concat(parts);
    parts.push(Buffer.from(buf.subarray(0, n)));
    pos += n;
  }
}

describe('LayerTee, ingest as a file (the store can read it back through an fd)', () => {
  it('the reader gets a LayerFile that follows the download and ends only once the commit verified it', async () => {
    const blob = randomBytes(6 << 20);
    const tee = new LayerTee(store);
    const w = await tee.ingester(store).writer({ ref: 'layer-lf', desc: { digest: digestOf(blob), size: blob.length } });
    const file = await tee.source();
    expect(file).toBeInstanceOf(LayerFile);
    const reading = readFile(file as LayerFile);
    let settled = false;
    void reading.finally(() => { settled = true; });
    for (let off = 0; off < blob.length; off += 1 << 20) await w.write(blob.subarray(off, off + (1 << 20)));
    await new Promise((r) => setTimeout(r, 50));
    expect((file as LayerFile).consumed).toBe(blob.length);
    expect(settled).toBe(false); // every byte is there, but not verified yet
    await w.commit(blob.length, digestOf(blob));
    expect(sha(await reading)).toBe(digestOf(blob));
    tee.detach();
  });

  it('an interrupted download or a wrong digest fails the reader instead of handing it a short or wrong layer', async () => {
    const blob = randomBytes(3 << 20);
    const tee = new LayerTee(store);
    const w = await tee.ingester(store).writer({ ref: 'layer-li', desc: { digest: digestOf(blob), size: blob.length } });
    const file = (await tee.source()) as LayerFile;
    await w.write(blob.subarray(0, 2 << 20));
    const refused = expect(readFile(file)).rejects.toBeInstanceOf(LayerFileFailedError);
    await w.close();
    await refused;
    tee.detach();

    const tee2 = new LayerTee(store);
    const w2 = await tee2.ingester(store).writer({ ref: 'layer-lm', desc: { size: blob.length } });
    await w2.write(blob);
    const file2 = (await tee2.source()) as LayerFile;
    const refused2 = expect(readFile(file2)).rejects.toBeInstanceOf(LayerFileFailedError);
    await expect(w2.commit(blob.length, digestOf(randomBytes(8)))).rejects.toMatchObject({ code: 'DigestMismatch' });
    await refused2;
    tee2.detach();
  });

  it('a resumed ingest is not followed: the reader is refused at once (the caller unpacks the committed blob)', async () => {
    const blob = randomBytes(2 << 20);
    const first = await store.writer({ ref: 'layer-lr', desc: { digest: digestOf(blob), size: blob.length } });
    await first.write(blob.subarray(0, 1 << 20));
    await first.close();
    const tee = new LayerTee(store);
    const w = await tee.ingester(store).writer({ ref: 'layer-lr', desc: { digest: digestOf(blob), size: blob.length } });
    const source = await tee.source();
    expect(source).not.toBeInstanceOf(LayerFile);
    await expect(readAll(source as NodeJS.ReadableStream)).rejects.toThrow(/resumed ingest/);
    await w.write(blob.subarray(1 << 20));
    await w.commit(blob.length, digestOf(blob));
  });

  it('a download that fails before it writes, or writes nothing through the tee, never leaves the reader waiting', async () => {
    const tee = new LayerTee(store);
    tee.fail(new Error('registry said no'));
    await expect(readAll((await tee.source()) as NodeJS.ReadableStream)).rejects.toThrow(/registry said no/);
    const tee2 = new LayerTee(store);
    tee2.noWriter();
    await expect(readAll((await tee2.source()) as NodeJS.ReadableStream)).rejects.toThrow(/no ingest/);
  });
});

describe('LayerTee, ingest as a stream of copies', () => {
  it('a reader that never reads does not hold up the download; afterwards it gets every byte, the rest from the committed blob', async () => {
    const blob = randomBytes(24 << 20);
    const tee = new LayerTee(store);
    const w = await tee.ingester(withoutFd(store)).writer({ ref: 'layer-x', desc: { digest: digestOf(blob), size: blob.length } });
    // Every write resolves although nothing reads: the tee stops copying once its buffer is full.
    for (let off = 0; off < blob.length; off += 1 << 20) await w.write(blob.subarray(off, off + (1 << 20)));
    await w.commit(blob.length, digestOf(blob));
    const got = await readAll(tee.stream);
    expect(got.length).toBe(blob.length);
    expect(sha(got)).toBe(digestOf(blob));
  });

  it('a reader that keeps up gets the bytes straight from the download', async () => {
    const blob = randomBytes(3 << 20);
    const tee = new LayerTee(store);
    const reading = readAll(tee.stream);
    const w = await tee.ingester(withoutFd(store)).writer({ ref: 'layer-y', desc: { digest: digestOf(blob), size: blob.length } });
    for (let off = 0; off < blob.length; off += 256 << 10) await w.write(blob.subarray(off, off + (256 << 10)));
    await w.commit(blob.length, digestOf(blob));
    expect(sha(await reading)).toBe(digestOf(blob));
  });

  it('an interrupted download fails the reader instead of handing it a short layer', async () => {
    const blob = randomBytes(8 << 20);
    const tee = new LayerTee(store);
    const w = await tee.ingester(withoutFd(store)).writer({ ref: 'layer-z', desc: { digest: digestOf(blob), size: blob.length } });
    await w.write(blob.subarray(0, 6 << 20));
    const refused = expect(readAll(tee.stream)).rejects.toThrow(/download interrupted/);
    await w.close();
    await refused;
  });

  it('a reader that fell behind follows the ingest as it is written, and ends only once the commit verified it', async () => {
    const blob = randomBytes(12 << 20);
    const tee = new LayerTee(store);
    const w = await tee.ingester(withoutFd(store)).writer({ ref: 'layer-f', desc: { digest: digestOf(blob), size: blob.length } });
    for (let off = 0; off < 8 << 20; off += 1 << 20) await w.write(blob.subarray(off, off + (1 << 20)));
    // Nothing read yet: the tee stopped copying. The reader now reads from the ingest's file, before any commit.
    const parts: Buffer[] = [];
    let got = 0;
    let ended = false;
    tee.stream.on('end', () => { ended = true; });
    const firstEight = new Promise<void>((resolve, reject) => {
      tee.stream.on('data', (c: Buffer) => { parts.push(c); got += c.length; if (got >= 8 << 20) resolve(); });
      tee.stream.on('error', reject);
    });
    await firstEight;
    expect(got).toBe(8 << 20);
    for (let off = 8 << 20; off < blob.length; off += 1 << 20) await w.write(blob.subarray(off, off + (1 << 20)));
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toBe(blob.length);
    expect(ended).toBe(false); // every byte is there, but not verified yet
    await w.commit(blob.length, digestOf(blob));
    await new Promise<void>((r) => { if (ended) r(); else tee.stream.on('end', () => r()); });
    expect(sha(Buffer.concat(parts))).toBe(digestOf(blob));
  });

  it('a follower fails when the commit finds the bytes wrong', async () => {
    const blob = randomBytes(4 << 20);
    const tee = new LayerTee(store);
    const w = await tee.ingester(withoutFd(store)).writer({ ref: 'layer-m', desc: { size: blob.length } });
    for (let off = 0; off < blob.length; off += 1 << 20) await w.write(blob.subarray(off, off + (1 << 20)));
    const refused = expect(readAll(tee.stream)).rejects.toMatchObject({ code: 'DigestMismatch' });
    await expect(w.commit(blob.length, digestOf(randomBytes(8)))).rejects.toMatchObject({ code: 'DigestMismatch' });
    await refused;
  });

  it('with a store that cannot read an ingest back, a reader that fell behind gets the rest from the committed blob', async () => {
    const blob = randomBytes(6 << 20);
    const tee = new LayerTee(store);
    const w = await tee.ingester(withoutReadBack(store)).writer({ ref: 'layer-b', desc: { digest: digestOf(blob), size: blob.length } });
    for (let off = 0; off < blob.length; off += 1 << 20) await w.write(blob.subarray(off, off + (1 << 20)));
    const head: Buffer[] = [];
    const onData = (c: Buffer): void => { head.push(c); };
    tee.stream.on('data', onData);
    await new Promise((r) => setTimeout(r, 50));
    tee.stream.off('data', onData);
    tee.stream.pause();
    expect(Buffer.concat(head).length).toBe(1 << 20); // the first write, over the tee's buffer; the rest waits for the blob
    const reading = readAll(tee.stream);
    await w.commit(blob.length, digestOf(blob));
    expect(sha(Buffer.concat([...head, await reading]))).toBe(digestOf(blob));
  });

  it('a reader that waits for the committed blob fails, not hangs, when the blob cannot be opened', async () => {
    const blob = randomBytes(2 << 20);
    const gone = { readerAt: async () => { throw Object.assign(new Error('blob vanished'), { code: 'ENOENT' }); } };
    const tee = new LayerTee(gone);
    const w = await tee.ingester(withoutReadBack(store)).writer({ ref: 'layer-g', desc: { digest: digestOf(blob), size: blob.length } });
    for (let off = 0; off < blob.length; off += 1 << 20) await w.write(blob.subarray(off, off + (1 << 20)));
    const refused = expect(readAll(tee.stream)).rejects.toThrow(/blob vanished/);
    await w.commit(blob.length, digestOf(blob));
    await refused;
  });
});
