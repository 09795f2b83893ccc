import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../errors/index.js';
import type { Descriptor, Platform } from './descriptor.js';

/**
 * Platforms as containerd/docker treat them: normalised names (`aarch64`→`arm64`, `x86_64`→`amd64`,
 * `armhf`→`arm/v7`), a host default, and "Only" matchers that accept compatible variants ranked best
 * first (amd64 v3→v2→v1→386, arm v7→v6→v5, arm64→arm/v8…v5).
 */

const KNOWN_OS = new Set([
  'aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux', 'nacl',
  'netbsd', 'openbsd', 'plan9', 'solaris', 'wasip1', 'windows', 'zos',
]);
const KNOWN_ARCH = new Set([
  '386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'ppc64', 'ppc64le', 'loong64', 'mips',
  'mipsle', 'mips64', 'mips64le', 'mips64p32', 'mips64p32le', 'ppc', 'riscv', 'riscv64', 's390', 's390x',
  'sparc', 'sparc64', 'wasm',
]);

export function normalizeOS(os: string): string {
  const lower = os.toLowerCase();
  return lower === 'macos' ? 'darwin' : lower;
}

/** containerd's normalizeArch: returns the canonical architecture and variant. */
export function normalizeArch(arch: string, variant: string): { architecture: string; variant: string } {
  const a = arch.toLowerCase();
  let v = variant.toLowerCase();
  switch (a) {
    case 'i386': return { architecture: '386', variant: '' };
    case 'x86_64': case 'x86-64': case 'amd64':
      return { architecture: 'amd64', variant: v === 'v1' ? '' : v };
    case 'aarch64': case 'arm64':
      if (v === '8' || v === 'v8' || v === 'v8.0') v = '';
      else if (v === '9.0' || v === 'v9.0') v = 'v9';
      else if (/^\d+(\.\d+)?$/.test(v)) v = `v${v}`;
      return { architecture: 'arm64', variant: v };
    case 'armhf': return { architecture: 'arm', variant: 'v7' };
    case 'armel': return { architecture: 'arm', variant: 'v6' };
    case 'arm':
      if (v === '' || v === '7') v = 'v7';
      else if (v === '5' || v === '6' || v === '8') v = `v${v}`;
      return { architecture: 'arm', variant: v };
    default: return { architecture: a, variant: v };
  }
}

/** Returns a normalised copy (variant omitted when empty). */
export function normalizePlatform(p: Platform): Platform {
  const { architecture, variant } = normalizeArch(p.architecture, p.variant ?? '');
  const out: Platform = { ...p, os: normalizeOS(p.os), architecture };
  if (variant) out.variant = variant; else delete out.variant;
  return out;
}

/** Parses `os[/arch[/variant]]` (or a lone arch or os, completed from the host), normalised. */
export function parsePlatform(specifier: string): Platform {
  const bad = (why: string): never => {
    throw new InvalidArgumentError(`"${specifier}": ${why}: invalid argument`, { platform: specifier });
  };
  if (specifier.includes('*')) bad('wildcards not yet supported');
  const parts = specifier.split('/');
  for (const part of parts) if (!/^[A-Za-z0-9_.-]+$/.test(part)) bad('invalid path component');
  const host = hostPlatform();
  if (parts.length === 1) {
    const one = parts[0]!;
    if (KNOWN_OS.has(normalizeOS(one))) return normalizePlatform({ os: one, architecture: host.architecture, ...(host.variant ? { variant: host.variant } : {}) });
    const { architecture, variant } = normalizeArch(one, '');
    if (KNOWN_ARCH.has(architecture)) return normalizePlatform({ os: host.os, architecture, ...(variant ? { variant } : {}) });
    bad('unknown operating system or architecture');
  }
  if (parts.length > 3) bad('cannot parse platform specifier');
  const [os, arch, variant] = parts as [string, string, string?];
  return normalizePlatform({ os, architecture: arch, ...(variant ? { variant } : {}) });
}

/** `linux/arm64/v8` style (variant omitted when empty). */
export function formatPlatform(p: Pick<Platform, 'os' | 'architecture' | 'variant'>): string {
  if (!p.os) return 'unknown';
  return [p.os, p.architecture, p.variant].filter((s) => s !== undefined && s !== '').join('/');
}

const NODE_ARCH: Record<string, string> = {
  x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', ppc: 'ppc', s390x: 's390x', s390: 's390',
  riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle',
};
const NODE_OS: Record<string, string> = { win32: 'windows', sunos: 'solaris' };

/** amd64 microarchitecture level from /proc/cpuinfo flags (as containerd's cpuinfo does); '' when unknown. */
function amd64Level(): string {
  let flags: Set<string>;
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    if (!line) return '';
    flags = new Set(line.slice(line.indexOf(':') + 1).trim().split(/\s+/));
  } catch { return ''; }
  const all = (...f: string[]) => f.every((x) => flags.has(x));
  if (!all('cx16', 'lahf_lm', 'popcnt', 'pni', 'sse4_1', 'sse4_2', 'ssse3')) return 'v1';
  if (!all('avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave')) return 'v2';
  if (!all('avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl')) return 'v3';
  return 'v4';
}

let cachedHost: Platform | undefined;

/** The platform of this process (os/arch, with the arm version or the amd64 level as variant). */
export function hostPlatform(): Platform {
  if (cachedHost) return { ...cachedHost };
  const os = NODE_OS[process.platform] ?? process.platform;
  const architecture = NODE_ARCH[process.arch] ?? process.arch;
  let variant = '';
  if (architecture === 'arm') {
    const v = (process.config.variables as Record<string, unknown>)['arm_version'];
    variant = v ? `v${String(v)}` : 'v7';
  } else if (architecture === 'amd64' && os === 'linux') {
    variant = amd64Level();
  }
  cachedHost = normalizePlatform({ os, architecture, ...(variant ? { variant } : {}) });
  return { ...cachedHost };
}

/** Decides which platforms are acceptable and ranks them (lower rank = better). */
export interface PlatformMatcher {
  match(p: Platform): boolean;
  /** Index in the preference order; Infinity for platforms that do not match. */
  rank(p: Platform): number;
}

function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

/** The compatible platforms of `p`, best first (containerd's platformVector). */
export function platformVector(p: Platform): Platform[] {
  const n = normalizePlatform(p);
  const vector: Platform[] = [n];
  const os = n.os;
  const variantNumber = (v: string | undefined): number => {
    const m = /^v(\d+)/.exec(v ?? '');
    return m ? Number(m[1]) : NaN;
  };
  switch (n.architecture) {
    case 'amd64': {
      const level = n.variant ? variantNumber(n.variant) : 1;
      for (let l = level - 1; l >= 1; l--) vector.push(normalizePlatform({ os, architecture: 'amd64', variant: `v${l}` }));
      vector.push({ os, architecture: '386' });
      break;
    }
    case 'arm': {
      const v = variantNumber(n.variant);
      if (v >= 6) for (let l = v - 1; l >= 5; l--) vector.push({ os, architecture: 'arm', variant: `v${l}` });
      break;
    }
    case 'arm64': {
      // containerd: arm64/v8.x accepts v8.{x-1}…v8.1, v8; arm64/v9.x accepts v9.{x-1}…v9, then v8.{x+5}
      // (v9.0 forked from v8.5) down to v8; every arm64 then accepts 32-bit arm v8…v5.
      const m = /^v(\d+)(?:\.(\d))?$/.exec(n.variant ?? 'v8');
      let major = m ? Number(m[1]) : NaN;
      let minor = m?.[2] !== undefined ? Number(m[2]) : 0;
      const push = (maj: number, min: number): void => {
        vector.push(normalizePlatform({ os, architecture: 'arm64', variant: min === 0 ? `v${maj}` : `v${maj}.${min}` }));
      };
      if (major === 9) {
        for (let l = minor - 1; l >= 0; l--) push(9, l);
        minor = Math.min(minor + 5, 9);
        major = 8;
        push(8, minor);
      }
      if (major === 8) for (let l = minor - 1; l >= 0; l--) push(8, l);
      for (let l = 8; l >= 5; l--) vector.push({ os, architecture: 'arm', variant: `v${l}` });
      break;
    }
  }
  return vector;
}

function orderedMatcher(vector: Platform[]): PlatformMatcher {
  const rank = (p: Platform): number => {
    const n = normalizePlatform(p);
    const i = vector.findIndex((v) => samePlatform(v, n));
    return i === -1 ? Infinity : i;
  };
  return { match: (p) => rank(p) !== Infinity, rank };
}

/** Accepts `p` and the platforms it can run, ranked (containerd `platforms.Only`). */
export function onlyPlatform(p: Platform): PlatformMatcher {
  return orderedMatcher(platformVector(p));
}

/** Accepts exactly `p` after normalisation (`platforms.OnlyStrict`). */
export function onlyStrictPlatform(p: Platform): PlatformMatcher {
  return orderedMatcher([normalizePlatform(p)]);
}

/** Matches every platform, ranked by the host's (or `p`'s) compatibility vector first (docker's default matcher). */
export function anyPlatformRankedBy(p: Platform = hostPlatform()): PlatformMatcher {
  const inner = onlyPlatform(p);
  return { match: () => true, rank: (q) => { const r = inner.rank(q); return r === Infinity ? 1e6 : r; } };
}

/** Annotation BuildKit puts on attestation manifests in an index. */
export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';
export const REFERENCE_DIGEST_ANNOTATION = 'vnd.docker.reference.digest';

/** An attestation manifest (BuildKit provenance/SBOM), not a runnable image. */
export function isAttestation(desc: Pick<Descriptor, 'annotations'>): boolean {
  return desc.annotations?.[REFERENCE_TYPE_ANNOTATION] !== undefined;
}

/** `unknown/unknown` platform, as BuildKit gives attestation manifests. */
export function isUnknownPlatform(p: Platform | undefined): boolean {
  return p !== undefined && p.os === 'unknown' && p.architecture === 'unknown';
}

/**
 * Picks the manifests of an index that match, best first: attestations and `unknown/unknown` entries are
 * skipped; entries without a platform are kept (ranked last) as docker's manifest-list selection does;
 * the sort is stable so the index order breaks ties.
 */
export function selectPlatformManifests(manifests: readonly Descriptor[], matcher: PlatformMatcher, limit = Infinity): Descriptor[] {
  const kept: Array<{ d: Descriptor; rank: number; i: number }> = [];
  manifests.forEach((d, i) => {
    if (isAttestation(d) || isUnknownPlatform(d.platform)) return;
    if (d.platform === undefined) { kept.push({ d, rank: 1e9, i }); return; }
    if (matcher.match(d.platform)) kept.push({ d, rank: matcher.rank(d.platform), i });
  });
  kept.sort((a, b) => a.rank - b.rank || a.i - b.i);
  return kept.slice(0, limit).map((k) => k.d);
}
