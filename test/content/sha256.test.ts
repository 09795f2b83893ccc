import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ResumableSha256 } from '../../src/content/sha256.js';

const node = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('resumable sha256', () => {
  it('matches Node for every length around the block and padding boundaries', () => {
    const data = randomBytes(300);
    for (let n = 0; n <= 300; n++) expect(new ResumableSha256().update(data.subarray(0, n)).hex()).toBe(node(data.subarray(0, n)));
  });

  it('saved and restored at any split point gives the same digest', () => {
    const data = randomBytes(5000);
    for (const split of [0, 1, 63, 64, 65, 127, 128, 1000, 4999, 5000]) {
      const a = new ResumableSha256();
      for (let o = 0; o < split; o += 7) a.update(data.subarray(o, Math.min(o + 7, split)));
      const saved = JSON.parse(JSON.stringify(a.save()));
      const b = new ResumableSha256(saved).update(data.subarray(split));
      expect(b.hex()).toBe(node(data));
      expect(a.hex()).toBe(node(data.subarray(0, split))); // hex() does not disturb the state
    }
  });

  it('rejects an inconsistent state', () => {
    const s = new ResumableSha256().update(randomBytes(70)).save();
    expect(() => new ResumableSha256({ ...s, length: 64 })).toThrow();
    expect(() => new ResumableSha256({ ...s, h: [1, 2] })).toThrow();
  });
});
