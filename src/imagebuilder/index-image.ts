import type { Readable } from 'node:stream';
import { InvalidArgumentError, NotFoundError } from '../errors/index.js';
import { MediaType, digestOf, formatPlatform, type Descriptor, type Index } from '../oci/index.js';
import type { BuiltImage } from './build.js';
import { bufferStream } from './layer-blob.js';

/** A multi-platform image: an index over built images (one per platform), itself an `ImageSource`. */
export interface BuiltIndex {
  readonly target: Descriptor;
  readonly index: Index;
  readonly images: readonly BuiltImage[];
  open(desc: Descriptor, signal?: AbortSignal): Promise<Readable>;
}

/** Puts built images under one OCI index (or Docker manifest list with `format: 'docker'`), in the order given. */
export function buildIndex(images: readonly BuiltImage[], opts: { format?: 'oci' | 'docker'; annotations?: Record<string, string> } = {}): BuiltIndex {
  if (images.length === 0) throw new InvalidArgumentError('an index needs at least one image');
  const seen = new Set<string>();
  for (const img of images) {
    const p = formatPlatform(img.platform);
    if (seen.has(p)) throw new InvalidArgumentError(`two images of the index are for ${p}`, { platform: p });
    seen.add(p);
  }
  const mediaType = opts.format === 'docker' ? MediaType.DockerManifestList : MediaType.OciIndex;
  const index: Index = {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((img) => ({ ...img.target, platform: img.platform })),
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  const target: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.length };
  return {
    target, index, images,
    async open(desc: Descriptor, signal?: AbortSignal): Promise<Readable> {
      if (desc.digest === target.digest) return bufferStream(bytes);
      for (const img of images) {
        if (desc.digest === img.target.digest || desc.digest === img.manifest.config.digest || img.layers.some((l) => l.digest === desc.digest)) return img.open(desc, signal);
      }
      throw new NotFoundError(`index ${target.digest} has no blob ${desc.digest}`, { digest: desc.digest });
    },
  };
}
