import type { Readable } from 'node:stream';
import { InvalidArgumentError, NotFoundError, throwIfAborted } from '../errors/index.js';
import type { ImageSource } from '../images/index.js';
import {
  MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, MediaType, digestOf, isIndexType, onlyPlatform, parseImageConfig, parseManifest,
  selectPlatformManifests, formatPlatform,
  type Descriptor, type Digest, type ImageConfig, type Manifest, type Platform,
} from '../oci/index.js';
import type { Compression } from '../snapshots/index.js';
import { imageConfig, platformOf, type ImageConfigSpec } from './config.js';
import { directoryEntries, type DirectoryLayerOptions } from './directory.js';
import { treeEntries, type FileTree, type LayerEntry } from './file-tree.js';
import { bufferStream, makeLayerBlob, type LayerBlob, type ManifestFormat } from './layer-blob.js';

/** One layer of a built image: files from an object literal, or the contents of a directory. */
export type LayerSpec =
  | { files: FileTree; /** History `created_by` of the layer. */ comment?: string }
  | ({ directory: string; comment?: string } & Omit<DirectoryLayerOptions, 'signal'>);

export interface ImageSpec extends ImageConfigSpec {
  /**
   * Build on another image: its layers come first and its config is the starting point. An image of a
   * store (`await store.imageSource('alpine')`) or another built image. An index is narrowed to `platform`.
   */
  base?: ImageSource;
  /** New layers, bottom to top. */
  layers?: readonly LayerSpec[];
  /** Layer compression (default gzip). */
  compression?: Compression;
  /** OCI media types (default, or the base image's kind) or Docker schema 2. */
  format?: ManifestFormat;
  /** Annotations of the manifest. */
  annotations?: Record<string, string>;
  signal?: AbortSignal;
}

/** A built image: an `ImageSource` (give it to `store.addImage`), with its documents at hand. */
export interface BuiltImage extends ImageSource {
  /** The manifest's descriptor (the image ID once added to a store). */
  readonly target: Descriptor;
  readonly manifest: Manifest;
  readonly config: ImageConfig;
  /** Every layer, base layers first. */
  readonly layers: readonly Descriptor[];
  readonly platform: Platform;
}

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

async function readAll(source: ImageSource, desc: Descriptor, cap: number, signal?: AbortSignal): Promise<Buffer> {
  if (desc.size > cap) throw new InvalidArgumentError(`${desc.digest}: ${desc.size} bytes is too large for a manifest or config`, { digest: desc.digest });
  const chunks: Buffer[] = [];
  for await (const c of await source.open(desc, signal)) chunks.push(Buffer.from(c as Uint8Array));
  const bytes = Buffer.concat(chunks);
  if (digestOf(bytes) !== desc.digest) throw new InvalidArgumentError(`base image: ${desc.digest} reads back with another digest`, { digest: desc.digest });
  return bytes;
}

/** The base image's platform manifest and config (an index is narrowed to the wanted platform). */
async function readBase(base: ImageSource, platform: Platform, signal?: AbortSignal): Promise<{ manifest: Manifest; config: ImageConfig }> {
  let desc = base.target;
  if (isIndexType(desc.mediaType)) {
    const idx = parseManifest(await readAll(base, desc, MAX_MANIFEST_SIZE, signal), desc.mediaType);
    if (idx.kind !== 'index') throw new InvalidArgumentError(`base image ${desc.digest} is not an index`);
    const [chosen] = selectPlatformManifests(idx.index.manifests, onlyPlatform(platform), 1);
    if (!chosen) throw new NotFoundError(`base image ${desc.digest} has no manifest for ${formatPlatform(platform)}`, { digest: desc.digest });
    desc = chosen;
  }
  const parsed = parseManifest(await readAll(base, desc, MAX_MANIFEST_SIZE, signal), desc.mediaType);
  if (parsed.kind !== 'manifest') throw new InvalidArgumentError(`base image ${desc.digest} is not an image manifest`);
  const config = parseImageConfig(await readAll(base, parsed.manifest.config, MAX_CONFIG_SIZE, signal));
  return { manifest: parsed.manifest, config };
}

function layerEntries(spec: LayerSpec, bottom: boolean, signal?: AbortSignal): LayerEntry[] {
  if ('files' in spec) return treeEntries(spec.files, { parents: bottom });
  if ('directory' in spec) {
    const { directory, comment: _c, ...opts } = spec;
    return directoryEntries(directory, { ...opts, ...(signal ? { signal } : {}) });
  }
  throw new InvalidArgumentError('image builder: a layer is { files: {...} } or { directory: "path" }');
}

/**
 * Builds a real OCI (or Docker schema 2) image in memory, with no daemon and no registry. The same spec
 * gives the same digests: entries are sorted, times default to the epoch, owners to root, and the
 * documents are written with a fixed key order. (Compressed layers depend on the compressor too: the
 * same Node gives the same gzip; `compression: 'none'` gives digests no compressor can change.) Layers larger than 8 MiB compressed are not kept in
 * memory: they are written again, identically, when read.
 *
 * ```ts
 * const image = await buildImage({
 *   platform: 'linux/amd64',
 *   layers: [{ files: { '/etc/hello': 'hi\n', '/bin/tool': { mode: 0o755, content: '#!/bin/sh\n' } } }],
 *   entrypoint: ['/bin/tool'],
 * });
 * await store.addImage(image, { ref: 'example.com/tool:1' });
 * ```
 */
export async function buildImage(spec: ImageSpec): Promise<BuiltImage> {
  const { signal } = spec;
  throwIfAborted(signal);
  const compression = spec.compression ?? 'gzip';
  const platform = spec.base && spec.platform === undefined ? undefined : platformOf(spec.platform);
  const base = spec.base ? await readBase(spec.base, platform ?? platformOf(undefined), signal) : undefined;
  const format = spec.format ?? (base?.manifest.mediaType === MediaType.DockerManifest ? 'docker' : 'oci');
  const layers: LayerBlob[] = [];
  for (const [i, l] of (spec.layers ?? []).entries()) {
    throwIfAborted(signal);
    const entries = layerEntries(l, i === 0 && !base, signal);
    layers.push(await makeLayerBlob(entries, { compression, format, ...(signal ? { signal } : {}) }));
  }
  const config = imageConfig(
    { ...spec, ...(platform ? { platform } : {}) },
    layers.map((l, i) => ({ diffId: l.diffId, ...(spec.layers?.[i]?.comment !== undefined ? { comment: spec.layers[i]!.comment } : {}) })),
    base?.config,
  );
  const configBytes = json(config);
  const configDesc: Descriptor = { mediaType: format === 'docker' ? MediaType.DockerConfig : MediaType.OciConfig, digest: digestOf(configBytes), size: configBytes.length };
  const allLayers = [...(base?.manifest.layers ?? []), ...layers.map((l) => l.descriptor)];
  const manifestMediaType = format === 'docker' ? MediaType.DockerManifest : MediaType.OciManifest;
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: manifestMediaType,
    config: configDesc,
    layers: allLayers,
    ...(spec.annotations ? { annotations: spec.annotations } : {}),
  };
  const manifestBytes = json(manifest);
  const target: Descriptor = { mediaType: manifestMediaType, digest: digestOf(manifestBytes), size: manifestBytes.length };

  const inMemory = new Map<Digest, Buffer>([[target.digest, manifestBytes], [configDesc.digest, configBytes]]);
  const built = new Map<Digest, LayerBlob>(layers.map((l) => [l.descriptor.digest, l]));
  const baseLayers = new Set<Digest>(base?.manifest.layers.map((l) => l.digest) ?? []);
  const baseSource = spec.base;
  return {
    target, manifest, config, layers: allLayers,
    platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) },
    async open(desc: Descriptor, sig?: AbortSignal): Promise<Readable> {
      const bytes = inMemory.get(desc.digest);
      if (bytes) return bufferStream(bytes);
      const layer = built.get(desc.digest);
      if (layer) return layer.open(sig);
      if (baseSource && baseLayers.has(desc.digest)) return baseSource.open(desc, sig);
      throw new NotFoundError(`built image ${target.digest} has no blob ${desc.digest}`, { digest: desc.digest });
    },
  };
}
