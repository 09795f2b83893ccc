import { limitValue, type TransferLimit } from './limit.js';
import type { Digest } from '../oci/index.js';

/**
 * Per-blob progress, shared by pull and push, for the command line and the Engine API server alike.
 * waiting: queued behind the concurrency limit; downloading/uploading: bytes moving (current of total);
 * verifying: digest check and commit; done: finished; exists: nothing to move (already there, or mounted).
 */
export type ProgressPhase = 'waiting' | 'downloading' | 'uploading' | 'verifying' | 'done' | 'exists' | 'mounted';

export interface ProgressEvent {
  digest: Digest;
  mediaType: string;
  phase: ProgressPhase;
  /** Bytes done (for a resumed download this starts at the resumed offset). */
  current: number;
  total: number;
  /** Set once on the event where a server ignored a Range request and the blob restarted from 0. */
  note?: 'range-ignored' | 'resumed' | 'retrying';
}

export type ProgressFn = (event: ProgressEvent) => void;

/**
 * Runs `fn` over items with at most `limit` at once (a live TransferLimit is read before each start: a
 * raised limit starts waiting items at once, a lowered one lets the running ones finish); the first
 * failure stops new starts, aborts the `signal` handed to the ones still running (so a failed pull does
 * not keep downloading its other layers to the end), and is thrown once they have ended.
 */
export async function runLimited<T>(items: readonly T[], limit: number | TransferLimit, fn: (item: T, signal: AbortSignal) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0;
  let active = 0;
  let failed: unknown;
  const stop = new AbortController();
  const onAbort = (): void => stop.abort(signal?.reason);
  if (signal?.aborted) onAbort(); else signal?.addEventListener('abort', onAbort, { once: true });
  let finish!: () => void;
  const done = new Promise<void>((r) => { finish = r; });
  const pump = (): void => {
    while (failed === undefined && !stop.signal.aborted && next < items.length && active < limitValue(limit)) {
      const item = items[next++]!;
      active++;
      fn(item, stop.signal).catch((e: unknown) => {
        if (failed === undefined) { failed = e; stop.abort(e); }
      }).finally(() => {
        active--;
        pump();
      });
    }
    if (active === 0 && (next >= items.length || failed !== undefined || stop.signal.aborted)) finish();
  };
  const unsubscribe = typeof limit === 'number' ? undefined : limit.onChange(pump);
  try {
    pump();
    await done;
  } finally {
    unsubscribe?.();
    signal?.removeEventListener('abort', onAbort);
  }
  if (failed !== undefined) throw failed;
}

/**
 * Progress as an async iterator, for consumers that pull (an HTTP response streaming JSON lines):
 * pass `onProgress` to pull/push, iterate `events`, call `end()` (or `fail(e)`) when the operation settles.
 * Events queue while the consumer is slow; `coalesce` keeps only the latest 'downloading'/'uploading'
 * event per blob in the queue, so a slow reader never holds more than a few events per blob.
 */
export interface ProgressChannel {
  onProgress: ProgressFn;
  events: AsyncIterable<ProgressEvent>;
  end(): void;
  fail(error: unknown): void;
}

export function progressChannel(opts: { coalesce?: boolean } = {}): ProgressChannel {
  const queue: ProgressEvent[] = [];
  let done = false;
  let error: unknown;
  let wake: (() => void) | undefined;
  const notify = (): void => { const w = wake; wake = undefined; w?.(); };
  const moving = (e: ProgressEvent) => e.phase === 'downloading' || e.phase === 'uploading';
  return {
    onProgress(e) {
      if (done) return;
      if (opts.coalesce !== false && moving(e) && !e.note) {
        const i = queue.findIndex((q) => q.digest === e.digest && moving(q) && !q.note);
        if (i !== -1) { queue[i] = e; return; }
      }
      queue.push(e);
      notify();
    },
    end() { done = true; notify(); },
    fail(e) { error = e; done = true; notify(); },
    events: {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          if (queue.length > 0) { yield queue.shift()!; continue; }
          if (done) { if (error !== undefined) throw error; return; }
          await new Promise<void>((r) => { wake = r; });
        }
      },
    },
  };
}
