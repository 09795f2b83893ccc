// applyLayer in a worker thread: the same tree, result and typed errors as in the main thread.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { AbortedError, DigestMismatchError } from '../../src/errors/index.js';
import { applyLayer, type ApplyOptions } from '../../src/snapshots/apply.js';
import { applyLayerInWorker, applyWorkerAvailable } from '../../src/snapshots/apply-in-worker.js';
import { compareTrees, formatTreeDiff } from '../../src/testing/index.js';
import { tarOf } from '../harness/images.js';
import { buildTar, file } from './helpers.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-apply-worker-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
let n = 0;
const dir = () => path.join(work, `t${n++}`);

/** A stream of `buf` in 64 KiB chunks (slices of one buffer, as a network read gives them). */
const chunked = (buf: Buffer) => Readable.from((function* () { for (let o = 0; o < buf.length; o += 65536) yield buf.subarray(o, o + 65536); })());

const layer = async () => gzipSync(await tarOf([
  { path: 'etc', type: 'directory' },
  { path: 'etc/hello', content: 'hi\n' },
  { path: 'bin', type: 'directory', mode: 0o750 },
  { path: 'bin/tool', content: randomBytes(3 << 20), mode: 0o755 },
  { path: 'bin/alias', type: 'symlink', linkname: 'tool' },
  { path: 'gone', type: 'directory' },
  { path: 'gone/.wh.old', content: '' },
  { path: '.wh.removed', content: '' },
]));

describe('applyLayerInWorker', () => {
  it('finds its worker program under the test runner', () => {
    expect(applyWorkerAvailable()).toBe(true);
  });

  it('makes the same tree and result as applyLayer', async () => {
    const gz = await layer();
    const opts: ApplyOptions = { mode: 'overlay', compression: 'gzip' };
    const [a, b] = [dir(), dir()];
    const inMain = await applyLayer(chunked(gz), a, opts);
    const inWorker = await applyLayerInWorker(chunked(gz), b, opts);
    expect(inWorker).toEqual(inMain);
    const diffs = compareTrees(a, b, { owners: true, directoryModes: true });
    expect(diffs, formatTreeDiff(diffs)).toEqual([]);
    expect(fs.readFileSync(path.join(b, 'etc/hello'), 'utf8')).toBe('hi\n');
  });

  it('refuses an entry escaping the root with the same typed error', async () => {
    const bad = await buildTar([file('../escape', 'x')]); // hostile: the image builder refuses to write it
    const inMain = await applyLayer(chunked(bad), dir(), { mode: 'overlay' }).catch((e: unknown) => e);
    const target = dir();
    const inWorker = await applyLayerInWorker(chunked(bad), target, { mode: 'overlay' }).catch((e: unknown) => e);
    expect(inMain).toMatchObject({ code: 'InvalidArgument' });
    expect(inWorker).toMatchObject({ code: (inMain as { code: string }).code, message: (inMain as Error).message });
    expect(fs.existsSync(path.join(work, 'escape'))).toBe(false);
  });

  it('a declared compression the bytes contradict is refused as in the main thread', async () => {
    const plain = await tarOf([{ path: 'a', content: 'a' }]);
    const inMain = await applyLayer(chunked(plain), dir(), { mode: 'overlay', compression: 'gzip' }).catch((e: unknown) => e);
    const inWorker = await applyLayerInWorker(chunked(plain), dir(), { mode: 'overlay', compression: 'gzip' }).catch((e: unknown) => e);
    expect((inMain as { code?: string }).code).toBeDefined();
    expect(inWorker).toMatchObject({ code: (inMain as { code: string }).code });
  });

  it('a source that fails passes its typed error through, and leaves no staging directory', async () => {
    const gz = await layer();
    const target = dir();
    const failing = Readable.from((async function* () {
      yield gz.subarray(0, 1 << 20);
      throw new DigestMismatchError('download went wrong', { digest: 'sha256:x' });
    })());
    await expect(applyLayerInWorker(failing, target, { mode: 'overlay', compression: 'gzip' })).rejects.toMatchObject({ code: 'DigestMismatch', message: 'download went wrong' });
    expect(fs.readdirSync(work).filter((d) => d.startsWith('.stowage-apply'))).toEqual([]);
  });

  it('an abort mid-layer ends it Aborted', async () => {
    const gz = await layer();
    const ctrl = new AbortController();
    const slow = Readable.from((async function* () {
      yield gz.subarray(0, 65536);
      ctrl.abort();
      await new Promise((r) => setImmediate(r));
      for (let o = 65536; o < gz.length; o += 65536) yield gz.subarray(o, o + 65536);
    })());
    const e = await applyLayerInWorker(slow, dir(), { mode: 'overlay', compression: 'gzip', signal: ctrl.signal }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AbortedError);
  });
});
