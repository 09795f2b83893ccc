// The program of an apply worker thread (see apply-in-worker.ts): it receives a layer's bytes as
// messages, applies them with applyLayer, and reports entries it could not represent and the result.
import { Readable } from 'node:stream';
import { parentPort, workerData } from 'node:worker_threads';
import { applyLayer, type ApplyOptions } from './apply.js';
import { rebuildError, workerError, type FromWorker, type ToWorker } from './apply-in-worker.js';

const port = parentPort!;
const { targetDir, opts } = workerData as { targetDir: string; opts: Omit<ApplyOptions, 'signal' | 'onUnsupported'> };
const abort = new AbortController();
const queue: Buffer[] = [];
let ended = false;
let failed: Error | undefined;
let wake: (() => void) | undefined;
const post = (m: FromWorker) => port.postMessage(m);

port.on('message', (m: ToWorker) => {
  if (m.type === 'chunk') queue.push(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
  else if (m.type === 'end') ended = true;
  else if (m.type === 'fail') failed = rebuildError(m.error);
  else abort.abort();
  wake?.();
});

/** The layer's bytes as they arrive; each chunk is acknowledged once taken, so the sender can go on. */
async function* chunks(): AsyncGenerator<Buffer> {
  for (;;) {
    const c = queue.shift();
    if (c) { post({ type: 'ack', bytes: c.length }); yield c; continue; }
    if (failed) throw failed;
    if (ended) return;
    await new Promise<void>((r) => { wake = r; });
    wake = undefined;
  }
}

try {
  const result = await applyLayer(Readable.from(chunks(), { objectMode: false, highWaterMark: 1 << 20 }), targetDir, {
    ...opts, signal: abort.signal, onUnsupported: (p, reason) => post({ type: 'unsupported', path: p, reason }),
  });
  post({ type: 'done', result });
} catch (e) {
  const error = workerError(e);
  try { post({ type: 'failed', error }); } catch { post({ type: 'failed', error: { ...error, data: undefined } }); }
}
port.close();
