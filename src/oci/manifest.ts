import { InvalidArgumentError, NotImplementedError, ResourceExhaustedError } from '../errors/index.js';
import { validateDescriptor, type Descriptor, type Platform } from './descriptor.js';
import type { Digest } from './digest.js';
import { parseDigest } from './digest.js';
import { MediaType, isIndexType, isManifestType } from './mediatypes.js';

/**
 * Manifests, indexes and image configs read from untrusted bytes: size-capped, shape-checked, and the
 * media type settled from the document itself when the Content-Type or descriptor does not say.
 */

/** Registries must accept manifests of at least 4 MiB (distribution-spec); containerd refuses larger. */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;
/**
 * Image configs carry the history and the env/labels; real ones are a few KiB, the largest seen in the
 * wild (thousands of history entries) stay under 1–2 MiB. 8 MiB leaves room while still refusing a
 * hostile descriptor that would make us buffer gigabytes of JSON (containerd's ReadBlob has no cap).
 */
export const MAX_CONFIG_SIZE = 8 * 1024 * 1024;

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  config?: {
    User?: string;
    ExposedPorts?: Record<string, object>;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Volumes?: Record<string, object>;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
    ArgsEscaped?: boolean;
    Healthcheck?: unknown;
    OnBuild?: string[] | null;
    Shell?: string[];
    [k: string]: unknown;
  };
  rootfs: { type: string; diff_ids: Digest[] };
  history?: Array<{ created?: string; created_by?: string; author?: string; comment?: string; empty_layer?: boolean }>;
  [k: string]: unknown;
}

export type ParsedManifest =
  | { kind: 'manifest'; mediaType: string; manifest: Manifest }
  | { kind: 'index'; mediaType: string; index: Index };

/** Content-Types that say nothing about which manifest kind the body is. */
const GENERIC_TYPES = new Set(['', 'application/json', 'application/octet-stream', 'text/plain', 'binary/octet-stream']);

/** Strips parameters (`; charset=utf-8`) and case from a Content-Type. */
export function baseMediaType(contentType: string | undefined | null): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function isSchema1(mt: string): boolean {
  return mt === MediaType.DockerManifestV1 || mt === MediaType.DockerManifestV1Signed;
}

function schema1Error(): NotImplementedError {
  return new NotImplementedError(
    'Docker Image manifest schema version 1 is not supported (deprecated by Docker in 2019); push the image again with a current client',
    { mediaType: MediaType.DockerManifestV1Signed },
  );
}

function parseJSON(bytes: Uint8Array | string, what: string, cap: number): Record<string, unknown> {
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength;
  if (size > cap) throw new ResourceExhaustedError(`${what} is ${size} bytes, over the ${cap}-byte limit`, { size, limit: cap });
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw new InvalidArgumentError(`${what}: invalid JSON: ${(e as Error).message}`, {}, { cause: e });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidArgumentError(`${what}: not a JSON object`);
  return value as Record<string, unknown>;
}

/** Guesses the kind from the document when no media type says it (umoci omits `mediaType`). */
export function inferManifestMediaType(doc: Record<string, unknown>): string {
  if (doc.schemaVersion === 1 || 'fsLayers' in doc || 'signatures' in doc) throw schema1Error();
  if (typeof doc.mediaType === 'string' && doc.mediaType !== '') return doc.mediaType;
  if (Array.isArray(doc.manifests)) return MediaType.OciIndex;
  if (doc.config !== undefined || Array.isArray(doc.layers)) {
    const cfg = doc.config as { mediaType?: unknown } | undefined;
    return cfg?.mediaType === MediaType.DockerConfig ? MediaType.DockerManifest : MediaType.OciManifest;
  }
  throw new InvalidArgumentError('document is neither an image manifest nor an index');
}

function validateDescriptors(v: unknown, where: string): Descriptor[] {
  if (!Array.isArray(v)) throw new InvalidArgumentError(`${where}: must be an array`);
  return v.map((d, i) => validateDescriptor(d, `${where}[${i}]`));
}

/**
 * Parses and validates a manifest or index. `mediaType` is what the transport said (Content-Type or the
 * parent descriptor); generic values are ignored and the kind is inferred. Refuses schema 1, documents
 * that could be read as both manifest and index (CVE-2021-41190), and a `mediaType` field that disagrees
 * with the declared type.
 */
export function parseManifest(bytes: Uint8Array | string, mediaType?: string): ParsedManifest {
  const declared = baseMediaType(mediaType);
  if (isSchema1(declared)) throw schema1Error();
  const doc = parseJSON(bytes, 'manifest', MAX_MANIFEST_SIZE);
  const inferred = inferManifestMediaType(doc);
  if (isSchema1(inferred)) throw schema1Error();
  let mt = inferred;
  if (!GENERIC_TYPES.has(declared)) {
    if (typeof doc.mediaType === 'string' && doc.mediaType !== '' && doc.mediaType !== declared) {
      throw new InvalidArgumentError(`manifest mediaType ${JSON.stringify(doc.mediaType)} does not match the declared ${JSON.stringify(declared)}`, { mediaType: declared });
    }
    mt = declared;
  }
  if (doc.schemaVersion !== 2) throw new InvalidArgumentError(`unsupported manifest schemaVersion ${JSON.stringify(doc.schemaVersion)}`);
  const hasManifests = doc.manifests !== undefined;
  const hasImageFields = doc.layers !== undefined || doc.config !== undefined;
  if (hasManifests && hasImageFields) {
    throw new InvalidArgumentError('ambiguous document: has both "manifests" and "layers"/"config" (CVE-2021-41190)');
  }
  if (doc.annotations !== undefined) validateAnnotations(doc.annotations, 'manifest annotations');
  if (doc.subject !== undefined) validateDescriptor(doc.subject, 'subject');

  if (isIndexType(mt)) {
    if (hasImageFields) throw new InvalidArgumentError(`${mt} has "layers" or "config"`);
    const manifests = validateDescriptors(doc.manifests, 'manifests');
    for (const m of manifests) if (m.platform !== undefined) validatePlatform(m.platform, `platform of ${m.digest}`);
    return { kind: 'index', mediaType: mt, index: doc as unknown as Index };
  }
  if (isManifestType(mt)) {
    if (hasManifests) throw new InvalidArgumentError(`${mt} has "manifests"`);
    validateDescriptor(doc.config, 'config');
    validateDescriptors(doc.layers, 'layers');
    return { kind: 'manifest', mediaType: mt, manifest: doc as unknown as Manifest };
  }
  throw new InvalidArgumentError(`unsupported manifest media type ${JSON.stringify(mt)}`, { mediaType: mt });
}

function validateAnnotations(v: unknown, where: string): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError(`${where}: not an object`);
  for (const x of Object.values(v)) if (typeof x !== 'string') throw new InvalidArgumentError(`${where}: values must be strings`);
}

function validatePlatform(v: unknown, where: string): Platform {
  if (typeof v !== 'object' || v === null) throw new InvalidArgumentError(`${where}: not an object`);
  const p = v as Record<string, unknown>;
  if (typeof p.os !== 'string' || typeof p.architecture !== 'string') throw new InvalidArgumentError(`${where}: os and architecture must be strings`);
  if (p.variant !== undefined && typeof p.variant !== 'string') throw new InvalidArgumentError(`${where}: variant must be a string`);
  return p as unknown as Platform;
}

/** Parses an image config (OCI or Docker), capped at MAX_CONFIG_SIZE. */
export function parseImageConfig(bytes: Uint8Array | string): ImageConfig {
  const doc = parseJSON(bytes, 'image config', MAX_CONFIG_SIZE);
  if (typeof doc.architecture !== 'string' || typeof doc.os !== 'string') {
    throw new InvalidArgumentError('image config: architecture and os must be strings');
  }
  const rootfs = doc.rootfs as { type?: unknown; diff_ids?: unknown } | undefined;
  if (typeof rootfs !== 'object' || rootfs === null || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) {
    throw new InvalidArgumentError('image config: rootfs must be {type: "layers", diff_ids: [...]}');
  }
  for (const d of rootfs.diff_ids) {
    if (typeof d !== 'string') throw new InvalidArgumentError('image config: diff_ids must be digests');
    parseDigest(d);
  }
  if (doc.history !== undefined && !Array.isArray(doc.history)) throw new InvalidArgumentError('image config: history must be an array');
  return doc as unknown as ImageConfig;
}

/** The platform an image config describes. */
export function configPlatform(c: ImageConfig): Platform {
  const p: Platform = { os: c.os, architecture: c.architecture };
  if (c.variant) p.variant = c.variant;
  if (c['os.version']) p['os.version'] = c['os.version'];
  if (c['os.features']) p['os.features'] = c['os.features'];
  return p;
}

/** The children a manifest or index points at (index: manifests; manifest: config then layers). */
export function manifestChildren(parsed: ParsedManifest): Descriptor[] {
  return parsed.kind === 'index' ? [...parsed.index.manifests] : [parsed.manifest.config, ...parsed.manifest.layers];
}

/** Media types a registry client should ask for, best first (schema 1 deliberately absent). */
export const MANIFEST_ACCEPT = [
  MediaType.OciIndex,
  MediaType.OciManifest,
  MediaType.DockerManifestList,
  MediaType.DockerManifest,
] as const;

export function isManifestOrIndexType(mt: string | undefined): boolean {
  return isIndexType(mt) || isManifestType(mt);
}
