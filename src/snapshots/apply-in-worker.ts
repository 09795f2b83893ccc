import fs from 'node:fs';
import type { Readable } from 'node:stream';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { createRequire } from 'node:module';
import {
  AbortedError, AlreadyExistsError, ConflictError, DigestMismatchError, FailedPreconditionError, InvalidArgumentError,
  NotFoundError, NotImplementedError, ResourceExhaustedError, SizeMismatchError, StowageError, UnavailableError, throwIfAborted,
  type ErrorCode,
} from '../errors/index.js';
import { applyLayer, type ApplyOptions, type ApplyResult } from './apply.js';

/** Messages to an apply worker. */
export type ToWorker = { type: 'chunk'; data: Uint8Array } | { type: 'end' } | { type: 'fail'; error: WorkerError } | { type: 'abort' };
/** An error as it crosses between threads. */
export interface WorkerError { name: string; message: string; code?: string | undefined; data?: Record<string, unknown> | undefined }
/** Messages from an apply worker. */
export type FromWorker =
  | { type: 'ack'; bytes: number }
  | { type: 'unsupported'; path: string; reason: string }
  | { type: 'done'; result: ApplyResult }
  | { type: 'failed'; error: WorkerError };

/** Bytes sent to the worker and not yet taken by it: enough to keep it fed, little enough to bound memory. */
const IN_FLIGHT = 8 << 20;

// The worker's program beside this module: .js when built; under a TypeScript runner (the tests), the
// .ts source, loaded after registering tsx's loader in the worker (a dev dependency, as the runner is).
const here = import.meta.url;
const fromSource = here.endsWith('.ts');
const workerUrl = new URL(fromSource ? './apply-worker.ts' : './apply-worker.js', here);

function startWorker(options: WorkerOptions): Worker {
  if (!fromSource) return new Worker(workerUrl, options);
  // tsx's ESM API (the `import` condition of `tsx/esm/api`), beside the CommonJS file `require` finds.
  const api = pathToFileURL(path.join(path.dirname(createRequire(here).resolve('tsx/esm/api')), 'index.mjs')).href;
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(workerUrl.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}

const ERRORS: Partial<Record<ErrorCode, new (m: string, d?: Record<string, unknown>) => StowageError>> = {
  NotFound: NotFoundError, AlreadyExists: AlreadyExistsError, Conflict: ConflictError, InvalidArgument: InvalidArgumentError,
  FailedPrecondition: FailedPreconditionError, Unavailable: UnavailableError, DigestMismatch: DigestMismatchError,
  SizeMismatch: SizeMismatchError, NotImplemented: NotImplementedError, Aborted: AbortedError, ResourceExhausted: ResourceExhaustedError,
};

/** The error a thread gets back from `WorkerError`: the same class and code, where there is one. */
export function rebuildError(e: WorkerError): Error {
  const Cls = e.code ? ERRORS[e.code as ErrorCode] : undefined;
  if (Cls) return new Cls(e.message, e.data ?? {});
  if (e.code) return new StowageError(e.code as ErrorCode, e.message, e.data ?? {});
  return Object.assign(new Error(e.message), { name: e.name });
}

/** Whether applies can run in a worker here (the built worker program is beside this module). */
/** What of an error can cross to another thread. */
export function workerError(e: unknown): WorkerError {
  const err = e as Error & { code?: unknown; data?: Record<string, unknown> };
  return { name: err?.name ?? 'Error', message: err?.message ?? String(e), code: typeof err?.code === 'string' ? err.code : undefined, data: err?.data };
}

export function applyWorkerAvailable(): boolean {
  return fs.existsSync(fileURLToPath(workerUrl));
}

/**
 * `applyLayer` in a worker thread: decompression, tar parsing, the diffID hash and every file-system
 * call of the layer run beside the main thread, which stays free for downloads (a pull keeps both
 * cores busy). Same result and errors as `applyLayer`; falls back to it where no worker program exists.
 */
export async function applyLayerInWorker(stream: Readable, targetDir: string, opts: ApplyOptions): Promise<ApplyResult> {
  throwIfAborted(opts.signal);
  if (!applyWorkerAvailable()) return applyLayer(stream, targetDir, opts);
  const { signal, onUnsupported, ...plain } = opts;
  const worker = startWorker({
    workerData: { targetDir, opts: plain },
    // A young generation large enough that 1 MiB decompression buffers do not force a scavenge each.
    resourceLimits: { maxYoungGenerationSizeMb: 64 },
    stdout: false, stderr: false,
  });
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const send = (m: ToWorker) => worker.postMessage(m);
  const onAbort = () => send({ type: 'abort' });
  signal?.addEventListener('abort', onAbort, { once: true });
  const outcome = new Promise<ApplyResult>((resolve, reject) => {
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'ack') { inFlight -= m.bytes; wake?.(); } else if (m.type === 'unsupported') onUnsupported?.(m.path, m.reason);
      else if (m.type === 'done') resolve(m.result);
      else reject(rebuildError(m.error));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new StowageError('Unknown', `apply worker exited (${code}) without a result`)));
  });
  // Nobody waits for the feed once the worker has answered.
  const settled = outcome.then(() => true, () => true);
  try {
    const feed = (async () => {
      try {
        for await (const chunk of stream) {
          const b = chunk as Buffer;
          inFlight += b.length;
          // A view is cloned with its whole ArrayBuffer: send a copy of just its bytes when it is a slice.
          send({ type: 'chunk', data: b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : Uint8Array.prototype.slice.call(b) });
          while (inFlight > IN_FLIGHT) {
            const done = await Promise.race([settled, new Promise<false>((r) => { wake = () => r(false); })]);
            wake = undefined;
            if (done) return;
          }
        }
        send({ type: 'end' });
      } catch (e) {
        send({ type: 'fail', error: workerError(e) });
      }
    })();
    const result = await outcome;
    await feed;
    return result;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    stream.destroy();
    await worker.terminate();
  }
}
