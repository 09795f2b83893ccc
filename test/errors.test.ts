import { describe, expect, it } from 'vitest';
import { ConflictError, InvalidArgumentError, NotFoundError, StowageError, fromSystemError, isNotFound, isStowageError, stowageErrorOf } from '../src/errors/index.js';
import { EMPTY_SHA256, digestOf, parseDigest } from '../src/oci/index.js';

describe('errors', () => {
  it('carries a stable code and data', () => {
    const e = new NotFoundError('blob missing', { digest: 'sha256:x' });
    expect(e).toBeInstanceOf(StowageError);
    expect(e.code).toBe('NotFound');
    expect(e.data.digest).toBe('sha256:x');
    expect(isStowageError(e, 'NotFound')).toBe(true);
    expect(isStowageError(e, 'Conflict')).toBe(false);
  });
  it('maps system errors', () => {
    const enospc = Object.assign(new Error('no space'), { code: 'ENOSPC' });
    expect(fromSystemError(enospc, 'write').code).toBe('ResourceExhausted');
    expect(fromSystemError(Object.assign(new Error('x'), { code: 'ENOENT' }), 'open').code).toBe('NotFound');
    const exists = fromSystemError(Object.assign(new Error('x'), { code: 'EEXIST' }), 'lock r', { data: { ref: 'r' } });
    expect([exists.code, exists.message, exists.data]).toEqual(['AlreadyExists', 'lock r: already exists', { ref: 'r', syscallCode: 'EEXIST', what: 'lock r' }]);
    expect(fromSystemError(Object.assign(new Error('x'), { code: 'EACCES' }), 'open').code).toBe('Forbidden');
    expect(fromSystemError(Object.assign(new Error('odd'), { code: 'EIO' }), 'read').code).toBe('Unknown');
  });
  it('blames the input for errors a path from the input causes, and only those', () => {
    const opts = { inputFault: { reason: 'invalid-archive', what: 'invalid layer archive' } };
    const notDir = fromSystemError(Object.assign(new Error('ENOTDIR: not a directory'), { code: 'ENOTDIR' }), 'apply', opts);
    expect(notDir).toBeInstanceOf(InvalidArgumentError);
    expect([notDir.message, notDir.data.reason]).toEqual(['invalid layer archive: ENOTDIR: not a directory', 'invalid-archive']);
    expect(fromSystemError(Object.assign(new Error('x'), { code: 'ENOSPC' }), 'apply', opts).code).toBe('ResourceExhausted');
    expect(fromSystemError(Object.assign(new Error('x'), { code: 'ENOTDIR' }), 'apply').code).toBe('Unknown');
  });
  it('follows the cause chain: an Error wrapping a StowageError counts, the nearest one decides', () => {
    const inner = new NotFoundError('blob missing', { digest: 'sha256:x' });
    const wrapped = new Error('stream failed', { cause: new Error('pipeline', { cause: inner }) });
    expect(isStowageError(wrapped)).toBe(true);
    expect(isStowageError(wrapped, 'NotFound')).toBe(true);
    expect(isStowageError(wrapped, 'Conflict')).toBe(false);
    expect(stowageErrorOf(wrapped)).toBe(inner);
    expect(fromSystemError(wrapped, 'read')).toBe(inner);
    expect(isNotFound(wrapped)).toBe(true);
    const reclassified = new ConflictError('in use', {}, { cause: inner });
    expect(isStowageError(reclassified, 'Conflict')).toBe(true);
    expect(isStowageError(reclassified, 'NotFound')).toBe(false);
    expect(isNotFound(reclassified)).toBe(false);
  });
  it('says no for what holds no StowageError, and survives a cause cycle', () => {
    expect(isStowageError(new Error('plain', { cause: new Error('deeper') }))).toBe(false);
    expect(isStowageError('NotFound')).toBe(false);
    expect(isStowageError({ code: 'NotFound', cause: new NotFoundError('x') })).toBe(false);
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(isStowageError(a)).toBe(false);
    expect(stowageErrorOf(a)).toBeUndefined();
  });
  it('isNotFound: a raw ENOENT or a NotFound StowageError', () => {
    expect(isNotFound(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe(true);
    expect(isNotFound(Object.assign(new Error('x'), { code: 'EACCES' }))).toBe(false);
    expect(isNotFound(new NotFoundError('gone'))).toBe(true);
    expect(isNotFound(new StowageError('Unknown', 'x'))).toBe(false);
    expect(isNotFound(undefined)).toBe(false);
  });
});

describe('digests', () => {
  it('hashes and parses', () => {
    expect(digestOf('')).toBe(EMPTY_SHA256);
    expect(parseDigest(EMPTY_SHA256).algorithm).toBe('sha256');
  });
  it('rejects malformed and unknown digests', () => {
    for (const bad of ['sha256:abc', 'md5:' + 'a'.repeat(32), 'sha256:' + 'A'.repeat(64), 'nodigest', '']) {
      expect(() => parseDigest(bad)).toThrowError(expect.objectContaining({ code: 'InvalidArgument' }));
    }
  });
});
