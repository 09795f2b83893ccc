import { describe, expect, it } from 'vitest';
import { NotFoundError, StowageError, fromSystemError, isStowageError } from '../src/errors/index.js';
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
