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

/**
 * The StowageError that classifies `e`: `e` itself, or the nearest one down its `cause` chain (a
 * stream or a library may wrap ours in its own Error). The nearest wins, so an error that re-classifies
 * another (a NotFound reported as InvalidArgument) keeps its own code.
 */
export function stowageErrorOf(e: unknown): StowageError | undefined {
  const seen = new Set<unknown>();
  for (let cur = e; cur instanceof Error && !seen.has(cur); cur = cur.cause) {
    if (cur instanceof StowageError) return cur;
    seen.add(cur);
  }
  return undefined;
}

/**
 * True when `e` is, or wraps through `cause`, a StowageError (of `code`, when given; the nearest one
 * decides). Use stowageErrorOf for its code and data.
 */
export function isStowageError(e: unknown, code?: ErrorCode): e is Error {
  const se = stowageErrorOf(e);
  return se !== undefined && (code === undefined || se.code === code);
}

/**
 * True when `e` means "no such thing": a NotFound StowageError, or a file-system error that
 * fromSystemError maps to one (ENOENT).
 */
export function isNotFound(e: unknown): boolean {
  return systemErrorCode(e) === 'NotFound';
}

/** Throws AbortedError if the signal has fired. Long operations call this between steps. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new AbortedError('operation aborted', { reason: String(signal.reason ?? '') });
}

/**
 * errno codes that a path's own shape causes (a component that is a file, a name too long, a symlink
 * loop, an entry already there): when the path came from input (an archive member), the input is at
 * fault, not the machine.
 */
const PATH_SHAPE_ERRNOS = new Set(['ENOTDIR', 'ENAMETOOLONG', 'ELOOP', 'EISDIR', 'ENOENT', 'EEXIST', 'EINVAL', 'ENOTEMPTY']);

/** The code fromSystemError gives `err` (a StowageError, or one down the cause chain, keeps its own). */
function systemErrorCode(err: unknown): ErrorCode {
  const se = stowageErrorOf(err);
  if (se) return se.code;
  switch ((err as NodeJS.ErrnoException | undefined)?.code) {
    case 'ENOENT': return 'NotFound';
    case 'EEXIST': return 'AlreadyExists';
    case 'ENOSPC': case 'EDQUOT': return 'ResourceExhausted';
    case 'EACCES': case 'EPERM': return 'Forbidden';
    default: return 'Unknown';
  }
}

export interface SystemErrorOptions {
  /**
   * The path was named by input (an archive member, a layer entry): errors its shape causes
   * (ENOTDIR, ENAMETOOLONG, ELOOP, EISDIR, ENOENT, EEXIST, EINVAL, ENOTEMPTY) become InvalidArgument
   * with this `reason` (e.g. 'invalid-archive'), worded `${inputFault.what ?? what}: ${message}`.
   */
  inputFault?: { reason: string; what?: string };
  /** Detail for the error's `data` (the digest, the ref...), beside `syscallCode` and `what`. */
  data?: Record<string, unknown>;
}

/**
 * The one mapping from a Node system error on a path to the error family (ENOENT -> NotFound, EEXIST ->
 * AlreadyExists, ENOSPC/EDQUOT -> ResourceExhausted, EACCES/EPERM -> Forbidden, else Unknown). A
 * StowageError, or an Error wrapping one, comes back as that StowageError.
 */
export function fromSystemError(err: unknown, what: string, opts: SystemErrorOptions = {}): StowageError {
  const se = stowageErrorOf(err);
  if (se) return se;
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = (err as Error | undefined)?.message ?? String(err);
  if (opts.inputFault && errno !== undefined && PATH_SHAPE_ERRNOS.has(errno)) {
    return new InvalidArgumentError(`${opts.inputFault.what ?? what}: ${message}`, { ...opts.data, reason: opts.inputFault.reason, syscallCode: errno }, { cause: err });
  }
  const data = { ...opts.data, syscallCode: errno, what };
  switch (systemErrorCode(err)) {
    case 'NotFound': return new NotFoundError(`${what}: not found`, data, { cause: err });
    case 'AlreadyExists': return new AlreadyExistsError(`${what}: already exists`, data, { cause: err });
    case 'ResourceExhausted': return new ResourceExhaustedError(`${what}: no space left on device`, data, { cause: err });
    case 'Forbidden': return new ForbiddenError(`${what}: permission denied`, data, { cause: err });
    default: return new StowageError('Unknown', `${what}: ${message}`, data, { cause: err });
  }
}

/** An error as plain data, to cross to another thread (postMessage keeps neither classes nor `code`/`data`). */
export interface WireError {
  message: string;
  name: string;
  stack?: string;
  /** A StowageError's code. */
  stowage?: ErrorCode;
  data?: Record<string, unknown>;
  /** A system error's own fields (errno code, syscall, path). */
  errno?: Record<string, unknown>;
  cause?: WireError;
}

const ERROR_CLASSES: Partial<Record<ErrorCode, new (message: string, data?: Data, o?: Opts) => StowageError>> = {
  NotFound: NotFoundError, AlreadyExists: AlreadyExistsError, Conflict: ConflictError, InvalidArgument: InvalidArgumentError,
  FailedPrecondition: FailedPreconditionError, Unavailable: UnavailableError, DigestMismatch: DigestMismatchError,
  SizeMismatch: SizeMismatchError, Unauthorized: UnauthorizedError, Forbidden: ForbiddenError,
  NotImplemented: NotImplementedError, Aborted: AbortedError, ResourceExhausted: ResourceExhaustedError,
};

export function errorToWire(e: unknown, depth = 0): WireError {
  if (!(e instanceof Error)) return { message: String(e), name: 'Error' };
  const w: WireError = { message: e.message, name: e.name, ...(e.stack ? { stack: e.stack } : {}) };
  if (e instanceof StowageError) {
    w.stowage = e.code;
    // Only what survives a structured clone (data is detail: numbers, strings, paths).
    try { w.data = structuredClone(e.data); } catch { w.data = {}; }
  } else {
    const sys = e as unknown as Record<string, unknown>;
    const errno: Record<string, unknown> = {};
    for (const k of ['code', 'errno', 'syscall', 'path', 'dest'] as const) if (sys[k] !== undefined) errno[k] = sys[k];
    if (Object.keys(errno).length > 0) w.errno = errno;
  }
  if (e.cause !== undefined && depth < 4) w.cause = errorToWire(e.cause, depth + 1);
  return w;
}

/** The error errorToWire described: a StowageError of the same class and code, or an Error with the system fields. */
export function errorFromWire(w: WireError): Error {
  const opts = w.cause ? { cause: errorFromWire(w.cause) } : undefined;
  let e: Error;
  if (w.stowage) {
    const Cls = ERROR_CLASSES[w.stowage];
    e = Cls ? new Cls(w.message, w.data, opts) : new StowageError(w.stowage, w.message, w.data, opts);
  } else {
    e = Object.assign(new Error(w.message, opts), w.errno ?? {});
    e.name = w.name;
  }
  if (w.stack) e.stack = w.stack;
  return e;
}
