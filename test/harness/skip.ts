import { it as vitestIt, type TestFunction } from 'vitest';

/**
 * `it`, or, when `reason` is set, a test that skips saying why (the reason shows in the run's summary,
 * scripts/summary-reporter.ts). Use in place of `it.skipIf(cond)`, which cannot carry a reason:
 *   const it = skipUnless(hasUmoci, 'umoci is not installed');
 */
export function skipUnless(ok: boolean, reason: string): (name: string, fn: TestFunction, timeout?: number) => void {
  return (name, fn, timeout) => {
    if (ok) vitestIt(name, fn, timeout);
    else vitestIt(name, (ctx) => { ctx.skip(reason); }, timeout);
  };
}
