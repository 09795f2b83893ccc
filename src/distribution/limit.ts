/**
 * A concurrency limit that can change while transfers run (docker's max-concurrent-downloads/uploads,
 * reloaded live): schedulers read `value` before each start and listen for changes, so a raised limit
 * starts waiting transfers at once and a lowered one lets running transfers finish without new starts.
 */
import { InvalidArgumentError } from '../errors/index.js';

export class TransferLimit {
  private current: number;
  private readonly listeners = new Set<() => void>();

  constructor(value: number) {
    this.current = TransferLimit.check(value);
  }

  private static check(value: number): number {
    if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError(`concurrency limit must be a positive integer, got ${value}`, { value });
    return value;
  }

  get value(): number { return this.current; }

  set(value: number): void {
    const v = TransferLimit.check(value);
    if (v === this.current) return;
    this.current = v;
    for (const fn of [...this.listeners]) fn();
  }

  /** Calls `fn` after every change; returns the unsubscribe function. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => { this.listeners.delete(fn); };
  }
}

/** The current value of a fixed or live limit (a bad fixed number counts as 1, so work still happens). */
export function limitValue(limit: number | TransferLimit): number {
  if (typeof limit !== 'number') return limit.value;
  return Number.isFinite(limit) && limit >= 1 ? Math.floor(limit) : 1;
}
