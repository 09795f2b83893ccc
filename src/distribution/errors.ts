import {
  ForbiddenError, InvalidArgumentError, NotFoundError, NotImplementedError, ResourceExhaustedError, StowageError,
  UnauthorizedError, UnavailableError,
} from '../errors/index.js';
import { parseRegistryErrors } from './protocol.js';
import { MAX_ERROR_BODY } from './defaults.js';
import { readBody, redactUrl, type HttpResponse } from './transport.js';

export { parseRegistryErrors, type RegistryErrorEntry } from './protocol.js';

/**
 * Maps an unexpected registry answer to the error family (errdefs classes): 404 and *_UNKNOWN → NotFound,
 * 401 → Unauthorized, 403/DENIED → Forbidden, 429/TOOMANYREQUESTS → ResourceExhausted, 5xx → Unavailable.
 * The message carries the registry's own words; `data` the status, codes and the redacted URL.
 */
export async function errorFromResponse(res: HttpResponse, what: string): Promise<StowageError> {
  const body = await readBody(res.body, MAX_ERROR_BODY).catch(() => undefined);
  const errors = parseRegistryErrors(body);
  const codes = errors.map((e) => e.code);
  const text = errors.length
    ? errors.map((e) => `${e.code.toLowerCase().replace(/_/g, ' ')}${e.message ? `: ${e.message}` : ''}`).join('; ')
    : (body?.toString('utf8').trim().slice(0, 200) || `HTTP ${res.status}`);
  const data = { status: res.status, codes, url: redactUrl(res.url) };
  const message = `${what}: ${text}`;
  if (res.status === 404 || codes.some((c) => c.endsWith('_UNKNOWN'))) return new NotFoundError(message, data);
  if (res.status === 401 || codes.includes('UNAUTHORIZED')) return new UnauthorizedError(message, data);
  if (res.status === 403 || codes.includes('DENIED')) return new ForbiddenError(message, data);
  if (res.status === 429 || codes.includes('TOOMANYREQUESTS')) return new ResourceExhaustedError(message, data);
  if (res.status === 413) return new ResourceExhaustedError(message, data);
  if (codes.includes('UNSUPPORTED') || res.status === 501) return new NotImplementedError(message, data);
  if (res.status >= 500) return new UnavailableError(message, data);
  if (res.status === 400 || res.status === 416) return new InvalidArgumentError(message, data);
  return new StowageError('Unknown', message, data);
}

/**
 * Throws the typed error for an answer the caller cannot use. With the repository (pulls), a 401 is
 * reworded as docker words it; pushes keep the registry's own words.
 */
export async function failResponse(res: HttpResponse, what: string, repo?: { domain: string; path: string }): Promise<never> {
  const e = await errorFromResponse(res, what);
  if (res.status === 401 && repo) {
    throw new UnauthorizedError(`pull access denied for ${repo.domain}/${repo.path}, repository does not exist or may require authorization: ${e.message}`, e.data, { cause: e });
  }
  throw e;
}
