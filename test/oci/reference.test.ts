import { describe, expect, it } from 'vitest';
import {
  familiarName, familiarString, parseAnyReference, parseDockerRef, parseNormalizedNamed, parseReference,
  referenceString, repositoryName, ReferenceErrors, tagNameOnly,
} from '../../src/oci/index.js';
import { isStowageError, isStowageError as isErr } from '../../src/errors/index.js';

const F64 = 'f'.repeat(64);
const F128 = 'f'.repeat(128);

function errorOf(fn: () => unknown): string {
  try { fn(); } catch (e) {
    expect(isErr(e, 'InvalidArgument')).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

// Ported from distribution/reference reference_test.go (TestReferenceParse).
describe('parseReference (docker Parse table)', () => {
  type Row = { input: string; err?: string; domain?: string; path?: string; tag?: string; digest?: string };
  const rows: Row[] = [
    { input: 'test_com', path: 'test_com' },
    { input: 'test.com:tag', path: 'test.com', tag: 'tag' },
    { input: 'test.com:5000', path: 'test.com', tag: '5000' },
    { input: 'test.com/repo:tag', domain: 'test.com', path: 'repo', tag: 'tag' },
    { input: 'test:5000/repo', domain: 'test:5000', path: 'repo' },
    { input: 'test:5000/repo:tag', domain: 'test:5000', path: 'repo', tag: 'tag' },
    { input: `test:5000/repo@sha256:${F64}`, domain: 'test:5000', path: 'repo', digest: `sha256:${F64}` },
    { input: `test:5000/repo:tag@sha256:${F64}`, domain: 'test:5000', path: 'repo', tag: 'tag', digest: `sha256:${F64}` },
    { input: '', err: ReferenceErrors.nameEmpty },
    { input: ':justtag', err: ReferenceErrors.invalidFormat },
    { input: `@sha256:${F64}`, err: ReferenceErrors.invalidFormat },
    { input: `repo@sha256:${'f'.repeat(63)}`, err: ReferenceErrors.checksumInvalidLength },
    { input: `validname@invaliddigest:${F64}`, err: ReferenceErrors.checksumUnsupported },
    { input: 'Uppercase:tag', err: ReferenceErrors.nameContainsUppercase },
    { input: 'test:5000/Uppercase/lowercase:tag', err: ReferenceErrors.nameContainsUppercase },
    { input: 'lowercase:Uppercase', path: 'lowercase', tag: 'Uppercase' },
    // The length cap applies to the path without the domain (distribution/reference ≥ 0.5): 'a' is the domain here.
    { input: `${'a/'.repeat(128)}a:tag`, domain: 'a', path: `${'a/'.repeat(127)}a`, tag: 'tag' },
    { input: `${'a/'.repeat(128)}aa:tag`, err: ReferenceErrors.nameTooLong },
    { input: `${'a/'.repeat(127)}a:tag-puts-this-over-max`, domain: 'a', path: `${'a/'.repeat(126)}a`, tag: 'tag-puts-this-over-max' },
    { input: 'aa/asdf$$^/aa', err: ReferenceErrors.invalidFormat },
    { input: 'sub-dom1.foo.com/bar/baz/quux', domain: 'sub-dom1.foo.com', path: 'bar/baz/quux' },
    { input: 'sub-dom1.foo.com/bar/baz/quux:some-long-tag', domain: 'sub-dom1.foo.com', path: 'bar/baz/quux', tag: 'some-long-tag' },
    { input: 'b.gcr.io/test.example.com/my-app:test.example.com', domain: 'b.gcr.io', path: 'test.example.com/my-app', tag: 'test.example.com' },
    { input: 'xn--n3h.com/myimage:xn--n3h.com', domain: 'xn--n3h.com', path: 'myimage', tag: 'xn--n3h.com' },
    { input: `xn--7o8h.com/myimage:xn--7o8h.com@sha512:${F128}`, domain: 'xn--7o8h.com', path: 'myimage', tag: 'xn--7o8h.com', digest: `sha512:${F128}` },
    { input: 'foo_bar.com:8080', path: 'foo_bar.com', tag: '8080' },
    { input: 'foo/foo_bar.com:8080', domain: 'foo', path: 'foo_bar.com', tag: '8080' },
    { input: '192.168.1.1', path: '192.168.1.1' },
    { input: '192.168.1.1:tag', path: '192.168.1.1', tag: 'tag' },
    { input: '192.168.1.1:5000', path: '192.168.1.1', tag: '5000' },
    { input: '192.168.1.1/repo', domain: '192.168.1.1', path: 'repo' },
    { input: '192.168.1.1:5000/repo', domain: '192.168.1.1:5000', path: 'repo' },
    { input: '192.168.1.1:5000/repo:5050', domain: '192.168.1.1:5000', path: 'repo', tag: '5050' },
    { input: '[2001:db8::1]', err: ReferenceErrors.invalidFormat },
    { input: '[2001:db8::1]:5000', err: ReferenceErrors.invalidFormat },
    { input: '[2001:db8::1]:tag', err: ReferenceErrors.invalidFormat },
    { input: '[2001:db8::1]/repo', domain: '[2001:db8::1]', path: 'repo' },
    { input: '[2001:db8:1:2:3:4:5:6]/repo:tag', domain: '[2001:db8:1:2:3:4:5:6]', path: 'repo', tag: 'tag' },
    { input: '[2001:db8::1]:5000/repo', domain: '[2001:db8::1]:5000', path: 'repo' },
    { input: '[2001:db8::1]:5000/repo:tag', domain: '[2001:db8::1]:5000', path: 'repo', tag: 'tag' },
    { input: `[2001:db8::1]:5000/repo@sha256:${F64}`, domain: '[2001:db8::1]:5000', path: 'repo', digest: `sha256:${F64}` },
    { input: `[2001:db8::1]:5000/repo:tag@sha256:${F64}`, domain: '[2001:db8::1]:5000', path: 'repo', tag: 'tag', digest: `sha256:${F64}` },
    { input: '[2001:db8::]:5000/repo', domain: '[2001:db8::]:5000', path: 'repo' },
    { input: '[::1]:5000/repo', domain: '[::1]:5000', path: 'repo' },
    { input: '[fe80::1%eth0]:5000/repo', err: ReferenceErrors.invalidFormat },
    { input: '[fe80::1%@invalidzone]:5000/repo', err: ReferenceErrors.invalidFormat },
  ];
  for (const r of rows) {
    it(JSON.stringify(r.input.length > 60 ? r.input.slice(0, 60) + '…' : r.input), () => {
      if (r.err) {
        expect(errorOf(() => parseReference(r.input))).toBe(r.err);
        return;
      }
      const ref = parseReference(r.input);
      expect(ref.domain).toBe(r.domain ?? '');
      expect(ref.path).toBe(r.path);
      expect(ref.tag).toBe(r.tag);
      expect(ref.digest).toBe(r.digest);
      expect(referenceString(ref)).toBe(r.input);
    });
  }
});

// normalize_test.go: TestValidateReferenceName, TestNormalizedSplitHostname, TestParseRepositoryInfo.
describe('parseNormalizedNamed', () => {
  const valid = [
    'docker/docker', 'library/debian', 'debian', 'docker.io/docker/docker', 'docker.io/library/debian', 'docker.io/debian',
    'index.docker.io/docker/docker', 'index.docker.io/library/debian', 'index.docker.io/debian', '127.0.0.1:5000/docker/docker',
    '127.0.0.1:5000/library/debian', '127.0.0.1:5000/debian', '192.168.0.1', '192.168.0.1:80', '192.168.0.1:8/debian',
    '192.168.0.2:25000/debian', 'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev', '[fc00::1]:5000/docker',
    '[fc00::1]:5000/docker/docker', 'docker.io/jess/t-shirt', 'localhost/debian', 'localhost:5000/a/b/c',
    '[::1]:5000/x', 'Foo/bar',
  ];
  for (const v of valid) it(`accepts ${v}`, () => { expect(() => parseNormalizedNamed(v)).not.toThrow(); });

  const invalid: Array<[string, string]> = [
    ['https://github.com/docker/docker', ReferenceErrors.invalidFormat],
    ['docker/Docker', 'invalid reference format: repository name (docker/Docker) must be lowercase'],
    ['-docker', ReferenceErrors.invalidFormat],
    ['-docker/docker', ReferenceErrors.invalidFormat],
    ['-docker.io/docker/docker', ReferenceErrors.invalidFormat],
    ['docker///docker', ReferenceErrors.invalidFormat],
    ['docker.io/docker/Docker', 'invalid reference format: repository name (docker/Docker) must be lowercase'],
    ['docker.io/docker///docker', ReferenceErrors.invalidFormat],
    ['[fc00::1]', ReferenceErrors.invalidFormat],
    ['[fc00::1]:5000', ReferenceErrors.invalidFormat],
    ['fc00::1:5000/debian', ReferenceErrors.invalidFormat],
    ['[fe80::1%eth0]:5000/debian', ReferenceErrors.invalidFormat],
    ['[2001:db8:3:4::192.0.2.33]:5000/debian', ReferenceErrors.invalidFormat],
    ['1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a',
      'invalid repository name (1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a), cannot specify 64-byte hexadecimal strings'],
    ['', ReferenceErrors.invalidFormat],
    ['Uppercase', 'invalid reference format: repository name (library/Uppercase) must be lowercase'],
    ['localhost:5000/Repo:tag', 'invalid reference format: repository name (Repo) must be lowercase'],
    [`x/${'a'.repeat(254)}`, ReferenceErrors.nameTooLong],
    [`reg.io/x:${'t'.repeat(129)}`, ReferenceErrors.invalidFormat],
  ];
  for (const [input, msg] of invalid) {
    it(`refuses ${input.slice(0, 50)} with docker's message`, () => { expect(errorOf(() => parseNormalizedNamed(input))).toBe(msg); });
  }

  it('keeps a 128-char tag and a 255-char path', () => {
    expect(parseNormalizedNamed(`reg.io/x:${'t'.repeat(128)}`).tag).toHaveLength(128);
    expect(parseNormalizedNamed(`x/${'a'.repeat(253)}`).path).toHaveLength(255);
  });

  const split: Array<[string, string, string]> = [
    ['test.com/foo', 'test.com', 'foo'],
    ['test_com/foo', 'docker.io', 'test_com/foo'],
    ['docker/migrator', 'docker.io', 'docker/migrator'],
    ['test.com:8080/foo', 'test.com:8080', 'foo'],
    ['test-com:8080/foo', 'test-com:8080', 'foo'],
    ['foo', 'docker.io', 'library/foo'],
    ['xn--n3h.com/foo', 'xn--n3h.com', 'foo'],
    ['xn--n3h.com:18080/foo', 'xn--n3h.com:18080', 'foo'],
    ['docker.io/foo', 'docker.io', 'library/foo'],
    ['docker.io/library/foo', 'docker.io', 'library/foo'],
    ['docker.io/library/foo/bar', 'docker.io', 'library/foo/bar'],
    ['index.docker.io/foo', 'docker.io', 'library/foo'],
    ['localhost/foo', 'localhost', 'foo'],
    ['localhost', 'docker.io', 'library/localhost'],
    ['[::1]:5000/foo', '[::1]:5000', 'foo'],
    ['Foo/bar', 'Foo', 'bar'],
  ];
  for (const [input, domain, path] of split) {
    it(`splits ${input}`, () => {
      const r = parseNormalizedNamed(input);
      expect([r.domain, r.path]).toEqual([domain, path]);
    });
  }

  const familiar: Array<[string, string, string]> = [
    ['fooo/bar', 'fooo/bar', 'docker.io/fooo/bar'],
    ['library/ubuntu', 'ubuntu', 'docker.io/library/ubuntu'],
    ['nonlibrary/ubuntu', 'nonlibrary/ubuntu', 'docker.io/nonlibrary/ubuntu'],
    ['ubuntu', 'ubuntu', 'docker.io/library/ubuntu'],
    ['docker.io/ubuntu', 'ubuntu', 'docker.io/library/ubuntu'],
    ['docker.io/library/ubuntu', 'ubuntu', 'docker.io/library/ubuntu'],
    ['docker.io/library/foo/bar', 'library/foo/bar', 'docker.io/library/foo/bar'],
    ['127.0.0.1:8000/private/moonbase', '127.0.0.1:8000/private/moonbase', '127.0.0.1:8000/private/moonbase'],
    ['localhost:8000/private/moonbase', 'localhost:8000/private/moonbase', 'localhost:8000/private/moonbase'],
    ['localhost/privatebase', 'localhost/privatebase', 'localhost/privatebase'],
    ['ubuntu-12.04-base', 'ubuntu-12.04-base', 'docker.io/library/ubuntu-12.04-base'],
    ['index.docker.io/ubuntu-12.04-base', 'ubuntu-12.04-base', 'docker.io/library/ubuntu-12.04-base'],
  ];
  for (const [input, fam, full] of familiar) {
    it(`familiar ${input}`, () => {
      const r = parseNormalizedNamed(input);
      expect(familiarName(r)).toBe(fam);
      expect(repositoryName(r)).toBe(full);
    });
  }

  it('familiarString and tagNameOnly', () => {
    expect(familiarString(tagNameOnly(parseNormalizedNamed('alpine')))).toBe('alpine:latest');
    expect(referenceString(tagNameOnly(parseNormalizedNamed('alpine')))).toBe('docker.io/library/alpine:latest');
    const both = parseNormalizedNamed(`alpine:3@sha256:${F64}`);
    expect(tagNameOnly(both)).toEqual(both);
    expect(familiarString(both)).toBe(`alpine:3@sha256:${F64}`);
    expect(referenceString(both)).toBe(`docker.io/library/alpine:3@sha256:${F64}`);
  });
});

describe('parseAnyReference and parseDockerRef', () => {
  it('a 64-hex string is a digest reference', () => {
    expect(parseAnyReference(F64)).toEqual({ domain: '', path: '', digest: `sha256:${F64}` });
    expect(familiarString(parseAnyReference(F64))).toBe(`sha256:${F64}`);
  });
  it('a digest string is a digest reference', () => {
    expect(parseAnyReference(`sha256:${F64}`).digest).toBe(`sha256:${F64}`);
  });
  it('a short hex is a name', () => {
    expect(repositoryName(parseAnyReference('abc123'))).toBe('docker.io/library/abc123');
  });
  it('ParseDockerRef adds latest and drops the tag beside a digest', () => {
    expect(referenceString(parseDockerRef('busybox'))).toBe('docker.io/library/busybox:latest');
    expect(referenceString(parseDockerRef(`busybox:latest@sha256:${F64}`))).toBe(`docker.io/library/busybox@sha256:${F64}`);
    expect(referenceString(parseDockerRef('localhost:5000/a/b:v1'))).toBe('localhost:5000/a/b:v1');
  });
  it('errors are typed StowageErrors', () => {
    try { parseNormalizedNamed('UP'); } catch (e) { expect(isStowageError(e, 'InvalidArgument')).toBe(true); return; }
    throw new Error('no error');
  });
});
