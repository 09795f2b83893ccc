import { expect } from 'vitest';
import { stowageErrorOf, type ErrorCode } from '../../src/errors/index.js';

/**
 * Expects `p` (a promise, or a function called and awaited) to fail with a StowageError of `code`
 * (itself or down its `cause` chain), whose message matches `msg` when given. Returns the error's data.
 */
export async function expectCode(p: Promise<unknown> | (() => unknown), code: ErrorCode, msg?: RegExp): Promise<Record<string, unknown>> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    const se = stowageErrorOf(e);
    if (!se) throw new Error(`expected a StowageError ${code}, got ${String(e)}`, { cause: e });
    expect(se.code, `expected ${code}, got ${String(e)}`).toBe(code);
    if (msg) expect(se.message).toMatch(msg);
    return se.data;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

/** The code `p` fails with, or 'ok' when it succeeds; a failure that is no StowageError is rethrown. */
export async function codeOf(p: Promise<unknown>): Promise<ErrorCode | 'ok'> {
  try { await p; } catch (e) { return codeOrRethrow(e); }
  return 'ok';
}

/** codeOf for a synchronous call. */
export function codeOfCall(fn: () => unknown): ErrorCode | 'ok' {
  try { fn(); } catch (e) { return codeOrRethrow(e); }
  return 'ok';
}

function codeOrRethrow(e: unknown): ErrorCode {
  const se = stowageErrorOf(e);
  if (se) return se.code;
  throw e;
}
