// The walk of a checkout, on the calling thread and, for a big tree, on threads beside it. Each walker
// fills directories depth first from a stack of its own. The calling thread walks from the root; once
// the tree proves big (CheckoutThreads.handoff entries), it starts the threads (or takes those
// started ahead, prestartCheckoutThreads) and goes on walking. While a walker is idle, the busy ones
// give away the older half of their stacks (the directories nearest the root: the biggest subtrees).
// The calling thread also deals out the work: it reads the threads' messages between its directories
// (receiveMessageOnPort), so no walker ever waits for another that is busy. Who is idle is counted in
// a few shared counters (CTL), which the threads read between directories.
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { errorFromWire, throwIfAborted, type WireError } from '../errors/index.js';
import { TreeWalker, type DirTask, type WalkReport, type WalkSetup } from './checkout-walk.js';
import { threadCount, threadScript } from './threads.js';

/** Slots of the shared Int32Array. */
export const CTL = {
  /** Set when the walk failed or was aborted: every walker drops its work. */
  stop: 0,
  /** Walkers waiting for work, not yet given any. */
  hungry: 1,
  /** Shares posted that the calling thread has not yet dealt out. */
  offered: 2,
  /** Messages the threads have posted, so that the calling thread reads its ports only when there are some. */
  mail: 3,
} as const;
const CTL_SLOTS = 4;

/** The calling thread to a thread: first its checkout, then work, then the end. */
export type ToThread =
  | { type: 'setup'; setup: WalkSetup; ctl: SharedArrayBuffer; port: MessagePort }
  | { type: 'tasks'; tasks: DirTask[] }
  | { type: 'finish' };
export type FromThread =
  | { type: 'idle' }
  | { type: 'share'; tasks: DirTask[] }
  | { type: 'report'; report: WalkReport }
  | { type: 'failed'; error: WireError };

/**
 * Fills the directories on `stack` and below until none is left or the walk stops, calling
 * `between()` after each directory. `share` gives away the older half of the stack when some walker
 * is idle and no share is on its way to it yet.
 */
export function drain(walker: TreeWalker, stack: DirTask[], ctl: Int32Array, share?: (tasks: DirTask[]) => void, between?: () => void): void {
  while (stack.length > 0 && Atomics.load(ctl, CTL.stop) === 0) {
    const kids = walker.placeDir(stack.pop()!);
    for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
    if (share && stack.length >= 2 && Atomics.load(ctl, CTL.hungry) > Atomics.load(ctl, CTL.offered)) {
      Atomics.add(ctl, CTL.offered, 1);
      share(stack.splice(0, stack.length >> 1));
    }
    between?.();
  }
}

/** Where the threads come from and when they start. */
export interface CheckoutThreads {
  /** The thread script (checkout-worker.js). */
  script: URL;
  /** Threads besides the calling thread. */
  threads: number;
  /** Entries the calling thread places alone before it starts threads (a small tree never pays for them). */
  handoff: number;
  /**
   * false: the calling thread places nothing itself; it starts the threads at once and only deals out
   * their work, so its event loop stays free however big the tree (and every entry goes through the
   * threads, which the tests use). Default true: it walks too, the fastest where cores are few.
   */
  callerWalks?: boolean;
}

/**
 * Entries before threads start: the calling thread places ~40 a millisecond, and a thread takes 60-90
 * ms to start on the 2-core bench machine, so a tree this small is done before a thread could help.
 */
const HANDOFF = 2000;

let configured: CheckoutThreads | null | undefined;

/**
 * The checkout's threads besides the calling one: one per core less one, at most 3
 * (`STOWAGE_CHECKOUT_THREADS` sets the number; 0 walks in the calling thread only). None when the
 * thread script is absent, as when this module runs from its TypeScript source.
 */
export function checkoutThreads(): CheckoutThreads | undefined {
  if (configured !== undefined) return configured ?? undefined;
  const script = threadScript(new URL('./checkout-worker.js', import.meta.url));
  const threads = threadCount('STOWAGE_CHECKOUT_THREADS', (cores) => Math.min(4, cores) - 1);
  configured = script && threads > 0 ? { script, threads, handoff: HANDOFF } : null;
  return configured ?? undefined;
}

/** Replaces the checkout threads (undefined: walk in the calling thread). For tests, and for an embedder whose bundler moves the script. */
export function setCheckoutThreads(next: CheckoutThreads | undefined): void { configured = next ?? null; }

/** A thread's young generation: a walk's garbage is small and short-lived (see apply-pool.ts). */
const YOUNG_GENERATION_MB = 2;

/** Threads started ahead, waiting for their checkout. */
const prestarted: Worker[] = [];

function spawn(plan: CheckoutThreads): Worker {
  const w = new Worker(plan.script, { resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } });
  w.unref(); // a thread waiting for a checkout that never comes keeps no process alive
  // Not a crash of the process when a prestarted thread fails before a checkout takes it (the checkout
  // then starts another, see adopt), nor twice when it fails in a checkout (which listens itself).
  w.on('error', () => undefined);
  return w;
}

/** A prestarted thread that is still alive, or a new one. */
function adopt(plan: CheckoutThreads): Worker {
  for (let w; (w = prestarted.shift()) !== undefined;) if (w.threadId >= 0) return w;
  return spawn(plan);
}

/**
 * Starts the threads of a checkout that is coming, so that they are up by the time its walk begins
 * (the `checkout` command calls this before it opens the store). The next checkout takes them, big
 * or small; they cost nothing else.
 */
export function prestartCheckoutThreads(): void {
  const plan = checkoutThreads();
  if (!plan) return;
  while (prestarted.length < plan.threads) prestarted.push(spawn(plan));
}

/**
 * Walks the merged tree of `setup` into its stage. Resolves with every walker's report. When it
 * settles, no thread writes into the stage any more, whether it succeeded or not.
 */
export async function walkTree(setup: WalkSetup, signal?: AbortSignal): Promise<WalkReport[]> {
  const plan = checkoutThreads();
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_SLOTS * 4));
  const walker = new TreeWalker(setup);
  const stack = [TreeWalker.root(setup.layers.length)];
  const callerWalks = plan?.callerWalks !== false;
  let team = plan && (prestarted.length > 0 || !callerWalks) ? new Team(plan, setup, ctl) : undefined;
  if (!callerWalks) team!.give(stack.splice(0));
  try {
    let dirs = 0;
    for (;;) {
      // Shares only while a thread is idle, so only once there is a team.
      drain(walker, stack, ctl, (tasks) => { Atomics.sub(ctl, CTL.offered, 1); team!.give(tasks); }, () => {
        if ((++dirs & 15) === 0) throwIfAborted(signal);
        if (!team && plan && walker.report.entries >= plan.handoff) team = new Team(plan, setup, ctl);
        team?.poll();
      });
      throwIfAborted(signal);
      if (!team) return [walker.report];
      team.poll();
      const more = team.take();
      if (more.length > 0) { stack.push(...more); continue; }
      if (team.quiet()) return [walker.report, ...await team.finish()];
      await team.next(signal);
    }
  } finally {
    Atomics.store(ctl, CTL.stop, 1);
    await team?.stop();
  }
}

interface Member { worker: Worker; port: MessagePort; state: 'starting' | 'idle' | 'busy' | 'done'; report?: WalkReport }

/** The threads of one walk, seen from the calling thread, which deals out their work. */
class Team {
  private readonly members: Member[] = [];
  /** Work the threads gave away that nobody has taken yet. */
  private readonly queue: DirTask[] = [];
  private error: unknown;
  /** The calling thread counts itself hungry while it waits. */
  private waiting = false;
  private wake: (() => void) | undefined;

  private readonly callerWalks: boolean;
  /** CTL.mail when the ports were last read. */
  private mailRead = 0;

  constructor(plan: CheckoutThreads, setup: WalkSetup, private readonly ctl: Int32Array) {
    this.callerWalks = plan.callerWalks !== false;
    for (let i = 0; i < plan.threads; i++) {
      const worker = adopt(plan);
      const { port1, port2 } = new MessageChannel();
      worker.postMessage({ type: 'setup', setup, ctl: ctl.buffer as SharedArrayBuffer, port: port2 } satisfies ToThread, [port2]);
      const m: Member = { worker, port: port1, state: 'starting' };
      this.members.push(m);
      port1.on('message', (msg: FromThread) => this.handle(m, msg));
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => { if (m.state !== 'done') this.fail(new Error(`checkout thread exited with code ${code}`)); });
    }
  }

  /** Reads the messages that came while the calling thread was walking. */
  poll(): void {
    const mail = Atomics.load(this.ctl, CTL.mail);
    if (mail === this.mailRead && this.error === undefined) return;
    this.mailRead = mail;
    for (const m of this.members) {
      for (let r; (r = receiveMessageOnPort(m.port)) !== undefined;) this.handle(m, r.message as FromThread);
    }
    if (this.error !== undefined) throw this.error;
  }

  /** Hands part of the calling thread's stack to idle threads. */
  give(tasks: DirTask[]): void {
    this.queue.push(...tasks);
    this.dispatch();
  }

  /** Work for the calling thread, once its own stack is empty. */
  take(): DirTask[] {
    if (!this.callerWalks) return [];
    if (this.queue.length === 0) {
      if (!this.waiting) { this.waiting = true; Atomics.add(this.ctl, CTL.hungry, 1); }
      return [];
    }
    if (this.waiting) { this.waiting = false; Atomics.sub(this.ctl, CTL.hungry, 1); }
    return this.queue.splice(0, Math.ceil(this.queue.length / (this.idleCount() + 1)));
  }

  /** Nothing left anywhere: the calling thread waits with an empty stack and no thread is busy. */
  quiet(): boolean {
    return this.queue.length === 0 && !this.members.some((m) => m.state === 'busy');
  }

  /** Waits for the next message (or the abort). */
  next(signal?: AbortSignal): Promise<void> {
    if (this.error !== undefined) return Promise.reject(this.error);
    return new Promise<void>((resolve) => {
      const done = (): void => { this.wake = undefined; signal?.removeEventListener('abort', done); resolve(); };
      this.wake = done;
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Collects the reports of the threads that took part. */
  async finish(): Promise<WalkReport[]> {
    const started = this.members.filter((m) => m.state === 'idle');
    for (const m of started) m.port.postMessage({ type: 'finish' } satisfies ToThread);
    while (started.some((m) => m.report === undefined)) {
      if (this.error !== undefined) throw this.error;
      await this.next();
    }
    return started.map((m) => m.report!);
  }

  /** Ends the threads; once this resolves, none of them writes any more. */
  async stop(): Promise<void> {
    for (const m of this.members) { m.state = 'done'; m.port.close(); }
    await Promise.all(this.members.map((m) => m.worker.terminate()));
  }

  private idleCount(): number { return this.members.reduce((n, m) => n + (m.state === 'idle' ? 1 : 0), 0); }

  private handle(m: Member, msg: FromThread): void {
    switch (msg.type) {
      case 'idle': m.state = 'idle'; this.dispatch(); break;
      case 'share': Atomics.sub(this.ctl, CTL.offered, 1); this.queue.push(...msg.tasks); this.dispatch(); break;
      case 'report': m.report = msg.report; break;
      case 'failed': this.fail(errorFromWire(msg.error)); break;
    }
    this.wake?.();
  }

  private fail(e: unknown): void {
    Atomics.store(this.ctl, CTL.stop, 1);
    this.error ??= e;
    this.wake?.();
  }

  /** Deals the queue out among the idle threads, keeping a part for the calling thread when it waits. */
  private dispatch(): void {
    for (const m of this.members) {
      if (this.queue.length === 0) return;
      if (m.state !== 'idle') continue;
      const tasks = this.queue.splice(0, Math.ceil(this.queue.length / (this.idleCount() + (this.waiting ? 1 : 0))));
      m.state = 'busy';
      Atomics.sub(this.ctl, CTL.hungry, 1);
      m.port.postMessage({ type: 'tasks', tasks } satisfies ToThread);
    }
  }
}
