import { describe, expect, it } from 'vitest';
import { isStowageError } from '../../src/errors/index.js';
import { labelField, matchFilters, parseFilters } from '../../src/filters/index.js';

const rec = { name: 'docker.io/library/alpine:3', size: '42', labels: { 'containerd.io/gc.root': 'x', 'a.b': 'dotted', empty: '' } as Record<string, string> };
const get = (fp: string[]) => {
  if (fp[0] === 'labels') return labelField(rec.labels, fp.slice(1));
  if (fp.length !== 1) return undefined;
  return fp[0] === 'name' ? rec.name : fp[0] === 'size' ? rec.size : undefined;
};
const match = (...f: string[]) => matchFilters(parseFilters(...f), get);

describe('filters', () => {
  it('parses selectors, quoting and operators', () => {
    expect(parseFilters('labels."a.b/c"==x,name~=^d,size')).toEqual([[
      { fieldpath: ['labels', 'a.b/c'], op: '==', value: 'x' },
      { fieldpath: ['name'], op: '~=', value: '^d', regex: /^d/ },
      { fieldpath: ['size'], op: 'present' },
    ]]);
    expect(parseFilters('name=="a,b"')[0]![0]!.value).toBe('a,b');
    expect(parseFilters('name~=/a.b/')[0]![0]!.value).toBe('a.b');
  });

  it('matches equality, inequality, regex and presence; commas AND, arguments OR', () => {
    expect(match()).toBe(true);
    expect(match('')).toBe(true);
    expect(match('name==docker.io/library/alpine:3')).toBe(true);
    expect(match('name==other')).toBe(false);
    expect(match('name!=other')).toBe(true);
    expect(match('labels.missing!=x')).toBe(true);
    expect(match('name~=alpine')).toBe(true);
    expect(match('name~=^alpine')).toBe(false);
    expect(match('labels."containerd.io/gc.root"')).toBe(true);
    expect(match('labels.containerd.io/gc.root==x')).toBe(true);
    expect(match('labels.a.b==dotted')).toBe(true);
    expect(match('labels.empty')).toBe(true);
    expect(match('labels.nope')).toBe(false);
    expect(match('size==42,name~=alpine')).toBe(true);
    expect(match('size==42,name==x')).toBe(false);
    expect(match('size==1', 'name~=alpine')).toBe(true);
    expect(match('size==1', 'name==x')).toBe(false);
  });

  it('rejects malformed filters with InvalidArgument', () => {
    for (const bad of ['==x', 'name==', 'name=x', 'name~=(', 'labels."open', 'a,,b', 'name==x,']) {
      try {
        parseFilters(bad);
        throw new Error(`accepted ${bad}`);
      } catch (e) {
        expect(isStowageError(e, 'InvalidArgument'), bad).toBe(true);
      }
    }
  });
});

describe('filters: quoted values as containerd unquotes them', () => {
  it('keeps the meaning of escapes: known ones decode, unknown ones are refused, never silently dropped', () => {
    // `\.` inside a quoted regex used to become `.` (any character): `dockerXio` matched `docker\.io`.
    const rx = (f: string) => {
      try { return parseFilters(f)[0]![0]!.regex; } catch (e) { return e; }
    };
    const dotted = rx('name~=/^docker\\.io/');
    if (dotted instanceof RegExp) expect(dotted.test('dockerXio/library')).toBe(false);
    else expect(isStowageError(dotted, 'InvalidArgument')).toBe(true);
    // the escapes containerd knows
    expect(parseFilters('name=="a\\"b\\\\c\\td"')[0]![0]!.value).toBe('a"b\\c\td');
    expect(parseFilters('name~=/a\\/b/')[0]![0]!.value).toBe('a/b');
    expect(parseFilters('name=="\\x41\\u00e9"')[0]![0]!.value).toBe('A\u00e9');
  });

  it('accepts |...| as a regex quote (so the pipes are not alternations matching everything)', () => {
    expect(parseFilters('name~=|^p[0-9]|')[0]![0]!.value).toBe('^p[0-9]');
    expect(match('name~=|^nomatch|')).toBe(false);
  });
});
