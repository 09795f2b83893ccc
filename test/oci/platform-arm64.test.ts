import { describe, expect, it } from 'vitest';
import { normalizePlatform, onlyPlatform, type Platform } from '../../src/oci/index.js';

/** arm64 minor variants, as containerd/platforms (compare.go platformVector, database.go normalizeArch) rank them. */
const arm64 = (variant?: string): Platform => ({ os: 'linux', architecture: 'arm64', ...(variant ? { variant } : {}) });

describe('arm64 variants', () => {
  it('9.0 and v9.0 normalise to v9, as 9 does', () => {
    for (const v of ['9', '9.0', 'v9.0', 'V9.0']) expect(normalizePlatform(arm64(v)).variant).toBe('v9');
    for (const v of ['8', 'v8', 'v8.0']) expect(normalizePlatform(arm64(v)).variant).toBeUndefined();
  });

  it('Only(arm64/v8.2) accepts v8.1 and plain arm64 (v8), then 32-bit arm', () => {
    const m = onlyPlatform(arm64('v8.2'));
    const cands = [arm64(), arm64('v8.1'), arm64('v8.2'), arm64('v8.3'), arm64('v9'), { os: 'linux', architecture: 'arm', variant: 'v7' }];
    const ok = cands.filter((p) => m.match(p)).sort((a, b) => m.rank(a) - m.rank(b));
    expect(ok.map((p) => `${p.architecture}/${p.variant ?? ''}`)).toEqual(['arm64/v8.2', 'arm64/v8.1', 'arm64/', 'arm/v7']);
  });

  it('Only(arm64/v9) accepts v8.5 down to v8 before 32-bit arm; v9.2 also v9.1 and v9', () => {
    const m = onlyPlatform(arm64('v9'));
    expect(m.match(arm64('v8.5'))).toBe(true);
    expect(m.match(arm64('v8.6'))).toBe(false);
    expect(m.rank(arm64('v8.5'))).toBeLessThan(m.rank(arm64('v8.1')));
    expect(m.rank(arm64('v8.1'))).toBeLessThan(m.rank(arm64()));
    expect(m.rank(arm64())).toBeLessThan(m.rank({ os: 'linux', architecture: 'arm', variant: 'v8' }));
    const m2 = onlyPlatform(arm64('v9.2'));
    expect([arm64('v9.1'), arm64('v9'), arm64('v8.7'), arm64('v8.8'), arm64()].map((p) => m2.match(p))).toEqual([true, true, true, false, true]);
    expect(m2.rank(arm64('v9'))).toBeLessThan(m2.rank(arm64('v8.7')));
  });

  it('Only(arm64) is unchanged: arm64, then arm/v8..v5', () => {
    const m = onlyPlatform(arm64());
    expect(m.match(arm64('v8.1'))).toBe(false);
    expect(m.match({ os: 'linux', architecture: 'arm', variant: 'v5' })).toBe(true);
    expect(m.match(arm64('v9'))).toBe(false);
  });
});
