import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SavableSha256 } from '../../src/content/sha256.js';

const node = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('savable sha256', () => {
  it('matches Node for every length around the block and padding boundaries', async () => {
    const data = randomBytes(300);
    const h = await SavableSha256.create();
    for (let n = 0; n <= 300; n++) {
      h.reset();
      expect(h.update(data.subarray(0, n)).hex()).toBe(node(data.subarray(0, n)));
    }
  });

  it('saved and loaded at any split point gives the same digest', async () => {
    const data = randomBytes(5000);
    for (const split of [0, 1, 63, 64, 65, 127, 128, 1000, 4999, 5000]) {
      const a = await SavableSha256.create();
      for (let o = 0; o < split; o += 7) a.update(data.subarray(o, Math.min(o + 7, split)));
      const saved = JSON.parse(JSON.stringify(a.save()));
      const b = (await SavableSha256.create(saved)).update(data.subarray(split));
      expect([b.hex(), b.length]).toEqual([node(data), data.length]);
      expect(a.hex()).toBe(node(data.subarray(0, split))); // hex() does not disturb the state
      expect(a.update(data.subarray(split)).hex()).toBe(node(data));
    }
  });

  it('restore puts a saved state back (undo of a failed write)', async () => {
    const h = (await SavableSha256.create()).update(Buffer.from('kept'));
    const mark = h.save();
    h.update(Buffer.from('written, then rolled back'));
    h.restore(mark);
    expect([h.update(Buffer.from('!')).hex(), h.length]).toEqual([node(Buffer.from('kept!')), 5]);
  });

  it('refuses a state it did not write: truncated, or from another hash-wasm build', async () => {
    const s = (await SavableSha256.create()).update(randomBytes(70)).save();
    const bytes = Buffer.from(s.state, 'base64');
    await expect(SavableSha256.create({ ...s, state: bytes.subarray(0, bytes.length - 1).toString('base64') })).rejects.toThrow(/length/);
    const otherBuild = Buffer.from(bytes);
    otherBuild[0]! ^= 0xff; // the 4-byte prefix names the WebAssembly build that saved the state
    await expect(SavableSha256.create({ ...s, state: otherBuild.toString('base64') })).rejects.toThrow(/incompatible/);
  });
});
