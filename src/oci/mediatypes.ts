import { NotImplementedError } from '../errors/index.js';

/** Media types this store understands. */
export const MediaType = {
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OciLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestV1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerManifestV1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
} as const;

export function isIndexType(mt: string | undefined): boolean {
  return mt === MediaType.OciIndex || mt === MediaType.DockerManifestList;
}
export function isManifestType(mt: string | undefined): boolean {
  return mt === MediaType.OciManifest || mt === MediaType.DockerManifest;
}
export function isConfigType(mt: string | undefined): boolean {
  return mt === MediaType.OciConfig || mt === MediaType.DockerConfig;
}
export function isLayerType(mt: string | undefined): boolean {
  return mt !== undefined && (mt.startsWith('application/vnd.oci.image.layer.') || mt.startsWith('application/vnd.docker.image.rootfs.'));
}

/** BuildKit attestation manifests carry in-toto statements as their "layers". */
export const InTotoMediaType = 'application/vnd.in-toto+json';

/** What a descriptor stands for in an image; each role has its own set of known media types. */
export type MediaTypeRole = 'index' | 'manifest' | 'config' | 'layer' | 'nondistributable-layer' | 'attestation';

/**
 * How a layer's bytes are compressed, read from its media type (containerd's DiffCompression):
 * OCI `.tar` is plain, `+gzip`/`+zstd` say it; docker's `.tar.gzip` types are gzip. Docker's plain
 * `rootfs.diff.tar` (and its foreign twin) are 'detect': some tools wrote compressed bytes under it,
 * so containerd and docker sniff those. Undefined: not a layer type this store can unpack.
 */
export type LayerCompression = 'none' | 'gzip' | 'zstd' | 'detect';

const LAYER_COMPRESSION: Record<string, LayerCompression> = {
  [MediaType.OciLayer]: 'none',
  [MediaType.OciLayerGzip]: 'gzip',
  [MediaType.OciLayerZstd]: 'zstd',
  [MediaType.OciLayerNondistributable]: 'none',
  [MediaType.OciLayerNondistributableGzip]: 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  [MediaType.DockerLayer]: 'detect',
  [MediaType.DockerLayerGzip]: 'gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar': 'detect',
  [MediaType.DockerLayerForeignGzip]: 'gzip',
};

export function layerCompression(mt: string | undefined): LayerCompression | undefined {
  return mt === undefined ? undefined : LAYER_COMPRESSION[mt];
}

/** The role a media type is known for, or undefined for a type this store does not know. */
export function mediaTypeRole(mt: string | undefined): MediaTypeRole | undefined {
  if (isIndexType(mt)) return 'index';
  if (isManifestType(mt)) return 'manifest';
  if (isConfigType(mt)) return 'config';
  if (mt === InTotoMediaType) return 'attestation';
  if (layerCompression(mt) === undefined) return undefined;
  return /nondistributable|foreign/.test(mt!) ? 'nondistributable-layer' : 'layer';
}

/**
 * Throws NotImplemented (containerd's answer, with `data.mediaType` and `data.role`) unless `mt` is a
 * known media type for one of `roles`.
 */
export function requireMediaType(mt: string | undefined, roles: readonly MediaTypeRole[], what: string): void {
  const role = mediaTypeRole(mt);
  if (role !== undefined && roles.includes(role)) return;
  throw new NotImplementedError(`${what}: unsupported media type ${JSON.stringify(mt ?? '')} for ${roles.join(' or ')}`, { mediaType: mt, role: roles.join('|') });
}
