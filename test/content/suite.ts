/**
 * The content store conformance suite: containerd's `core/content/testsuite/testsuite.go` plus the local
 * and helper tests worth porting, written against the ContentStore interface only, so that any
 * implementation can be run through it: the local store (local.test.ts) and the metadata-tracked store
 * the image service writes through, with and without a lease (test/images/tracked-content.test.ts).
 *
 * Namespace cases (CrossNamespaceAppend/Share/Isolate, SharedNamespaceIsolate) do not apply: a store
 * has one namespace (two stores are two roots).
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EMPTY_SHA256, digestOf, type Digest } from '../../src/oci/index.js';
import {
  copyInto,
  openWriterWaiting,
  readBlob,
  writeBlob,
  type ContentStore,
  type Info,
  type SeekableSource,
  type Writer,
} from '../../src/content/index.js';
import { expectCode } from '../harness/expect.js';

export interface StoreUnderTest {
  store: ContentStore;
  cleanup(): Promise<void>;
}

/** Coarse filesystem clocks can stamp a file a few ms before `Date.now()` said it was. */
const CLOCK_SLACK_MS = 20;

export function expectWithin(d: Date, from: Date, to: Date): void {
  expect(d.getTime()).toBeGreaterThanOrEqual(from.getTime() - CLOCK_SLACK_MS);
  expect(d.getTime()).toBeLessThanOrEqual(to.getTime() + CLOCK_SLACK_MS);
}

/** Deterministic pseudo-random bytes (fast, reproducible by seed). */
export function bytesOf(size: number, seed = 1): Buffer {
  const key = createHash('sha256').update(`seed-${seed}`).digest();
  const aes = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return Buffer.concat([aes.update(Buffer.alloc(size)), aes.final()]);
}

async function writeChunked(w: Writer, data: Uint8Array, chunk = 32): Promise<void> {
  for (let o = 0; o < data.length; o += chunk) await w.write(data.subarray(o, Math.min(o + chunk, data.length)));
}

async function readAll(store: ContentStore, dgst: Digest): Promise<Buffer> {
  const ra = await store.readerAt({ digest: dgst });
  try {
    return await ra.readAt(0, ra.size);
  } finally {
    await ra.close();
  }
}

async function checkBlob(store: ContentStore, data: Uint8Array, labels?: Record<string, string>): Promise<Info> {
  const dgst = digestOf(data);
  const info = await store.info(dgst);
  expect(info.digest).toBe(dgst);
  expect(info.size).toBe(data.length);
  if (labels) expect(info.labels).toEqual(labels);
  expect((await readAll(store, dgst)).equals(Buffer.from(data))).toBe(true);
  return info;
}

const GRID_SIZES = [500, 5000, 50000];
const GRID_CUTS = [0, 0.1, 0.5, 0.9, 1];

export function contentSuite(name: string, factory: () => Promise<StoreUnderTest>): void {
  describe(`content suite: ${name}`, () => {
    let sut: StoreUnderTest;
    let store: ContentStore;
    beforeEach(async () => {
      sut = await factory();
      store = sut.store;
    });
    afterEach(async () => {
      await sut.cleanup();
    });

    it('Writer: five writers at once, committed with size 0, no digest, labels', async () => {
      const blobs = [bytesOf(100, 1), bytesOf(200, 2), bytesOf(300, 3), bytesOf(400, 4), bytesOf(32 << 20, 5)];
      const descs = [
        undefined,
        { size: blobs[1]!.length },
        { digest: digestOf(blobs[2]!) },
        { size: blobs[3]!.length, digest: digestOf(blobs[3]!) },
        { size: blobs[4]!.length, digest: digestOf(blobs[4]!) },
      ];
      const before = new Date();
      const writers = await Promise.all(blobs.map((_, i) => store.writer({ ref: `c${i + 1}`, ...(descs[i] ? { desc: descs[i] } : {}) })));
      for (let i = 0; i < 5; i++) await writeChunked(writers[i]!, blobs[i]!, i === 4 ? 64 << 10 : 32);
      for (let i = 0; i < 5; i++) {
        expect(writers[i]!.digest()).toBe(digestOf(blobs[i]!));
        await writers[i]!.commit(0, undefined, { labels: { name: `c${i + 1}`, 'x.y/z': 'v' } });
      }
      const after = new Date();
      for (let i = 0; i < 5; i++) {
        const info = await checkBlob(store, blobs[i]!, { name: `c${i + 1}`, 'x.y/z': 'v' });
        expectWithin(info.createdAt, before, after);
        expectWithin(info.updatedAt, before, after);
      }
      expect(await store.listStatuses()).toEqual([]);
    });

    it('Writer.readerAt (when offered): reads the bytes written so far as the ingest grows, and the same bytes after commit', async () => {
      const data = bytesOf(3 << 20, 9);
      const w = await store.writer({ ref: 'read-back', desc: { size: data.length } });
      if (!w.readerAt) { await w.close(); return; }
      await w.write(data.subarray(0, 1 << 20));
      const ra = await w.readerAt();
      try {
        expect(ra.size).toBe(1 << 20);
        expect((await ra.readAt(0, 2 << 20)).equals(data.subarray(0, 1 << 20))).toBe(true);
        await w.write(data.subarray(1 << 20));
        expect(ra.size).toBe(data.length);
        expect((await ra.readAt(1 << 20, 64)).equals(data.subarray(1 << 20, (1 << 20) + 64))).toBe(true);
        await w.commit(data.length, digestOf(data));
        expect(ra.size).toBe(data.length);
        expect((await ra.readAt(data.length - 100, 100)).equals(data.subarray(data.length - 100))).toBe(true);
      } finally {
        await ra.close();
      }
      await checkBlob(store, data);
    });

    it('UpdateStatus: status and digest follow each write', async () => {
      const data = bytesOf(256, 7);
      const before = new Date();
      const w = await store.writer({ ref: 'update-status', desc: { size: 256 } });
      const opened = new Date();
      let off = 0;
      for (const n of [64, 128, 64]) {
        const t0 = new Date();
        await w.write(data.subarray(off, off + n));
        off += n;
        const t1 = new Date();
        const st = w.status();
        expect(st.ref).toBe('update-status');
        expect(st.offset).toBe(off);
        expect(st.total).toBe(256);
        expect(w.digest()).toBe(digestOf(data.subarray(0, off)));
        expectWithin(st.startedAt, before, opened);
        expectWithin(st.updatedAt, t0, t1);
        const persisted = await store.status('update-status');
        expect(persisted.offset).toBe(off);
        expect(persisted.total).toBe(256);
      }
      await w.commit(256, digestOf(data));
      await checkBlob(store, data);
      await expectCode(store.status('update-status'), 'NotFound');
    });

    it('CommitExists: writing existing content is AlreadyExists, with or without digest', async () => {
      const data = bytesOf(1000, 8);
      await writeBlob(store, 'first', data, { size: data.length, digest: digestOf(data) });
      await expectCode(store.writer({ ref: 'again', desc: { digest: digestOf(data) } }), 'AlreadyExists');
      for (const withDigest of [true, false]) {
        const w = await store.writer({ ref: 'commit-exists' });
        await w.write(data);
        await expectCode(w.commit(data.length, withDigest ? digestOf(data) : undefined), 'AlreadyExists');
        // AlreadyExists aborted the ingest and freed the ref
        await expectCode(store.status('commit-exists'), 'NotFound');
      }
      await checkBlob(store, data);
    });

    it('Resume: close at 128 of 256, reopen, status and digest carry over', async () => {
      const data = bytesOf(256, 9);
      const w = await store.writer({ ref: 'resume', desc: { size: 256, digest: digestOf(data) } });
      await w.write(data.subarray(0, 128));
      const st = w.status();
      const dg = w.digest();
      await w.close();
      await w.close(); // a second close is fine
      const w2 = await store.writer({ ref: 'resume', desc: { size: 256, digest: digestOf(data) } });
      const st2 = w2.status();
      expect(st2.ref).toBe(st.ref);
      expect(st2.offset).toBe(128);
      expect(st2.total).toBe(256);
      expect(Math.abs(st2.startedAt.getTime() - st.startedAt.getTime())).toBeLessThanOrEqual(1);
      expect(w2.digest()).toBe(dg);
      await w2.write(data.subarray(128));
      await w2.commit(256, digestOf(data));
      await checkBlob(store, data);
    });

    for (const variant of ['Truncate', 'Discard', 'Copy', 'CopySeeker', 'CopyReaderAt'] as const) {
      it(`Resume${variant}: sizes ${GRID_SIZES.join('/')} × cut ${GRID_CUTS.map((c) => `${c * 100}%`).join('/')}`, async () => {
        for (const size of GRID_SIZES) {
          for (const cut of GRID_CUTS) {
            const data = bytesOf(size, size + Math.round(cut * 100));
            const dgst = digestOf(data);
            const ref = `resume-${variant}-${size}-${cut}`;
            const prefix = Math.floor(size * cut);
            const w = await store.writer({ ref, desc: { size, digest: dgst } });
            await w.write(data.subarray(0, prefix));
            await w.close();
            const w2 = await store.writer({ ref, desc: { size, digest: dgst } });
            expect(w2.status().offset).toBe(prefix);
            expect(w2.digest()).toBe(digestOf(data.subarray(0, prefix)));
            switch (variant) {
              case 'Truncate':
                await w2.truncate(0);
                expect(w2.status().offset).toBe(0);
                expect(w2.digest()).toBe(EMPTY_SHA256);
                await w2.write(data);
                await w2.commit(size, dgst);
                break;
              case 'Discard':
                await w2.write(data.subarray(prefix));
                await w2.commit(size, dgst);
                break;
              case 'Copy': {
                let read = 0;
                const src = Readable.from((function* () {
                  for (let o = 0; o < size; o += 1000) { read += Math.min(1000, size - o); yield data.subarray(o, o + 1000); }
                })());
                await copyInto(w2, src, { size, digest: dgst });
                expect(read).toBe(size); // a plain stream is read from the start and the prefix discarded
                break;
              }
              case 'CopySeeker': {
                const opened: number[] = [];
                const src: SeekableSource = { openAt: (o) => { opened.push(o); return Readable.from([data.subarray(o)]); } };
                await copyInto(w2, src, { size, digest: dgst });
                expect(opened).toEqual([prefix]);
                break;
              }
              case 'CopyReaderAt': {
                const offsets: number[] = [];
                const src = { size, readAt: async (o: number, n: number) => { offsets.push(o); return Buffer.from(data.subarray(o, o + n)); } };
                await copyInto(w2, src, { size, digest: dgst });
                if (prefix < size) expect(Math.min(...offsets)).toBe(prefix);
                else expect(offsets).toEqual([]);
                break;
              }
            }
            await checkBlob(store, data);
            await expectCode(store.status(ref), 'NotFound');
          }
        }
      });
    }

    it('SmallBlob: a 6-byte blob read through a larger window is exactly the blob', async () => {
      const data = Buffer.from('hello!');
      const dgst = digestOf(data);
      await writeBlob(store, 'small', data, { size: 6, digest: dgst });
      const ra = await store.readerAt({ digest: dgst });
      expect(ra.size).toBe(6);
      expect((await ra.readAt(0, 7)).toString()).toBe('hello!');
      expect((await ra.readAt(4, 100)).toString()).toBe('o!');
      expect((await ra.readAt(6, 10)).length).toBe(0);
      expect((await ra.readAt(60, 10)).length).toBe(0);
      const chunks: Buffer[] = [];
      for await (const c of ra.stream({ start: 1, end: 5 })) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('ello');
      chunks.length = 0;
      for await (const c of ra.stream()) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('hello!');
      await ra.close();
      expect((await readBlob(store, { digest: dgst, size: 6 })).toString()).toBe('hello!');
    });

    it('Labels: commit labels, replace all, per-key update and delete', async () => {
      const data = bytesOf(300, 11);
      const dgst = digestOf(data);
      const w = await store.writer({ ref: 'labels' });
      await w.write(data);
      const rootLabels = { name: 'test', 'containerd.io/gc.root': '2026-01-01T00:00:00Z' };
      await w.commit(data.length, dgst, { labels: rootLabels });
      const i0 = await store.info(dgst);
      expect(i0.labels).toEqual(rootLabels);

      await new Promise((r) => setTimeout(r, 5));
      const i1 = await store.update({ digest: dgst, labels: { k1: 'v1', k2: 'v2', k3: 'v3' } });
      expect(i1.labels).toEqual({ k1: 'v1', k2: 'v2', k3: 'v3' });
      expect(i1.updatedAt.getTime()).toBeGreaterThan(i0.updatedAt.getTime());
      expect(i1.createdAt.getTime()).toBe(i0.createdAt.getTime());

      await new Promise((r) => setTimeout(r, 5));
      const i2 = await store.update({ digest: dgst, labels: { k1: 'changed' } }, 'labels.k3', 'labels.k1');
      expect(i2.labels).toEqual({ k1: 'changed', k2: 'v2' });
      expect(i2.updatedAt.getTime()).toBeGreaterThan(i1.updatedAt.getTime());
      expect(i2.createdAt.getTime()).toBe(i0.createdAt.getTime());
      expect((await store.info(dgst)).labels).toEqual({ k1: 'changed', k2: 'v2' });

      const i3 = await store.update({ digest: dgst, labels: { only: 'one' } }, 'labels');
      expect(i3.labels).toEqual({ only: 'one' });
      await expectCode(store.update({ digest: dgst, labels: {} }, 'size'), 'InvalidArgument');
      await expectCode(store.update({ digest: digestOf('missing'), labels: {} }), 'NotFound');
    });

    it('CommitErrorState: lock, exists, wrong digest, wrong size, recovery, duplicate, truncate', async () => {
      const existing = bytesOf(500, 12);
      await writeBlob(store, 'pre', existing, { size: 500, digest: digestOf(existing) });
      const ref = 'commit-error-state';

      // a locked ref
      let w = await store.writer({ ref });
      const data = await expectCode(store.writer({ ref }), 'Unavailable');
      expect(data.heldSince).toBeTypeOf('string');

      // existing content, with and without digest: AlreadyExists, ref freed each time
      await w.write(existing);
      await expectCode(w.commit(500, digestOf(existing)), 'AlreadyExists');
      w = await store.writer({ ref });
      expect(w.status().offset).toBe(0);
      await w.write(existing);
      await expectCode(w.commit(0), 'AlreadyExists');

      // wrong digest: DigestMismatch, ingest kept, ref unlocked
      const fresh = bytesOf(700, 13);
      w = await store.writer({ ref });
      await w.write(fresh);
      await expectCode(w.commit(700, digestOf('something else')), 'DigestMismatch');
      await expectCode(w.write(fresh), 'FailedPrecondition'); // commit closed it
      await expectCode(w.commit(700), 'FailedPrecondition');
      w = await store.writer({ ref });
      expect(w.status().offset).toBe(700);
      expect(w.digest()).toBe(digestOf(fresh));

      // wrong size: SizeMismatch, ingest kept
      await expectCode(w.commit(701, digestOf(fresh)), 'SizeMismatch');
      w = await store.writer({ ref });
      expect(w.status().offset).toBe(700);
      await expectCode(w.commit(699), 'SizeMismatch');

      // the right size (and no digest) succeeds
      w = await store.writer({ ref });
      await w.commit(700);
      await checkBlob(store, fresh);

      // a later duplicate
      w = await store.writer({ ref });
      expect(w.status().offset).toBe(0);
      await w.write(fresh);
      await expectCode(w.commit(700, digestOf(fresh)), 'AlreadyExists');

      // truncate and close free the ref
      w = await store.writer({ ref });
      await w.write(Buffer.from('garbage'));
      await w.truncate(0);
      await expectCode(store.writer({ ref }), 'Unavailable');
      await w.close();
      w = await store.writer({ ref });
      expect(w.status().offset).toBe(0);
      await w.close();
      await store.abort(ref);
      await expectCode(store.status(ref), 'NotFound');
    });

    it('Walk: every blob once, with containerd filters', async () => {
      const blobs = [bytesOf(10, 21), bytesOf(20, 22), bytesOf(30, 23)];
      const labels: Record<string, string>[] = [{ kind: 'layer', 'a.b/c': 'x' }, { kind: 'config' }, {}];
      for (let i = 0; i < 3; i++) {
        const w = await store.writer({ ref: `walk-${i}` });
        await w.write(blobs[i]!);
        await w.commit(0, undefined, { labels: labels[i]! });
      }
      const walk = async (...filters: string[]) => {
        const seen: Digest[] = [];
        await store.walk((i) => { seen.push(i.digest); }, ...filters);
        return seen.sort();
      };
      const d = blobs.map((b) => digestOf(b));
      expect(await walk()).toEqual([...d].sort());
      expect(await walk(`digest==${d[1]}`)).toEqual([d[1]]);
      expect(await walk('size==30')).toEqual([d[2]]);
      expect(await walk('labels.kind')).toEqual([d[0], d[1]].sort());
      expect(await walk('labels.kind==layer')).toEqual([d[0]]);
      expect(await walk('labels.kind!=layer')).toEqual([d[1], d[2]].sort());
      expect(await walk('labels.kind~=^con')).toEqual([d[1]]);
      expect(await walk('labels."a.b/c"==x')).toEqual([d[0]]);
      expect(await walk('labels.kind==layer,size==20')).toEqual([]);
      expect(await walk('labels.kind==layer', 'size==20')).toEqual([d[0], d[1]].sort());
      await expectCode(walk('labels.kind=='), 'InvalidArgument');
      await expectCode(walk('size~=('), 'InvalidArgument');
      // an ingest in progress is invisible to walk and info
      const w = await store.writer({ ref: 'walk-pending' });
      await w.write(bytesOf(40, 24));
      expect(await walk()).toHaveLength(3);
      await expectCode(store.info(digestOf(bytesOf(40, 24))), 'NotFound');
      await w.close();
    });

    it('empty blob: timestamps and reads', async () => {
      const before = new Date();
      const w = await store.writer({ ref: 'empty' });
      expect(w.digest()).toBe(EMPTY_SHA256);
      await w.commit(0, EMPTY_SHA256);
      const info = await store.info(EMPTY_SHA256);
      expect(info.size).toBe(0);
      expectWithin(info.createdAt, before, new Date());
      expectWithin(info.updatedAt, before, new Date());
      expect((await readBlob(store, { digest: EMPTY_SHA256, size: 0 })).length).toBe(0);
      const ra = await store.readerAt({ digest: EMPTY_SHA256 });
      expect((await ra.readAt(0, 10)).length).toBe(0);
      await ra.close();
    });

    it('truncate recovers an ingest whose content is wrong', async () => {
      const data = bytesOf(4000, 31);
      const ref = 'truncate-recovers';
      const w = await store.writer({ ref, desc: { size: 4000, digest: digestOf(data) } });
      await w.write(Buffer.from('this is not the content'));
      await w.close();
      const w2 = await store.writer({ ref, desc: { size: 4000, digest: digestOf(data) } });
      expect(w2.status().offset).toBeGreaterThan(0);
      await w2.write(data.subarray(0, 100));
      await expectCode(w2.commit(4000, digestOf(data)), 'SizeMismatch');
      const w3 = await store.writer({ ref, desc: { size: 4000, digest: digestOf(data) } });
      await w3.truncate(0);
      await w3.write(data);
      await w3.commit(4000, digestOf(data));
      await checkBlob(store, data);
    });

    it('trylock: second writer is Unavailable, `wait` and openWriterWaiting wait for the first', async () => {
      const ref = 'trylock';
      const w = await store.writer({ ref });
      const data = await expectCode(store.writer({ ref }), 'Unavailable');
      expect(data.ref).toBe(ref);
      // waiting gives up with the lock error when the signal fires
      await expectCode(openWriterWaiting(store, { ref, signal: AbortSignal.timeout(60) }), 'Unavailable');
      await expectCode(store.writer({ ref, wait: true, signal: AbortSignal.timeout(60) }), 'Unavailable');
      const waiting = store.writer({ ref, wait: true });
      const waiting2 = openWriterWaiting(store, { ref: 'trylock-other' });
      await w.write(Buffer.from('abc'));
      setTimeout(() => void w.close(), 50);
      const w2 = await waiting;
      expect(w2.status().offset).toBe(3);
      await w2.close();
      await (await waiting2).close();
    });

    it('copy: short source, long source, and resume after a short read', async () => {
      const data = bytesOf(10000, 41);
      const dgst = digestOf(data);
      const ref = 'copy-short';
      let w = await store.writer({ ref, desc: { size: 10000, digest: dgst } });
      const short = await expectCode(copyInto(w, Readable.from([data.subarray(0, 6000)]), { size: 10000, digest: dgst }), 'SizeMismatch');
      expect(short.offset).toBe(6000);
      expect((await store.status(ref)).offset).toBe(6000); // kept for resume, ref released
      w = await store.writer({ ref, desc: { size: 10000, digest: dgst } });
      await expectCode(copyInto(w, Readable.from([data, Buffer.from('extra')]), { size: 10000, digest: dgst }), 'SizeMismatch');
      w = await store.writer({ ref, desc: { size: 10000, digest: dgst } });
      expect(w.status().offset).toBe(10000);
      await w.truncate(0);
      await copyInto(w, data, { size: 10000, digest: dgst });
      await checkBlob(store, data);
      // copy of existing content: AlreadyExists at commit is success
      w = await store.writer({ ref: 'copy-dup' });
      await copyInto(w, data, { size: 10000, digest: dgst });
      await expectCode(store.status('copy-dup'), 'NotFound');
    });

    it('writeBlob: existing digest is success without reading the source; readBlob checks', async () => {
      const data = bytesOf(2048, 51);
      const dgst = digestOf(data);
      await writeBlob(store, 'wb', Readable.from([data]), { size: data.length, digest: dgst }, { labels: { l: '1' } });
      expect((await store.info(dgst)).labels).toEqual({ l: '1' });
      const poisoned = { openAt(): AsyncIterable<Uint8Array> { throw new Error('source must not be read'); } };
      await writeBlob(store, 'wb2', poisoned, { size: data.length, digest: dgst });
      expect((await readBlob(store, { digest: dgst })).equals(data)).toBe(true);
      await expectCode(readBlob(store, { digest: dgst, size: 2047 }), 'SizeMismatch');
      await expectCode(readBlob(store, { digest: dgst }, 1024), 'ResourceExhausted');
      await expectCode(readBlob(store, { digest: digestOf('nope') }), 'NotFound');
      const inline = Buffer.from('{"inline":true}');
      // inline data is used without touching the store
      expect((await readBlob(store, { digest: digestOf(inline), size: inline.length, data: inline.toString('base64') })).equals(inline)).toBe(true);
      // wrong digest: writeBlob fails with DigestMismatch, nothing visible
      await expectCode(writeBlob(store, 'wb3', bytesOf(10, 52), { size: 10, digest: digestOf('other') }), 'DigestMismatch');
      await expectCode(store.info(digestOf(bytesOf(10, 52))), 'NotFound');
    });

    it('ListStatuses, Status and Abort', async () => {
      const a = await store.writer({ ref: 'ls-a', desc: { size: 10 } });
      await a.write(Buffer.from('12345'));
      await a.close();
      const b = await store.writer({ ref: 'ls-b' });
      await b.write(Buffer.from('1'));
      const all = await store.listStatuses();
      expect(all.map((s) => s.ref).sort()).toEqual(['ls-a', 'ls-b']);
      expect(all.find((s) => s.ref === 'ls-a')).toMatchObject({ offset: 5, total: 10 });
      expect((await store.listStatuses('ref==ls-b')).map((s) => s.ref)).toEqual(['ls-b']);
      expect((await store.listStatuses('ref~=^ls-')).length).toBe(2);
      expect((await store.listStatuses('ref==ls-a', 'ref==ls-b')).length).toBe(2);
      expect(await store.listStatuses('ref==nope')).toEqual([]);
      // abort works while a writer is open
      await store.abort('ls-b');
      await expectCode(store.status('ls-b'), 'NotFound');
      await expect(b.commit(1)).rejects.toBeTruthy(); // its ingest is gone: nothing to commit
      await expectCode(store.info(digestOf('1')), 'NotFound');
      await store.abort('ls-a');
      await expectCode(store.abort('ls-a'), 'NotFound');
      expect(await store.listStatuses()).toEqual([]);
    });

    it('Delete and reads of missing blobs', async () => {
      const data = bytesOf(64, 61);
      const dgst = digestOf(data);
      await writeBlob(store, 'del', data, { size: 64, digest: dgst });
      await store.delete(dgst);
      await expectCode(store.info(dgst), 'NotFound');
      await expectCode(store.readerAt({ digest: dgst }), 'NotFound');
      await expectCode(store.delete(dgst), 'NotFound');
      // and it can be written again
      await writeBlob(store, 'del', data, { size: 64, digest: dgst });
      await checkBlob(store, data);
    });

    it('bad input: typed errors, nothing visible', async () => {
      const badRefs = ['', 'a/b', 'a\\b', '..', 'x..y', 'nul\u0000', 'tab\t', 'bell\u0007', 'del\u007f', 'x'.repeat(257), 'é'.repeat(129)];
      for (const ref of badRefs) {
        await expectCode(store.writer({ ref }), 'InvalidArgument');
        await expectCode(store.status(ref), 'InvalidArgument');
        await expectCode(store.abort(ref), 'InvalidArgument');
      }
      await store.writer({ ref: 'x'.repeat(256) }).then((w) => w.close()); // 256 bytes is fine
      const unknownAlg = `md5:${'0'.repeat(32)}` as Digest;
      await expectCode(store.writer({ ref: 'alg', desc: { digest: unknownAlg } }), 'InvalidArgument');
      await expectCode(store.info(unknownAlg), 'InvalidArgument');
      await expectCode(store.readerAt({ digest: unknownAlg }), 'InvalidArgument');
      await expectCode(store.delete('sha256:nothex' as Digest), 'InvalidArgument');
      await expectCode(store.info(`sha256:${'A'.repeat(64)}` as Digest), 'InvalidArgument');
      await expectCode(store.listStatuses('ref=='), 'InvalidArgument');
      await expectCode(store.readerAt({ digest: digestOf('missing') }), 'NotFound');
      // a wrong digest at commit, a truncated write: typed, nothing visible
      const data = bytesOf(100, 71);
      let w = await store.writer({ ref: 'bad' });
      await w.write(data);
      await expectCode(w.commit(100, `sha256:${'0'.repeat(64)}`), 'DigestMismatch');
      w = await store.writer({ ref: 'bad' });
      await expectCode(w.commit(200, digestOf(data)), 'SizeMismatch');
      await expectCode(store.info(digestOf(data)), 'NotFound');
      let n = 0;
      await store.walk(() => { n++; });
      expect(n).toBe(0);
      // writer method misuse
      w = await store.writer({ ref: 'bad' });
      await expectCode(w.truncate(5 as 0), 'InvalidArgument');
      await w.close();
      await expectCode(w.write(data), 'FailedPrecondition');
    });

    it('copy stops on abort and keeps the ingest for a resume', async () => {
      const data = bytesOf(1 << 20, 91);
      const dgst = digestOf(data);
      const ac = new AbortController();
      const w = await store.writer({ ref: 'copy-abort', desc: { size: data.length, digest: dgst } });
      const src = Readable.from((function* () {
        for (let o = 0; o < data.length; o += 1 << 16) {
          if (o === 4 << 16) ac.abort();
          yield data.subarray(o, o + (1 << 16));
        }
      })());
      await expectCode(copyInto(w, src, { size: data.length, digest: dgst }, { signal: ac.signal }), 'Aborted');
      const kept = (await store.status('copy-abort')).offset;
      expect(kept).toBeGreaterThan(0); // the stream reads ahead, so the exact stop point may vary
      expect(kept).toBeLessThan(data.length);
      await writeBlob(store, 'copy-abort', data, { size: data.length, digest: dgst });
      await checkBlob(store, data);
    });

    it('writes issued without awaiting each land in order', async () => {
      const data = bytesOf(64 * 1000, 81);
      const w = await store.writer({ ref: 'unawaited' });
      const pending: Promise<void>[] = [];
      for (let o = 0; o < data.length; o += 1000) pending.push(w.write(data.subarray(o, o + 1000)));
      const committed = w.commit(data.length, digestOf(data));
      await Promise.all(pending);
      await committed;
      await checkBlob(store, data);
    });

    it('a truncate issued without awaiting keeps its place among queued writes', async () => {
      const junk = bytesOf(300_000, 82);
      const data = bytesOf(200_000, 83);
      const w = await store.writer({ ref: 'unawaited-truncate' });
      const pending = [w.write(junk), w.truncate(0), w.write(data.subarray(0, 100_000)), w.write(data.subarray(100_000))];
      await Promise.all(pending);
      expect(w.status().offset).toBe(data.length);
      expect(w.digest()).toBe(digestOf(data));
      await w.commit(data.length, digestOf(data));
      await checkBlob(store, data);
    });

    it('sha512 expected digest selects that algorithm', async () => {
      const data = randomBytes(3000);
      const d512 = digestOf(data, 'sha512');
      const w = await store.writer({ ref: 'sha512', desc: { digest: d512, size: data.length } });
      await w.write(data.subarray(0, 1000));
      await w.close();
      const w2 = await store.writer({ ref: 'sha512', desc: { digest: d512, size: data.length } });
      expect(w2.digest()).toBe(digestOf(data.subarray(0, 1000), 'sha512'));
      await w2.write(data.subarray(1000));
      await w2.commit(data.length, d512);
      expect((await store.info(d512)).size).toBe(3000);
      expect((await readBlob(store, { digest: d512 })).equals(data)).toBe(true);
    });
  });
}
