/**
 * Resumable digests for ingests.
 *
 * The problem: a resumed ingest needs the hash state at the end of its partial `data`. Node's crypto
 * (OpenSSL, SHA-NI: ~1.1-1.6 GB/s here) cannot export or import its state; hash-wasm's WebAssembly
 * SHA-256 (sha256.ts) can, but runs at ~170 MB/s on this shared machine (6-7x slower; the hand-written
 * TS hash it replaced ran at ~90 MB/s on the same run). Putting the savable hash on the hot path would cut
 * ingest throughput ~7x; re-hashing the whole partial file on every resume (containerd) costs O(size)
 * reads and hashing at the worst moment (restart after a failure).
 *
 * The design:
 * - Hot path: Node's crypto, always, while an ingest is written from the start.
 * - Once an ingest passes `checkpointMinBytes` (8 MiB) and an 8 MiB window was written slower than
 *   100 MB/s (a download, not a local copy: a faster writer would outrun the savable hash anyway), a
 *   worker thread follows it (and is dropped again if the writer speeds up past 150 MB/s), reading
 *   `data` back (page cache) and hashing it with the savable hash, on the second core. Every
 *   `CHECKPOINT_INTERVAL` bytes it fdatasyncs `data` and saves `hashstate` = {state, length}; on Close
 *   it finishes a lag of up to 32 MiB and saves. A SIGKILLed writer loses at most one interval. During
 *   network-bound pulls the worker keeps up; if the writer speeds up later, the worker lags and is
 *   simply dropped at commit. The thread runs at nice 19, so it only takes CPU nobody else wants.
 * - Resume: load `hashstate`, check it against `data` (length ≤ data length, well-formed, loadable);
 *   then hash only the gap [checkpoint, end) with the savable hash and continue the ingest with it
 *   (above what a registry download delivers; the continuation is network-bound in practice). If the
 *   gap is so large that re-hashing everything with Node is quicker (gap × SAVABLE_SLOWDOWN > length),
 *   or the checkpoint is missing/inconsistent/another algorithm/another format (the hand-written
 *   hash's `{h, tail}` files, or a state another hash-wasm build wrote), re-hash the whole file with
 *   Node (correctness first), and a new worker resumes from the old checkpoint when it can load it. A
 *   checkpoint-derived digest is re-verified at commit unless it equals the expected digest, so a
 *   corrupt `hashstate` can never name a blob.
 * - `data` is append-only between truncates; truncate(0) deletes `hashstate` first, so an old
 *   checkpoint is never applied to different bytes.
 */
import { promises as fsp } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Digest } from '../oci/index.js';
import { type Algorithm, type IngestHasher, NodeHasher, hashFileRange } from './hashing.js';
import { SavableSha256, type SavedSha256 } from './sha256.js';

/** Node's SHA-256 over the savable one: 6-7x measured on this machine (bench/content.ts prints it). */
export const SAVABLE_SLOWDOWN = 7;
export const DEFAULT_CHECKPOINT_MIN_BYTES = 8 << 20;
export const CHECKPOINT_INTERVAL = 32 << 20;
const PROGRESS_STEP = 1 << 20;
/** Writers faster than this (bytes/s) get no checkpointer: the savable hash (~170 MB/s, shared) could not follow. */
const FOLLOW_MAX_RATE = 100e6;
/**
 * Ingests with less than this left (at their pace, when their size is known) get no checkpointer: a
 * worker costs ~0.1 CPU-second to start, taken from a pull that is busy, and a resume of an ingest that
 * short re-hashes its few hundred MB at Node's speed in less.
 */
export const DEFAULT_CHECKPOINT_MIN_SECONDS = 2;
/** The writer's pace is judged over windows of this many bytes (or checkpointMinBytes if smaller). */
const RATE_WINDOW = 8 << 20;
/** On close the worker finishes a lag up to this size (~200 ms of savable hashing) before saving. */
const FINISH_ON_CLOSE = 32 << 20;

/** What a resumed writer did to rebuild its digest (for tests and benches). */
export interface ResumeReport {
  ref: string;
  mode: 'checkpoint' | 'rehash';
  /** Bytes of `data` read and hashed to rebuild the state. */
  hashedBytes: number;
  /** Length of `data` at resume. */
  length: number;
  /** Offset of the checkpoint used (or found, for a rehash), if any. */
  checkpoint?: number;
}

export interface HasherContext {
  dir: string;
  dataPath: string;
  algorithm: Algorithm;
  ref: string;
  checkpointMinBytes?: number | undefined;
  /** Seconds an ingest of known size must still have to go for a checkpointer to start (default 2). */
  checkpointMinSeconds?: number | undefined;
  checkpointIntervalBytes?: number | undefined;
  /** The ingest's size when known (0: unknown). */
  total?: number | undefined;
  /** Nice value of the checkpointer thread (default 19: idle CPU only). */
  checkpointNice?: number | undefined;
}

/**
 * What `hashstate` holds. `format` names the hash that wrote `state`; a file without it (the
 * hand-written hash's `{alg, h, tail, length}`) is not loaded, so the ingest re-hashes its bytes.
 */
interface SavedState extends SavedSha256 { alg: 'sha256'; format: typeof STATE_FORMAT }
const STATE_FORMAT = 'hash-wasm';

const stateFile = (dir: string) => path.join(dir, 'hashstate');

async function loadCheckpoint(dir: string): Promise<SavedState | undefined> {
  try {
    const s = JSON.parse(await fsp.readFile(stateFile(dir), 'utf8')) as SavedState;
    if (s.alg !== 'sha256' || s.format !== STATE_FORMAT || typeof s.state !== 'string') return undefined;
    if (!Number.isSafeInteger(s.length) || s.length < 0) return undefined;
    return { alg: s.alg, format: s.format, state: s.state, length: s.length };
  } catch {
    return undefined;
  }
}

function checkpointText(state: SavedSha256): string {
  return JSON.stringify({ alg: 'sha256', format: STATE_FORMAT, state: state.state, length: state.length });
}

async function saveCheckpoint(dir: string, state: SavedSha256): Promise<void> {
  const file = stateFile(dir);
  await fsp.writeFile(`${file}.tmp`, checkpointText(state));
  await fsp.rename(`${file}.tmp`, file);
}

export function newIngestHasher(ctx: HasherContext, from?: SavedState): IngestHasher {
  if (ctx.algorithm !== 'sha256') return new NodeHasher(ctx.algorithm);
  return new FollowedNodeHasher(ctx, from);
}

export async function resumeIngestHasher(
  ctx: HasherContext & { length: number; total: number; onResume?: ((r: ResumeReport) => void) | undefined },
): Promise<IngestHasher> {
  const cp = ctx.algorithm === 'sha256' ? await loadCheckpoint(ctx.dir) : undefined;
  if (cp !== undefined && cp.length <= ctx.length) {
    // Latency to resume: the gap at the savable hash's speed vs. the whole file at Node speed (both read from disk).
    const gap = ctx.length - cp.length;
    // A state this hash-wasm build cannot load (corrupt, or saved by another build) fails here: re-hash.
    const h = gap * SAVABLE_SLOWDOWN <= ctx.length ? await SavableSha256.create(cp).catch(() => undefined) : undefined;
    if (h !== undefined) {
      const n = await hashFileRange(ctx.dataPath, cp.length, ctx.length, (c) => h.update(c));
      if (h.length === ctx.length) {
        ctx.onResume?.({ ref: ctx.ref, mode: 'checkpoint', hashedBytes: n, length: ctx.length, checkpoint: cp.length });
        return new SavableHasher(ctx.dir, h, ctx.checkpointIntervalBytes ?? CHECKPOINT_INTERVAL);
      }
      // data changed under us: fall through to a full re-hash
    }
  }
  const h = newIngestHasher(ctx, cp !== undefined && cp.length <= ctx.length ? cp : undefined);
  const n = await hashFileRange(ctx.dataPath, 0, ctx.length, (c) => h.update(c));
  h.progress(ctx.length);
  ctx.onResume?.({ ref: ctx.ref, mode: 'rehash', hashedBytes: n, length: ctx.length, ...(cp ? { checkpoint: cp.length } : {}) });
  return h;
}

/**
 * The savable hash on the hot path (after a checkpoint resume). Its exact state is saved on close and
 * every interval while writing. Those periodic saves skip the data fsync: a checkpoint that outruns the data
 * after a crash is either longer than `data` (rejected at resume) or yields a digest that commit
 * re-verifies (`verified` is false), so it can cost a retry but never a wrongly named blob.
 */
class SavableHasher implements IngestHasher {
  readonly algorithm = 'sha256' as const;
  verified = false;
  private saving: Promise<void> = Promise.resolve();
  private savedAt: number;
  constructor(private readonly dir: string, private readonly h: SavableSha256, private readonly interval: number) {
    this.savedAt = h.length;
  }
  update(chunk: Uint8Array): void { this.h.update(chunk); }
  mark(): () => void {
    const saved = this.h.save();
    return () => { this.h.restore(saved); };
  }
  digest(): Digest { return `sha256:${this.h.hex()}`; }
  reset(): void { this.h.reset(); this.verified = true; this.savedAt = 0; }
  progress(offset: number): void {
    if (offset - this.savedAt < this.interval) return;
    this.savedAt = offset;
    const state = this.h.save();
    this.saving = this.saving.then(() => saveCheckpoint(this.dir, state)).catch(() => {});
  }
  async save(): Promise<void> {
    await this.saving;
    await saveCheckpoint(this.dir, this.h.save());
  }
  async dispose(): Promise<void> { await this.saving; }
  async forget(): Promise<void> {
    await this.saving;
    await fsp.rm(stateFile(this.dir), { force: true });
  }
}

/** Node's hash on the hot path, with a worker thread following behind to produce checkpoints. */
class FollowedNodeHasher implements IngestHasher {
  readonly algorithm = 'sha256' as const;
  readonly verified = true;
  private node = new NodeHasher('sha256');
  private worker: CheckpointWorker | undefined;
  /** A follower dropped because the writer got too fast; awaited before saving or disposing. */
  private retired: Promise<void> = Promise.resolve();
  private gaveUp = false;
  private posted = 0;
  private written = 0;
  private window = { offset: -1, at: 0 };
  private readonly minBytes: number;
  private readonly rateWindow: number;

  constructor(private readonly ctx: HasherContext, private from?: SavedState) {
    this.minBytes = ctx.checkpointMinBytes ?? DEFAULT_CHECKPOINT_MIN_BYTES;
    this.rateWindow = Math.max(PROGRESS_STEP, Math.min(this.minBytes, RATE_WINDOW));
  }
  update(chunk: Uint8Array): void { this.node.update(chunk); }
  mark(): () => void { return this.node.mark(); }
  digest(): Digest { return this.node.digest(); }
  reset(): void {
    this.node.reset();
    this.from = undefined;
    this.posted = 0;
    this.written = 0;
    this.window = { offset: -1, at: 0 };
    this.gaveUp = false;
  }
  progress(offset: number): void {
    this.written = offset;
    const now = performance.now();
    if (this.window.offset < 0 || offset < this.window.offset) {
      this.window = { offset, at: now }; // a resume re-hash reports its length first
    } else if (offset - this.window.offset >= this.rateWindow) {
      // Follow only download-paced writers: one faster than the savable hash would leave the follower
      // hopelessly behind, so its checkpoints would never be used; don't spend the CPU.
      const rate = ((offset - this.window.offset) * 1000) / Math.max(1, now - this.window.at);
      this.window = { offset, at: now };
      const total = this.ctx.total ?? 0;
      const secondsLeft = total > offset ? (total - offset) / rate : total > 0 ? 0 : Infinity;
      if (this.worker === undefined && !this.gaveUp && rate <= FOLLOW_MAX_RATE && offset >= this.minBytes
        && secondsLeft >= (this.ctx.checkpointMinSeconds ?? DEFAULT_CHECKPOINT_MIN_SECONDS)) {
        this.worker = new CheckpointWorker(this.ctx.dataPath, stateFile(this.ctx.dir), this.from, this.ctx.checkpointIntervalBytes ?? CHECKPOINT_INTERVAL, this.ctx.checkpointNice ?? 19);
      } else if (this.worker !== undefined && rate > FOLLOW_MAX_RATE * 1.5) {
        const w = this.worker;
        this.worker = undefined;
        this.gaveUp = true; // its last saved checkpoint stays on disk for a resume
        this.retired = this.retired.then(() => w.stop(false));
      }
    }
    if (this.worker !== undefined && offset - this.posted >= PROGRESS_STEP) {
      this.posted = offset;
      this.worker.progress(offset);
    }
  }
  async save(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    w?.progress(this.written); // progress messages are throttled: tell it where the data really ends
    await w?.stop(true);
    await this.retired;
  }
  async dispose(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.stop(false);
    await this.retired;
  }
  async forget(): Promise<void> {
    await this.dispose();
    await fsp.rm(stateFile(this.ctx.dir), { force: true });
  }
}

/**
 * The worker's program. Self-contained: it is shipped as source text (so it runs the same under tsx,
 * vitest, compiled JS and the CLI bundle) and loads hash-wasm from the path the parent resolved.
 */
function checkpointWorkerMain() {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const fs = require('node:fs') as typeof import('node:fs');
  const { dataPath, statePath, from, interval, nice, hashWasm, format } = workerData as {
    dataPath: string; statePath: string; interval: number; nice: number; hashWasm: string; format: string;
    from?: { state: string; length: number };
  };
  try {
    // Lowest CPU priority for this thread only (Linux setpriority on the thread id): the checkpointer
    // uses idle CPU and never competes with the writer or other work.
    const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
    (require('node:os') as typeof import('node:os')).setPriority(tid, nice);
  } catch {
    // not Linux, or not permitted: run at normal priority
  }
  type Message = { type: 'progress'; offset: number } | { type: 'stop'; save: boolean; finishWithin: number };
  const early: Message[] = []; // messages that arrive while hash-wasm loads
  let onMessage = (m: Message): void => { early.push(m); };
  parentPort!.on('message', (m: Message) => onMessage(m));
  const { createSHA256 } = require(hashWasm) as typeof import('hash-wasm');
  // A failure to load hash-wasm ends the thread with an error; the parent then has no checkpoints.
  void createSHA256().then((h) => {
    h.init();
    let pos = 0;
    if (from) {
      try { h.load(Buffer.from(from.state, 'base64')); pos = from.length; } catch { h.init(); } // another build's state: from 0
    }
    let saved = pos;
    let upto = 0;
    let running = false;
    let stopped = false;
    const fd = fs.openSync(dataPath, 'r');
    const buf = Buffer.allocUnsafe(1 << 20);
    /** Hashes what was written up to `upto` (at most one buffer); false when there is nothing to read. */
    const step = (): boolean => {
      const want = Math.min(upto - pos, buf.length);
      if (want <= 0) return false;
      let got = 0;
      try { got = fs.readSync(fd, buf, 0, want, pos); } catch { got = 0; }
      if (got === 0) return false;
      h.update(buf.subarray(0, got));
      pos += got;
      return true;
    };
    const save = () => {
      if (pos === saved) return;
      try {
        fs.fdatasyncSync(fd); // the checkpoint must never cover bytes a crash could lose
        fs.writeFileSync(`${statePath}.tmp`, JSON.stringify({ alg: 'sha256', format, state: Buffer.from(h.save()).toString('base64'), length: pos }));
        fs.renameSync(`${statePath}.tmp`, statePath);
        saved = pos;
      } catch {
        // the ingest was aborted or committed meanwhile
      }
    };
    const pump = () => {
      if (stopped) return;
      if (!step()) { running = false; return; }
      if (pos - saved >= interval) save();
      setImmediate(pump); // let 'stop' messages in between slices
    };
    onMessage = (m) => {
      if (m.type === 'progress') {
        upto = m.offset;
        if (!running) { running = true; setImmediate(pump); }
      } else {
        stopped = true;
        // a small lag: finish it now so that the next resume starts exactly here
        if (m.save && upto - pos <= m.finishWithin) while (step()) { /* hashing */ }
        if (m.save) save();
        try { fs.closeSync(fd); } catch { /* ignore */ }
        parentPort!.postMessage({ type: 'stopped', pos: saved });
      }
    };
    for (const m of early.splice(0)) onMessage(m);
  });
}

const WORKER_SOURCE =
  'var __name = (f) => f;\n' + // esbuild's keepNames helper, in case the functions were compiled with it
  'var __require = require;\n' + // and its name for require() in an ES module bundle: without it the CLI's worker died at once
  `(${checkpointWorkerMain.toString()})();`;

class CheckpointWorker {
  private readonly worker: Worker;
  private exited: Promise<void>;
  private stopping: Promise<void> | undefined;

  constructor(dataPath: string, statePath: string, from: SavedState | undefined, interval: number, nice: number) {
    // The worker is eval'd source: it cannot resolve packages itself, so it gets hash-wasm's path.
    const hashWasm = createRequire(import.meta.url).resolve('hash-wasm');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { dataPath, statePath, interval, nice, hashWasm, format: STATE_FORMAT, ...(from ? { from: { state: from.state, length: from.length } } : {}) },
    });
    this.worker.unref();
    this.exited = new Promise((resolve) => {
      this.worker.once('exit', () => resolve());
      this.worker.once('error', () => resolve());
    });
  }

  progress(offset: number): void {
    this.worker.postMessage({ type: 'progress', offset });
  }

  stop(save: boolean): Promise<void> {
    this.stopping ??= (async () => {
      if (save) {
        const stopped = new Promise<void>((resolve) => {
          this.worker.once('message', () => resolve());
          void this.exited.then(resolve);
        });
        this.worker.postMessage({ type: 'stop', save: true, finishWithin: FINISH_ON_CLOSE });
        await stopped;
      }
      await this.worker.terminate();
      await this.exited;
    })();
    return this.stopping;
  }
}
