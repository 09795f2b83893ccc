// runLimited: the bounded concurrency that transfers run under.
import { describe, expect, it } from 'vitest';
import { RegistryClient, runLimited } from '../../src/distribution/index.js';

describe('runLimited', () => {
  it('a limit that is not a positive number (NaN from a bad option, 0, 2.5) still runs every item', async () => {
    for (const limit of [Number.NaN, 0, -1, 2.5]) {
      const seen: number[] = [];
      await runLimited([1, 2, 3], limit, async (n) => { seen.push(n); });
      expect(seen.sort()).toEqual([1, 2, 3]);
    }
    expect(new RegistryClient({ concurrency: Number.NaN, credentials: {} }).settings.concurrency).toBe(3);
  });

  it('a failure aborts the siblings still running instead of waiting for them to finish', async () => {
    const started: string[] = [];
    let siblingAborted = false;
    const run = runLimited(['bad', 'slow', 'never'], 2, async (item, signal) => {
      started.push(item);
      if (item === 'bad') { await new Promise((r) => setTimeout(r, 10)); throw new Error('layer failed'); }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 10_000);
        signal?.addEventListener('abort', () => { siblingAborted = true; clearTimeout(timer); resolve(); }, { once: true });
      });
    });
    await expect(run).rejects.toThrow('layer failed');
    expect(siblingAborted).toBe(true);
    // Ended by the abort, not by its 10 s timer (which would leave siblingAborted false).
    expect(started).toEqual(['bad', 'slow']);
  });
});
