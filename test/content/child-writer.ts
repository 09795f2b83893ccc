// A separate process that writes into a content store: used by the cross-process tests.
// argv[2] = JSON { root, ref, src, mode: 'hold' | 'race', stopAt?, chunk?, pauseMs?, checkpointMinBytes? }
import fs from 'node:fs';
import { openContentStore, writeBlob } from '../../src/content/index.js';
import { digestOf } from '../../src/oci/index.js';

const args = JSON.parse(process.argv[2]!) as {
  root: string; ref: string; src: string; mode: 'hold' | 'race';
  stopAt?: number; chunk?: number; pauseMs?: number; checkpointMinBytes?: number; checkpointMinSeconds?: number; checkpointIntervalBytes?: number; checkpointNice?: number;
};
const data = fs.readFileSync(args.src);
const desc = { size: data.length, digest: digestOf(data) };
const store = await openContentStore(args.root, {
  ...(args.checkpointMinBytes !== undefined ? { checkpointMinBytes: args.checkpointMinBytes } : {}),
  ...(args.checkpointMinSeconds !== undefined ? { checkpointMinSeconds: args.checkpointMinSeconds } : {}),
  ...(args.checkpointIntervalBytes !== undefined ? { checkpointIntervalBytes: args.checkpointIntervalBytes } : {}),
  ...(args.checkpointNice !== undefined ? { checkpointNice: args.checkpointNice } : {}),
});

if (args.mode === 'race') {
  await writeBlob(store, args.ref, fs.createReadStream(args.src, { highWaterMark: 64 << 10 }), desc);
  process.stdout.write('done\n');
} else {
  const w = await store.writer({ ref: args.ref, desc });
  const stopAt = args.stopAt ?? data.length;
  const chunk = args.chunk ?? 1 << 18;
  let o = w.status().offset;
  process.stdout.write(`open ${o}\n`);
  while (o < stopAt) {
    const n = Math.min(chunk, stopAt - o);
    await w.write(data.subarray(o, o + n));
    o += n;
    process.stdout.write(`at ${o}\n`);
    if (args.pauseMs) await new Promise((r) => setTimeout(r, args.pauseMs));
  }
  process.stdout.write('holding\n');
  setInterval(() => {}, 1 << 30); // hold the lock until killed
}
