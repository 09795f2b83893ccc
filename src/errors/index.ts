/**
 * One error family for the whole store. Callers (and the HTTP layers) switch on `code`,
 * never on message text. `data` carries structured detail (the digest, the ref, the path...).
 */
export type ErrorCode =
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'InvalidArgument'
  | 'FailedPrecondition'
  | 'Unavailable'
  | 'DigestMismatch'
  | 'SizeMismatch'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotImplemented'
  | 'Aborted'
  | 'ResourceExhausted'
  | 'Unknown';

export class StowageError extends Error {
  readonly code: ErrorCode;
  readonly data: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = `${code}Error`;
    this.code = code;
    this.data = data;
  }
}

type Data = Record<string, unknown>;
type Opts = { cause?: unknown };

export class NotFoundError extends StowageError {
  constructor(message: string, data?: Data, o?: Opts) { super('NotFound', message, data, o); }
}
export class AlreadyExistsError extends StowageError {
  constructor(message: string, data?: Data, o?: Opts) { super('AlreadyExists', message, data, o); }
}
export class ConflictError extends StowageError {
  constructor(message: string, data?: Data, o?: Opts) { super('Conflict', message, data, o); }
}
export class InvalidArgumentError extends StowageError {
  constructor(message: string, data?: Data, o?: Opts) { super('InvalidArgument', message, data, o); }
}
export class FailedPreconditionError extends StowageError {
  constructor(message: string, data?: Data, o?: Opts) { super('FailedPrecondition', message, data, o); }
}
export class UnavailableError extends StowageError {
  constructor(message: string, data?: Data, o?: Opts) { super('Unavailable', message, data, o); }
}
/** The bytes do not hash to what was expected. A kind of FailedPrecondition in containerd's terms. */
export class DigestMismatchError extends StowageError {
  constructor(message: string, data?: Data, o?: Opts) { super('DigestMismatch', message, data, o); }
}
/** The byte count differs from what was expected (short read, overlong stream, wrong commit size). */
export class SizeMismatchError extends StowageError {
  constructor(message: string, data?: Data, o?: Opts) { super('SizeMismatch', message, data, o); }
}
export class UnauthorizedError extends StowageError {
  constructor(message: string, data?: Data, o?: Opts) { super('Unauthorized', message, data, o); }
}
export class ForbiddenError extends StowageError {
  constructor(message: string, data?: Data, o?: Opts) { super('Forbidden', message, data, o); }
}
export class NotImplementedError extends StowageError {
  constructor(message: string, data?: Data, o?: Opts) { super('NotImplemented', message, data, o); }
}
export class AbortedError extends StowageError {
  constructor(message: string, data?: Data, o?: Opts) { super('Aborted', message, data, o); }
}
export class ResourceExhaustedError extends StowageError {
  constructor(message: string, data?: Data, o?: Opts) { super('ResourceExhausted', message, data, o); }
}

export function isStowageError(e: unknown, code?: ErrorCode): e is StowageError {
  return e instanceof StowageError && (code === undefined || e.code === code);
}

/** Throws AbortedError if the signal has fired. Long operations call this between steps. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new AbortedError('operation aborted', { reason: String(signal.reason ?? '') });
}

/** Maps a Node system error on a path to the error family (ENOENT -> NotFound, ENOSPC -> ResourceExhausted...). */
export function fromSystemError(err: unknown, what: string): StowageError {
  if (err instanceof StowageError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  const data = { syscallCode: code, what };
  switch (code) {
    case 'ENOENT': return new NotFoundError(`${what}: not found`, data, { cause: err });
    case 'EEXIST': return new AlreadyExistsError(`${what}: already exists`, data, { cause: err });
    case 'ENOSPC': case 'EDQUOT': return new ResourceExhaustedError(`${what}: no space left on device`, data, { cause: err });
    case 'EACCES': case 'EPERM': return new ForbiddenError(`${what}: permission denied`, data, { cause: err });
    default: return new StowageError('Unknown', `${what}: ${(err as Error)?.message ?? String(err)}`, data, { cause: err });
  }
}
