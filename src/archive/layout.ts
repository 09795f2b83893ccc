import { InvalidArgumentError, ResourceExhaustedError } from '../errors/index.js';
import { parseDigest, type Descriptor, type Digest } from '../oci/index.js';

/**
 * The files of the two archive formats this floor reads and writes, and their JSON shapes:
 * - OCI image layout: `oci-layout`, `index.json`, `blobs/<alg>/<hex>`;
 * - docker-archive: `manifest.json` (one entry per image: Config, RepoTags, Layers, LayerSources)
 *   and the legacy `repositories`; old ones (docker < 1.10) keep each layer in `<id>/layer.tar`
 *   beside `<id>/json` and `<id>/VERSION`.
 * Docker 25+ writes both in one tar (the "dual" archive), and so does Stowage.
 */
export const OCI_LAYOUT_FILE = 'oci-layout';
export const INDEX_FILE = 'index.json';
export const MANIFEST_FILE = 'manifest.json';
export const REPOSITORIES_FILE = 'repositories';
export const OCI_LAYOUT_VERSION = '1.0.0';

/** containerd's annotation for the full name of an index entry, and the OCI one for its tag. */
export const IMAGE_NAME_ANNOTATION = 'io.containerd.image.name';
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/**
 * The JSON members are read whole: real ones are a few KiB (a manifest.json of hundreds of images stays
 * under 1 MiB). Past this cap the archive is refused rather than buffered.
 */
export const MAX_ARCHIVE_JSON = 8 * 1024 * 1024;

export interface DockerManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
  /** Diff ID → descriptor, for layers a registry must not be asked for (foreign / non-distributable). */
  LayerSources?: Record<string, Descriptor>;
  Parent?: string;
}

export type Repositories = Record<string, Record<string, string>>;

/** `blobs/sha256/<hex>`: where a digest lives in an OCI layout. */
export function blobPath(digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  return `blobs/${algorithm}/${hex}`;
}

/** The digest a member path names (`blobs/sha256/<hex>`), if it names one. */
export function digestOfBlobPath(p: string): Digest | undefined {
  const m = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(p);
  if (!m) return undefined;
  const d = `${m[1]}:${m[2]}` as Digest;
  try { parseDigest(d); return d; } catch { return undefined; }
}

/** Members read whole as JSON metadata rather than stored as blobs. */
export function isMetadataMember(p: string): boolean {
  return p === OCI_LAYOUT_FILE || p === INDEX_FILE || p === MANIFEST_FILE || p === REPOSITORIES_FILE
    || /^[^/]+\/(json|VERSION)$/.test(p);
}

export function parseJson(bytes: Buffer, what: string): unknown {
  if (bytes.length > MAX_ARCHIVE_JSON) {
    throw new ResourceExhaustedError(`invalid archive: ${what} is ${bytes.length} bytes, over the ${MAX_ARCHIVE_JSON}-byte limit`, { member: what, size: bytes.length });
  }
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new InvalidArgumentError(`invalid archive: ${what}: ${(e as Error).message}`, { member: what }, { cause: e });
  }
}

/** manifest.json, shape-checked (docker's messages for `null`). */
export function parseDockerManifest(bytes: Buffer): DockerManifestEntry[] {
  const v = parseJson(bytes, MANIFEST_FILE);
  if (v === null) throw new InvalidArgumentError('invalid manifest, manifest cannot be null (but can be [])', { member: MANIFEST_FILE });
  if (!Array.isArray(v)) throw new InvalidArgumentError('invalid archive: manifest.json is not a list', { member: MANIFEST_FILE });
  return v.map((e: unknown, i) => {
    const o = e as Partial<DockerManifestEntry> | null;
    const where = `manifest.json entry ${i}`;
    if (typeof o !== 'object' || o === null) throw new InvalidArgumentError(`invalid archive: ${where} is not an object`);
    if (typeof o.Config !== 'string' || o.Config === '') throw new InvalidArgumentError(`invalid archive: ${where} has no Config`);
    if (!Array.isArray(o.Layers) || !o.Layers.every((l) => typeof l === 'string')) throw new InvalidArgumentError(`invalid archive: ${where} has no Layers list`);
    if (o.RepoTags != null && (!Array.isArray(o.RepoTags) || !o.RepoTags.every((t) => typeof t === 'string'))) {
      throw new InvalidArgumentError(`invalid archive: ${where} has a bad RepoTags list`);
    }
    return { Config: o.Config, RepoTags: o.RepoTags ?? null, Layers: o.Layers, ...(o.LayerSources ? { LayerSources: o.LayerSources } : {}) };
  });
}
