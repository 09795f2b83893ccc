// The protocol vocabulary shared by the registry client and the registry server.
import { describe, expect, it } from 'vitest';
import {
  acceptsManifest, errorBody, formatChunkRange, formatContentRange, formatNextLink, formatUploadRange, manifestAcceptHeader, parseAccept,
  parseChunkRange, parseContentRange, parseNextLink, parseRangeRequest, parseRegistryErrors, parseUploadRange,
} from '../../src/distribution/index.js';

describe('protocol vocabulary', () => {
  it('Range requests against a blob: forms, suffixes, clamping, unsatisfiable and ignored ones', () => {
    expect(parseRangeRequest('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRangeRequest('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRangeRequest('bytes=90-500', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRangeRequest('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRangeRequest('bytes=-500', 100)).toEqual({ start: 0, end: 99 });
    expect(parseRangeRequest('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRangeRequest('bytes=-0', 100)).toBe('unsatisfiable');
    expect(parseRangeRequest(undefined, 100)).toBeUndefined();
    expect(parseRangeRequest('bytes=0-1,5-6', 100)).toBeUndefined();
    expect(parseRangeRequest('bytes=9-3', 100)).toBeUndefined();
    expect(parseRangeRequest('items=0-3', 100)).toBeUndefined();
  });

  it('Content-Range of a 206 and of a 416, written and read back', () => {
    expect(formatContentRange({ start: 10, end: 19 }, 100)).toBe('bytes 10-19/100');
    expect(parseContentRange('bytes 10-19/100')).toEqual({ start: 10, end: 19, size: 100 });
    expect(parseContentRange('bytes 10-19/*')).toEqual({ start: 10, end: 19 });
    expect(parseContentRange('10-19')).toBeUndefined();
  });

  it('upload ranges: the spec\'s 0-N, docker\'s bytes=0-N, chunk ranges with and without a prefix', () => {
    expect(formatUploadRange(42)).toBe('0-41');
    expect(formatUploadRange(0)).toBe('0-0');
    expect(parseUploadRange('0-41')).toBe(41);
    expect(parseUploadRange('bytes=0-41')).toBe(41);
    expect(parseUploadRange('5-41')).toBeUndefined();
    expect(formatChunkRange(22, 20)).toBe('22-41');
    expect(parseChunkRange('22-41')).toEqual({ start: 22, end: 41 });
    expect(parseChunkRange('bytes 22-41/42')).toEqual({ start: 22, end: 41 });
    expect(parseChunkRange('41-22')).toBeUndefined();
    expect(parseChunkRange('x')).toBeUndefined();
  });

  it('Link headers: the next page among other relations, quoted or not', () => {
    expect(parseNextLink(formatNextLink('/v2/a/tags/list?n=2&last=b'))).toBe('/v2/a/tags/list?n=2&last=b');
    expect(parseNextLink('</p?x=1>; rel=prev, </n?x=2>; rel=next')).toBe('/n?x=2');
    expect(parseNextLink('</p>; rel="prev"')).toBeUndefined();
    expect(parseNextLink(undefined)).toBeUndefined();
  });

  it('Accept negotiation: listed types, wildcards, no header; parameters ignored', () => {
    const schema2 = 'application/vnd.docker.distribution.manifest.v2+json';
    const oci = 'application/vnd.oci.image.manifest.v1+json';
    expect(parseAccept([`${schema2}; q=0.9`, 'application/json'])).toEqual([schema2, 'application/json']);
    expect(acceptsManifest(parseAccept(schema2), schema2)).toBe(true);
    expect(acceptsManifest(parseAccept(schema2), oci)).toBe(false);
    expect(acceptsManifest(parseAccept('*/*'), oci)).toBe(true);
    expect(acceptsManifest([], oci)).toBe(true);
    expect(manifestAcceptHeader(schema2).split(', ')[0]).toBe(schema2);
  });

  it('error bodies round-trip through the client\'s parser', () => {
    expect(parseRegistryErrors(errorBody('MANIFEST_BLOB_UNKNOWN', 'blob unknown', { digest: 'sha256:x' })))
      .toEqual([{ code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown', detail: { digest: 'sha256:x' } }]);
    expect(parseRegistryErrors(Buffer.from('not json'))).toEqual([]);
  });
});
