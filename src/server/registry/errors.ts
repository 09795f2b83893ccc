import { ERROR_STATUS, type DistributionErrorCode } from '../../distribution/index.js';
import { stowageErrorOf } from '../../errors/index.js';

/** A failure answered in the distribution error format: `{"errors":[{code,message,detail}]}`. */
export class RegistryError extends Error {
  /** The HTTP status: the code's usual one unless given. */
  readonly status: number;
  /** Extra response headers (a challenge, a Range, a session Location). */
  readonly headers: Record<string, string>;
  constructor(
    readonly code: DistributionErrorCode,
    message: string,
    readonly detail?: unknown,
    opts: { status?: number; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.status = opts.status ?? ERROR_STATUS[code];
    this.headers = opts.headers ?? {};
  }
}

/** What a store failure means to a client, by the kind of object the request was about. */
export function toRegistryError(e: unknown, about: 'manifest' | 'blob' | 'upload' | 'name'): RegistryError {
  if (e instanceof RegistryError) return e;
  const se = stowageErrorOf(e);
  if (!se) return new RegistryError('UNKNOWN', e instanceof Error ? e.message : String(e));
  const unknown = { manifest: 'MANIFEST_UNKNOWN', blob: 'BLOB_UNKNOWN', upload: 'BLOB_UPLOAD_UNKNOWN', name: 'NAME_UNKNOWN' } as const;
  switch (se.code) {
    case 'NotFound': return new RegistryError(unknown[about], se.message);
    case 'DigestMismatch': return new RegistryError('DIGEST_INVALID', se.message, se.data);
    case 'SizeMismatch': return new RegistryError('SIZE_INVALID', se.message, se.data);
    case 'InvalidArgument': case 'NotImplemented':
      return new RegistryError(about === 'manifest' ? 'MANIFEST_INVALID' : about === 'upload' ? 'BLOB_UPLOAD_INVALID' : 'NAME_INVALID', se.message);
    case 'FailedPrecondition':
      if (typeof se.data.missing === 'string') return new RegistryError('MANIFEST_BLOB_UNKNOWN', se.message, { digest: se.data.missing });
      return new RegistryError('UNKNOWN', se.message);
    case 'ResourceExhausted': return new RegistryError('SIZE_INVALID', se.message, undefined, { status: 413 });
    case 'Unauthorized': return new RegistryError('UNAUTHORIZED', se.message);
    case 'Forbidden': return new RegistryError('DENIED', se.message);
    case 'Unavailable': case 'Aborted': return new RegistryError('UNAVAILABLE', se.message);
    default: return new RegistryError('UNKNOWN', se.message);
  }
}
