import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError, StowageError, UnavailableError, isStowageError, throwIfAborted, stowageErrorOf } from '../errors/index.js';
import { RETRY_STATUSES } from './defaults.js';
import { isCertificateError } from './hosts.js';
import { discard, header, redactUrl, type HttpResponse, type RoundTripper } from './transport.js';

export interface RetryOptions {
  /** Attempts per request, first included. Default 5. */
  attempts?: number;
  /** First backoff delay; doubled each time, with jitter. Default 200 ms. */
  baseDelayMs?: number;
  /** Cap for one backoff delay (and for Retry-After). Default 10 s. */
  maxDelayMs?: number;
}

export type RetrySettings = Required<RetryOptions>;

/** Is this a network-level failure worth retrying (connection reset, refused, timed out…)? */
export function isTransientNetworkError(e: unknown): boolean {
  const se = stowageErrorOf(e);
  if (se) return se.code === 'Unavailable';
  const code = (e as NodeJS.ErrnoException)?.code ?? '';
  return ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE'].includes(code)
    || /socket hang up|aborted|premature close/i.test((e as Error)?.message ?? '');
}

/** Backoff before retry `n` (1-based): exponential with full jitter, capped; a server's hint wins (capped too). */
export function backoffMs(retry: RetrySettings, n: number, hint?: number): number {
  if (hint !== undefined) return Math.min(hint, retry.maxDelayMs);
  const exp = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (n - 1));
  return exp / 2 + Math.random() * (exp / 2);
}

/** Waits `ms`, or throws Aborted as soon as `signal` fires. */
export async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => { throwIfAborted(signal); });
}

function retryAfterMs(res: HttpResponse): number | undefined {
  const v = header(res, 'retry-after');
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

/**
 * The retry layer: network failures and 408/429/5xx answers (honouring Retry-After) are tried again with
 * exponential backoff, up to `retry.attempts`; an untrusted certificate fails at once (retrying cannot
 * make it trusted). Failures end as typed errors: Aborted, or Unavailable with the attempts made.
 */
export function withRetry(next: RoundTripper, retry: RetrySettings): RoundTripper {
  return async (req) => {
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(req.signal);
      let res: HttpResponse;
      try {
        res = await next(req);
      } catch (e) {
        if (isStowageError(e, 'Aborted') || req.signal?.aborted) throw e instanceof StowageError ? e : new AbortedError('request aborted', {}, { cause: e });
        if (isStowageError(e) && !isStowageError(e, 'Unavailable')) throw e;
        const url = redactUrl(req.url);
        if (isCertificateError(e)) {
          throw new UnavailableError(`${req.method} ${url}: TLS certificate not trusted: ${(e as Error).message}`,
            { url, reason: 'tls-certificate', tlsCode: (e as NodeJS.ErrnoException).code }, { cause: e });
        }
        if (attempt >= retry.attempts || !isTransientNetworkError(e)) {
          throw new UnavailableError(`${req.method} ${url}: ${(e as Error).message}`, { url, attempts: attempt }, { cause: e });
        }
        await pause(backoffMs(retry, attempt), req.signal);
        continue;
      }
      if (RETRY_STATUSES.has(res.status) && !req.noRetryStatuses?.includes(res.status) && attempt < retry.attempts) {
        const wait = backoffMs(retry, attempt, retryAfterMs(res));
        discard(res.body);
        await pause(wait, req.signal);
        continue;
      }
      return res;
    }
  };
}
