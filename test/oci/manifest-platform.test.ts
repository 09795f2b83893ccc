import { describe, expect, it } from 'vitest';
import {
  MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, MediaType, anyPlatformRankedBy, digestOf, formatPlatform, hostPlatform, isAttestation,
  normalizePlatform, onlyPlatform, onlyStrictPlatform, parseImageConfig, parseManifest, parsePlatform, selectPlatformManifests,
  type Descriptor, type Platform,
} from '../../src/oci/index.js';
import { codeOfCall } from '../harness/expect.js';

const d = (s: string, mt: string = MediaType.OciLayerGzip, extra: Partial<Descriptor> = {}): Descriptor => ({ mediaType: mt, digest: digestOf(s), size: s.length, ...extra });
const cfg = d('cfg', MediaType.OciConfig);
const layer = d('layer');

describe('parseManifest', () => {
  it('parses an OCI manifest and a Docker schema 2 manifest by their declared type', () => {
    const oci = parseManifest(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: cfg, layers: [layer] }), MediaType.OciManifest);
    expect(oci.kind).toBe('manifest');
    expect(oci.mediaType).toBe(MediaType.OciManifest);
    const docker = parseManifest(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: { ...cfg, mediaType: MediaType.DockerConfig }, layers: [] }), `${MediaType.DockerManifest}; charset=utf-8`);
    expect(docker.mediaType).toBe(MediaType.DockerManifest);
  });
  it('infers the media type when it is missing (umoci) or the Content-Type is generic', () => {
    expect(parseManifest(JSON.stringify({ schemaVersion: 2, config: cfg, layers: [layer] })).mediaType).toBe(MediaType.OciManifest);
    expect(parseManifest(JSON.stringify({ schemaVersion: 2, config: { ...cfg, mediaType: MediaType.DockerConfig }, layers: [] }), 'application/json').mediaType).toBe(MediaType.DockerManifest);
    const idx = parseManifest(JSON.stringify({ schemaVersion: 2, manifests: [d('m', MediaType.OciManifest, { platform: { os: 'linux', architecture: 'amd64' } })] }), 'application/octet-stream');
    expect(idx.kind).toBe('index');
    expect(idx.mediaType).toBe(MediaType.OciIndex);
  });
  it('parses a Docker manifest list', () => {
    const p = parseManifest(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifestList, manifests: [] }));
    expect(p.kind).toBe('index');
    expect(p.mediaType).toBe(MediaType.DockerManifestList);
  });
  it('refuses schema 1 with NotImplemented, by type or by content', () => {
    expect(codeOfCall(() => parseManifest('{"schemaVersion":1,"fsLayers":[]}', MediaType.DockerManifestV1Signed))).toBe('NotImplemented');
    expect(codeOfCall(() => parseManifest('{"schemaVersion":1,"name":"x","fsLayers":[]}', 'application/json'))).toBe('NotImplemented');
  });
  it('refuses ambiguous documents (CVE-2021-41190) and mismatching mediaType', () => {
    expect(codeOfCall(() => parseManifest(JSON.stringify({ schemaVersion: 2, manifests: [], layers: [] })))).toBe('InvalidArgument');
    expect(codeOfCall(() => parseManifest(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }), MediaType.OciManifest))).toBe('InvalidArgument');
    expect(codeOfCall(() => parseManifest(JSON.stringify({ schemaVersion: 2, config: { ...cfg, digest: 'sha256:xyz' }, layers: [] })))).toBe('InvalidArgument');
    expect(codeOfCall(() => parseManifest('not json'))).toBe('InvalidArgument');
    expect(codeOfCall(() => parseManifest(JSON.stringify({ schemaVersion: 3, config: cfg, layers: [] })))).toBe('InvalidArgument');
  });
  it('caps sizes', () => {
    const big = JSON.stringify({ schemaVersion: 2, config: cfg, layers: [], annotations: { x: 'a'.repeat(MAX_MANIFEST_SIZE) } });
    expect(codeOfCall(() => parseManifest(big))).toBe('ResourceExhausted');
    const bigCfg = JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [] }, x: 'a'.repeat(MAX_CONFIG_SIZE) });
    expect(codeOfCall(() => parseImageConfig(bigCfg))).toBe('ResourceExhausted');
  });
  it('parses an image config and checks diff_ids', () => {
    const c = parseImageConfig(JSON.stringify({ os: 'linux', architecture: 'arm64', rootfs: { type: 'layers', diff_ids: [digestOf('x')] } }));
    expect(c.rootfs.diff_ids).toHaveLength(1);
    expect(codeOfCall(() => parseImageConfig(JSON.stringify({ os: 'linux', architecture: 'arm64', rootfs: { type: 'layers', diff_ids: ['nope'] } })))).toBe('InvalidArgument');
    expect(codeOfCall(() => parseImageConfig(JSON.stringify({ os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })))).toBe('InvalidArgument');
  });
});

describe('platforms', () => {
  it('parses and formats with normalisation', () => {
    expect(formatPlatform(parsePlatform('linux/arm64/v8'))).toBe('linux/arm64');
    expect(formatPlatform(parsePlatform('linux/aarch64'))).toBe('linux/arm64');
    expect(formatPlatform(parsePlatform('linux/x86_64'))).toBe('linux/amd64');
    expect(formatPlatform(parsePlatform('linux/armhf'))).toBe('linux/arm/v7');
    expect(formatPlatform(parsePlatform('linux/armel'))).toBe('linux/arm/v6');
    expect(formatPlatform(parsePlatform('linux/arm'))).toBe('linux/arm/v7');
    expect(formatPlatform(parsePlatform('linux/i386'))).toBe('linux/386');
    expect(formatPlatform(parsePlatform('linux/amd64/v1'))).toBe('linux/amd64');
    expect(formatPlatform(parsePlatform('linux/arm64/9'))).toBe('linux/arm64/v9');
    expect(formatPlatform(parsePlatform('windows/amd64'))).toBe('windows/amd64');
    expect(parsePlatform('linux').os).toBe('linux');
    expect(parsePlatform('arm64').architecture).toBe('arm64');
    expect(codeOfCall(() => parsePlatform('nope'))).toBe('InvalidArgument');
    expect(codeOfCall(() => parsePlatform('linux/amd64/v2/x'))).toBe('InvalidArgument');
    expect(codeOfCall(() => parsePlatform('linux//amd64'))).toBe('InvalidArgument');
  });
  it('host platform follows node', () => {
    const h = hostPlatform();
    expect(h.os).toBe(process.platform === 'win32' ? 'windows' : process.platform);
    expect(h.architecture).toBe({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' }[process.arch as string] ?? h.architecture);
    if (h.architecture === 'amd64') expect(['v2', 'v3', 'v4', undefined]).toContain(h.variant);
  });
  const P = (s: string): Platform => parsePlatform(s);
  it('Only(amd64/v3) ranks v3, v2, v1, 386', () => {
    const m = onlyPlatform(P('linux/amd64/v3'));
    const order = ['linux/386', 'linux/amd64', 'linux/amd64/v2', 'linux/amd64/v3', 'linux/arm64', 'linux/amd64/v4'].filter((s) => m.match(P(s)));
    expect(order.sort((a, b) => m.rank(P(a)) - m.rank(P(b)))).toEqual(['linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64', 'linux/386']);
    expect(m.match({ os: 'windows', architecture: 'amd64' })).toBe(false);
  });
  it('Only(arm/v7) falls back to v6 and v5, never v8', () => {
    const m = onlyPlatform(P('linux/arm/v7'));
    expect(['linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8', 'linux/arm64'].filter((s) => m.match(P(s)))).toEqual(['linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7']);
    expect(m.rank(P('linux/arm/v6'))).toBeLessThan(m.rank(P('linux/arm/v5')));
    expect(onlyPlatform(P('linux/arm/v6')).match(P('linux/arm'))).toBe(false); // arm without variant means v7
  });
  it('Only(arm64) accepts arm64/v8 and 32-bit arm after it', () => {
    const m = onlyPlatform(P('linux/arm64'));
    expect(m.match({ os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(true);
    expect(m.match(P('linux/arm/v7'))).toBe(true);
    expect(m.rank(P('linux/arm64'))).toBeLessThan(m.rank(P('linux/arm/v7')));
    expect(m.match(P('linux/amd64'))).toBe(false);
  });
  it('OnlyStrict refuses fallbacks; the default matcher accepts all, ranked by host', () => {
    expect(onlyStrictPlatform(P('linux/amd64/v3')).match(P('linux/amd64/v2'))).toBe(false);
    expect(onlyStrictPlatform(P('linux/arm64/v8')).match(P('linux/arm64'))).toBe(true);
    const any = anyPlatformRankedBy(P('linux/arm64'));
    expect(any.match(P('linux/s390x'))).toBe(true);
    expect(any.rank(P('linux/arm64'))).toBeLessThan(any.rank(P('linux/s390x')));
  });
  it('selects index entries: attestations and unknown/unknown skipped, best first, stable', () => {
    const m = (arch: string, variant?: string, ann?: Record<string, string>): Descriptor =>
      d(`${arch}${variant ?? ''}${JSON.stringify(ann ?? {})}`, MediaType.OciManifest, { platform: { os: 'linux', architecture: arch, ...(variant ? { variant } : {}) }, ...(ann ? { annotations: ann } : {}) });
    const att = d('att', MediaType.OciManifest, { platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': digestOf('x') } });
    const list = [att, m('arm', 'v6'), m('amd64'), m('arm', 'v7'), m('arm64', 'v8')];
    expect(isAttestation(att)).toBe(true);
    const arm7 = selectPlatformManifests(list, onlyPlatform(P('linux/arm/v7')));
    expect(arm7.map((x) => formatPlatform(normalizePlatform(x.platform!)))).toEqual(['linux/arm/v7', 'linux/arm/v6']);
    const arm64 = selectPlatformManifests(list, onlyPlatform(P('linux/arm64')), 1);
    expect(arm64.map((x) => x.platform!.architecture)).toEqual(['arm64']);
    expect(selectPlatformManifests([att], anyPlatformRankedBy())).toEqual([]);
    expect(selectPlatformManifests(list, onlyPlatform(P('linux/s390x')))).toEqual([]);
  });
});
