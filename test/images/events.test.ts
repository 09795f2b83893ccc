// The event stream: an event logged while a caller consumes the replay of older ones is followed, not
// lost. The events come from real operations: a pull from a docker-registry, then a tag.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage } from '../../src/index.js';
import { makeTestImage, pushRaw } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';

let reg: Registry;
let work: string;
const ref = (n: string) => `${reg.host}/${n}`;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-events-'));
  reg = await startRegistry();
  await pushRaw(reg.url, 'app', 'latest', await makeTestImage({ layers: [{ files: { 'hello.txt': 'hi\n' } }] }));
});

afterAll(async () => {
  await reg?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('events', () => {
  it('an event logged while the caller consumes the replay is followed, not lost', async () => {
    const s = await openStowage({ root: path.join(work, 'store') });
    try {
      const since = new Date(Date.now() - 1000);
      await s.pull(ref('app:latest'));
      const ctrl = new AbortController();
      const timer = setTimeout(() => ctrl.abort(), 5000);
      const seen: string[] = [];
      try {
        for await (const e of s.events({ since, signal: ctrl.signal })) {
          seen.push(e.Action);
          // A slow consumer: the next event happens before it asks for more of the replay.
          if (seen.length === 1) await s.tag(ref('app:latest'), 'during/replay:1');
          if (e.Action === 'tag') ctrl.abort();
        }
      } finally { clearTimeout(timer); }
      expect(seen).toEqual(['pull', 'tag']);
    } finally { await s.close(); }
  });
});
