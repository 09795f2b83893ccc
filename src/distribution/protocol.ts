/**
 * The OCI distribution protocol's vocabulary, shared by the registry client (this floor) and the
 * registry server (src/server/registry): error codes and their HTTP statuses, the error body, the
 * Range / Content-Range forms of blob reads and upload sessions, `Link` pagination, and Accept
 * negotiation of manifest media types. One implementation, so that both sides read and write the
 * same forms.
 */
import { MANIFEST_ACCEPT, baseMediaType } from '../oci/index.js';

export { MANIFEST_ACCEPT };

/** Header names of the protocol (lower case, as node:http gives them). */
export const Header = {
  ContentDigest: 'docker-content-digest',
  ApiVersion: 'docker-distribution-api-version',
  UploadUuid: 'docker-upload-uuid',
  OciSubject: 'oci-subject',
  OciFiltersApplied: 'oci-filters-applied',
  OciChunkMinLength: 'oci-chunk-min-length',
} as const;

/** The distribution-spec error codes, with the HTTP status a registry answers them with. */
export const ERROR_STATUS = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  /** Legacy codes docker's registry still answers with (clients should not depend on them). */
  TAG_INVALID: 400,
  PAGINATION_NUMBER_INVALID: 400,
  UNKNOWN: 500,
  UNAVAILABLE: 503,
} as const;

export type DistributionErrorCode = keyof typeof ERROR_STATUS;

/** One entry of the registry's `{"errors":[{code,message,detail}]}` body. */
export interface RegistryErrorEntry { code: string; message?: string; detail?: unknown }

/** The JSON error body for one error. */
export function errorBody(code: DistributionErrorCode, message: string, detail?: unknown): Buffer {
  const entry: RegistryErrorEntry = { code, message, ...(detail !== undefined ? { detail } : {}) };
  return Buffer.from(JSON.stringify({ errors: [entry] }));
}

/** Parses a registry error body; tolerant of non-JSON bodies. */
export function parseRegistryErrors(body: Buffer | undefined): RegistryErrorEntry[] {
  if (!body || body.length === 0) return [];
  try {
    const v = JSON.parse(body.toString('utf8')) as { errors?: unknown };
    if (Array.isArray(v.errors)) {
      return v.errors.filter((e): e is RegistryErrorEntry => typeof e === 'object' && e !== null && typeof (e as RegistryErrorEntry).code === 'string');
    }
  } catch { /* not JSON */ }
  return [];
}

// ---- Range: blob reads (RFC 9110) and upload sessions (distribution's own forms)

/** A byte range, both ends inclusive. */
export interface ByteRange { start: number; end: number }

/**
 * A `Range` request header against a blob of `size` bytes: `bytes=a-b`, `bytes=a-`, `bytes=-n` (one
 * range only). undefined when there is no usable header (serve the whole blob, as RFC 9110 allows for a
 * syntax it does not know); `'unsatisfiable'` for a range that starts at or past the end (416).
 */
export function parseRangeRequest(value: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value ?? '');
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/** The `Range` header a client sends to resume at `offset`. */
export function formatRangeRequest(offset: number): string { return `bytes=${offset}-`; }

/** `Content-Range` of a 206 answer: `bytes a-b/size`. */
export function formatContentRange(r: ByteRange, size: number): string { return `bytes ${r.start}-${r.end}/${size}`; }

/** `Content-Range` of a 416 answer: `bytes * /size`. */
export function formatUnsatisfiedRange(size: number): string { return `bytes */${size}`; }

/** Parses a 206 answer's `Content-Range: bytes a-b/size` (size may be `*`). */
export function parseContentRange(value: string | undefined): (ByteRange & { size?: number }) | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), ...(m[3] !== '*' ? { size: Number(m[3]) } : {}) };
}

/**
 * The `Range` of an upload session (202 to a PATCH, 204 to a status GET): `0-<last byte>`. distribution
 * also writes `0-0` for an empty session; the spec's form has no `bytes=` prefix, older registries add one.
 */
export function formatUploadRange(received: number): string { return `0-${Math.max(0, received - 1)}`; }

/** The last byte index of an upload `Range` (`0-41`, `bytes=0-41`); undefined when malformed. */
export function parseUploadRange(value: string | undefined): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(value ?? '');
  return m ? Number(m[1]) : undefined;
}

/** A PATCH or PUT chunk's `Content-Range: <start>-<end>` (inclusive; `bytes ` prefix tolerated). */
export function parseChunkRange(value: string | undefined): ByteRange | undefined {
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec((value ?? '').trim());
  if (!m) return undefined;
  const r = { start: Number(m[1]), end: Number(m[2]) };
  return r.end >= r.start ? r : undefined;
}

/** The `Content-Range` a client sends with a chunk of `length` bytes at `offset`. */
export function formatChunkRange(offset: number, length: number): string { return `${offset}-${offset + length - 1}`; }

// ---- Link pagination (RFC 8288)

/** The target of the `rel="next"` link of a `Link` header, undefined when there is none. */
export function parseNextLink(value: string | undefined): string | undefined {
  for (const part of (value ?? '').split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]+)>\s*;(.*)$/.exec(part);
    if (m && /(?:^|;)\s*rel\s*=\s*"?(?:[^";]*\s)?next(?:\s[^";]*)?"?\s*(?:;|$)/i.test(m[2]!)) return m[1];
  }
  return undefined;
}

/** A `Link` header value pointing at the next page. */
export function formatNextLink(target: string): string { return `<${target}>; rel="next"`; }

// ---- Accept negotiation of manifests

/** The media types an `Accept` header lists, parameters and q-values ignored; repeated headers joined. */
export function parseAccept(value: string | string[] | undefined): string[] {
  const all = Array.isArray(value) ? value.join(',') : value ?? '';
  return all.split(',').map((s) => baseMediaType(s)).filter((s) => s !== '');
}

/**
 * Whether a client whose Accept header lists `accepted` may be given a manifest of type `mediaType`.
 * No Accept header, or a wildcard, takes anything; otherwise the exact type must be listed. A stored
 * document is served as it is or not at all: never converted to another type.
 */
export function acceptsManifest(accepted: readonly string[], mediaType: string): boolean {
  if (accepted.length === 0) return true;
  return accepted.some((a) => a === '*/*' || a === 'application/*' || a === baseMediaType(mediaType));
}

/** The Accept header a client sends for manifests, `first` (a type it expects) put first. */
export function manifestAcceptHeader(first?: string): string {
  return (first ? [first, ...MANIFEST_ACCEPT.filter((m) => m !== first)] : [...MANIFEST_ACCEPT]).join(', ');
}
