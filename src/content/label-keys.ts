/**
 * Every label key the store gives a meaning to, declared and explained once (containerd keeps its own
 * list in core/metadata/gc.go). They live on the content floor because it is the lowest floor all their
 * readers import: metadata's GC graph and check, snapshots' diff, distribution's pull and push, images'
 * pull, delete, commit, save and load, and the servers.
 */
import type { Descriptor, ParsedManifest } from '../oci/index.js';

// ---- garbage collection (containerd's gc labels; metadata's GC graph reads them)

/** Every GC label starts so; GC reads only these keys. */
export const GC_LABEL_PREFIX = 'containerd.io/gc.';
/** Any non-empty value makes the object a GC root (kept whatever references it). */
export const GC_ROOT = 'containerd.io/gc.root';
/** On a lease: any non-empty value keeps only what the lease names, not what those objects reference. */
export const GC_FLAT = 'containerd.io/gc.flat';
/** RFC 3339 time after which the object (an image, a lease) stops protecting anything and GC takes it. */
export const GC_EXPIRE = 'containerd.io/gc.expire';
/**
 * Forward reference: `gc.ref.content[.<anything>]` → a blob digest, `gc.ref.image[...]` → an image name,
 * `gc.ref.snapshot.<snapshotter>[/<anything>]` → a snapshot key. What the labelled object reaches stays.
 */
export const GC_REF_PREFIX = 'containerd.io/gc.ref.';
/** Back reference (`gc.bref.content`, `.image`, `.container`, `.snapshot.<sn>`): the object stays while that parent is reachable. */
export const GC_BREF_PREFIX = 'containerd.io/gc.bref.';
/** The prefix of every content reference (config, layers, child manifests). */
export const GC_REF_CONTENT = 'containerd.io/gc.ref.content';
/** On a manifest: its config blob. */
export const GC_REF_CONFIG = `${GC_REF_CONTENT}.config`;
/** On a manifest: layer `i` (the blob digest). */
export const gcRefLayer = (i: number): string => `${GC_REF_CONTENT}.l.${i}`;
/** On an index: child manifest `i` (the kept children only; a platform never pulled has none). */
export const gcRefManifest = (i: number): string => `${GC_REF_CONTENT}.m.${i}`;
/** The position `i` of a `gcRefManifest(i)` key; undefined for any other key. */
export function gcRefManifestIndex(key: string): number | undefined {
  const prefix = `${GC_REF_CONTENT}.m.`;
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  return /^\d+$/.test(rest) ? Number(rest) : undefined;
}
/** On an image config: the top snapshot (chain ID) unpacked from it in `snapshotter`. */
export const gcRefSnapshot = (snapshotter: string): string => `${GC_REF_PREFIX}snapshot.${snapshotter}`;

/**
 * containerd's child references of a manifest or index: `config` and `l.<i>` for a manifest's config
 * and layers, `m.<i>` for the children of an index that were kept (`children`).
 */
export function childGcLabels(parsed: ParsedManifest, children: readonly Pick<Descriptor, 'digest'>[]): Record<string, string> {
  const labels: Record<string, string> = {};
  if (parsed.kind === 'index') {
    children.forEach((d, i) => { labels[gcRefManifest(i)] = d.digest; });
  } else {
    labels[GC_REF_CONFIG] = parsed.manifest.config.digest;
    parsed.manifest.layers.forEach((d, i) => { labels[gcRefLayer(i)] = d.digest; });
  }
  return labels;
}

/**
 * The `m.<i>` labels that add `children` to an index's existing ones: a child already named keeps its
 * position (a pull of another platform never renumbers), new ones take the next free positions.
 */
export function addedManifestLabels(existing: Record<string, string>, children: readonly Pick<Descriptor, 'digest'>[]): Record<string, string> {
  const named = new Set<string>();
  let next = 0;
  for (const [k, v] of Object.entries(existing)) {
    const i = gcRefManifestIndex(k);
    if (i === undefined) continue;
    named.add(v);
    next = Math.max(next, i + 1);
  }
  const out: Record<string, string> = {};
  for (const d of children) {
    if (named.has(d.digest)) continue;
    named.add(d.digest);
    out[gcRefManifest(next++)] = d.digest;
  }
  return out;
}

// ---- content

/** On a compressed layer blob: the digest of its uncompressed tar (the diff ID). */
export const UNCOMPRESSED = 'containerd.io/uncompressed';
/** On a snapshot being prepared for unpacking: the chain ID it will be committed as. */
export const SNAPSHOT_REF = 'containerd.io/snapshot.ref';

// ---- distribution

/**
 * `distribution.source.<registry domain>`: the comma-separated, sorted repositories of that registry a
 * blob was pulled from (push mounts from them instead of uploading).
 */
export const DISTRIBUTION_SOURCE_PREFIX = 'containerd.io/distribution.source.';
/** The distribution.source key for a registry domain (`docker.io`, `127.0.0.1:5000`). */
export const distributionSourceKey = (domain: string): string => `${DISTRIBUTION_SOURCE_PREFIX}${domain}`;
/** containerd's cap on a distribution.source value: a longer list is left as it was. */
const MAX_SOURCE_VALUE = 4096;

/** Adds `repository` to a distribution.source value: sorted, de-duplicated, and left unchanged past 4 KiB. */
export function appendSource(existing: string | undefined, repository: string): string {
  const set = new Set((existing ?? '').split(',').filter(Boolean));
  set.add(repository);
  const v = [...set].sort().join(',');
  return v.length > MAX_SOURCE_VALUE ? (existing ?? repository) : v;
}

// ---- stowage's own

/** On a lease: what it protects, in words (`pull docker.io/library/alpine:latest`); check reports it. */
export const LEASE_PURPOSE = 'io.stowage.purpose';
/** On a working container's record: the image ID it was created from. */
export const CONTAINER_IMAGE_ID = 'io.stowage.image.id';
/** On a working container's record: the platform manifest it was created from. */
export const CONTAINER_MANIFEST = 'io.stowage.image.manifest';
/** On a working container's record: its name. */
export const CONTAINER_NAME = 'io.stowage.container.name';
/** On a working container's record: the chain ID of the image's top snapshot. */
export const CONTAINER_CHAIN = 'io.stowage.image.chain';
/** On a working container's snapshot: the container ID it belongs to. */
export const CONTAINER_SNAPSHOT = 'io.stowage.container';
/** On a manifest blob the registry server received: the digest of its `subject` (the referrers API looks it up). */
export const REGISTRY_SUBJECT = 'io.stowage.registry.subject';
/** On a manifest blob the registry server received: the Content-Type it was pushed with, when the document has no `mediaType`. */
export const REGISTRY_MEDIA_TYPE = 'io.stowage.registry.media-type';

// ---- docker's builder labels on image records (its build cache looks images up by them)

/** The parent image's ID (docker's classic builder and commit). */
export const PARENT_IMAGE = 'org.mobyproject.image.parent';
/** The container config a build step ran with (JSON, kept only when it fits a label). */
export const BUILD_CONTAINER_CONFIG = 'org.mobyproject.image.containerconfig';
/** `1` on a built image that has no parent (FROM scratch). */
export const BUILD_FROM_SCRATCH = 'org.mobyproject.image.fromscratch';
