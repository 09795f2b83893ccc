// The layer tee: an unpacker reads a layer while it downloads, and the download never waits for it.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openContentStore, type ContentStore } from '../../src/content/index.js';
import { LayerTee } from '../../src/images/tee.js';
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

describe('LayerTee', () => {
  it('a reader that never reads does not hold up the download; afterwards it gets every byte, the rest from the committed blob', async () => {
    const blob = randomBytes(24 << 20);
    const tee = new LayerTee(store);
    const w = await tee.ingester(store).writer({ ref: 'layer-x', desc: { digest: digestOf(blob), size: blob.length } });
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
    const w = await tee.ingester(store).writer({ ref: 'layer-y', desc: { digest: digestOf(blob), size: blob.length } });
    for (let off = 0; off < blob.length; off += 256 << 10) await w.write(blob.subarray(off, off + (256 << 10)));
    await w.commit(blob.length, digestOf(blob));
    expect(sha(await reading)).toBe(digestOf(blob));
  });

  it('an interrupted download fails the reader instead of handing it a short layer', async () => {
    const blob = randomBytes(8 << 20);
    const tee = new LayerTee(store);
    const w = await tee.ingester(store).writer({ ref: 'layer-z', desc: { digest: digestOf(blob), size: blob.length } });
    await w.write(blob.subarray(0, 6 << 20));
    const refused = expect(readAll(tee.stream)).rejects.toThrow(/download interrupted/);
    await w.close();
    await refused;
  });
});
