/**
 * Real OCI images for the image-service suite, made by the image builder (src/imagebuilder) and written as
 * an OCI image layout (one image or a multi-platform index), with history (including empty_layer entries)
 * and labels. Hand-written here only what the builder must refuse to make: an image whose config names a
 * wrong diff ID (`badDiffId`); and the layout's index.json, whose ref.name may be a whole reference.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { buildImage, type FileTree, type HistoryEntry } from '../../src/imagebuilder/index.js';
import { fileTree, readImageBlob } from '../harness/images.js';

export interface GenFile {
  path: string;
  content?: string | Buffer;
  type?: 'file' | 'dir' | 'symlink';
  linkname?: string;
  mode?: number;
}

export interface GenPlatformImage {
  os?: string;
  architecture?: string;
  variant?: string;
  /** Each entry is one layer. */
  layers: GenFile[][];
  labels?: Record<string, string>;
  created?: string;
  /** Extra empty-layer history entries (inserted after the first layer). */
  emptyLayers?: number;
  env?: string[];
  cmd?: string[];
  /** A label (`test.salt`) so that otherwise-identical images differ. */
  salt?: string;
  /** Write a wrong diff_id for the last layer (a broken image the pull must refuse). */
  badDiffId?: boolean;
  /** Layer compression (default gzip). */
  compression?: 'gzip' | 'zstd' | 'none';
}

export interface GenBlob { digest: string; size: number; mediaType: string }
export interface GenManifestInfo {
  manifest: GenBlob;
  config: GenBlob;
  layers: GenBlob[];
  diffIds: string[];
  platform: { os: string; architecture: string; variant?: string };
}
export interface GenImage {
  /** OCI layout dir. */
  dir: string;
  /** Target: the index (multi-platform) or the manifest. */
  target: GenBlob;
  manifests: GenManifestInfo[];
}

/** Blob sink: a directory (OCI layout) or an in-memory map. */
type Sink = string | Map<string, Buffer>;

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The builder's file tree of a layer (through the harness's translation, whiteout names included). */
function layerTree(files: GenFile[]): FileTree {
  return fileTree(files.map((f) => {
    const type = f.type ?? (f.content === undefined ? 'dir' : 'file');
    return { path: f.path, type: type === 'dir' ? 'directory' : type, ...(f.content !== undefined ? { content: f.content } : {}), ...(f.linkname !== undefined ? { linkname: f.linkname } : {}), ...(f.mode !== undefined ? { mode: f.mode } : {}) };
  }));
}

/** One platform image, built by the image builder; its blobs go to `sink` (a layout directory or a map). */
async function writePlatformImage(sink: Sink, img: GenPlatformImage): Promise<GenManifestInfo> {
  const created = img.created ?? '2024-01-01T00:00:00Z';
  const history: HistoryEntry[] = [];
  img.layers.forEach((_, i) => {
    history.push({ created, createdBy: `/bin/sh -c #(nop) ADD layer ${i}`, comment: i === 0 ? 'base' : '' });
    if (i === 0) for (let e = 0; e < (img.emptyLayers ?? 0); e++) history.push({ created, createdBy: `/bin/sh -c #(nop) ENV E${e}=1`, emptyLayer: true });
  });
  const platform = { os: img.os ?? 'linux', architecture: img.architecture ?? 'amd64', ...(img.variant ? { variant: img.variant } : {}) };
  const built = await buildImage({
    platform,
    compression: img.compression ?? 'gzip',
    layers: img.layers.map((files) => ({ files: layerTree(files) })),
    created,
    author: 'stowage-tests',
    env: img.env ?? ['PATH=/usr/bin:/bin'],
    cmd: img.cmd ?? ['/bin/sh'],
    labels: { ...(img.labels ?? {}), ...(img.salt ? { 'test.salt': img.salt } : {}) },
    history,
  });
  const put = (data: Buffer, mediaType: string): GenBlob => {
    const digest = sha(data);
    if (typeof sink === 'string') {
      const file = path.join(sink, 'blobs', 'sha256', digest.slice(7));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, data);
    } else sink.set(digest, data);
    return { digest, size: data.length, mediaType };
  };
  const layers: GenBlob[] = [];
  for (const l of built.layers) layers.push(put(await readImageBlob(built, l), l.mediaType));
  const diffIds = [...built.config.rootfs.diff_ids];
  let configBytes = await readImageBlob(built, built.manifest.config);
  let manifestBytes = await readImageBlob(built, built.target);
  if (img.badDiffId) {
    // Deliberately broken (the builder computes the diff IDs, so it cannot make this): the config names
    // a wrong diff ID for the last layer, and the manifest points at that config.
    const config = JSON.parse(configBytes.toString()) as { rootfs: { diff_ids: string[] } };
    config.rootfs.diff_ids = [...diffIds.slice(0, -1), sha(Buffer.from('wrong'))];
    configBytes = Buffer.from(JSON.stringify(config));
    manifestBytes = Buffer.from(JSON.stringify({ ...built.manifest, config: { ...built.manifest.config, digest: sha(configBytes), size: configBytes.length } }));
  }
  const configBlob = put(configBytes, built.manifest.config.mediaType);
  const manifestBlob = put(manifestBytes, built.target.mediaType);
  return { manifest: manifestBlob, config: configBlob, layers, diffIds, platform };
}

/**
 * Writes an OCI layout with one image (one platform) or an index (several). Tag `tag` names it in
 * index.json as given (`ref.name` may be a whole reference here, which the builder's export, taking
 * `repo:tag`, does not write), so the layout files are written here.
 */
export async function writeOciLayout(dir: string, images: GenPlatformImage[], tag = 'latest', asIndex = images.length > 1): Promise<GenImage> {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const manifests: GenManifestInfo[] = [];
  for (const img of images) manifests.push(await writePlatformImage(dir, img));
  let target: GenBlob;
  if (asIndex) {
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: manifests.map((m) => ({ ...m.manifest, platform: m.platform })),
    };
    const bytes = Buffer.from(JSON.stringify(index));
    target = { digest: sha(bytes), size: bytes.length, mediaType: index.mediaType };
    fs.writeFileSync(path.join(dir, 'blobs', 'sha256', target.digest.slice(7)), bytes);
  } else {
    target = manifests[0]!.manifest;
  }
  const top = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ ...target, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  };
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(top));
  return { dir, target, manifests };
}

/** A few files for a layer, varied by `seed`. */
export function filesFor(seed: string, n = 3): GenFile[] {
  const files: GenFile[] = [{ path: `d-${seed}/` }];
  for (let i = 0; i < n; i++) files.push({ path: `d-${seed}/f${i}.txt`, content: `${seed} ${i}\n`.repeat(10 + i) });
  return files;
}

/**
 * Two single-layer images whose manifest digests (= image IDs) share their first `hexChars` hex digits:
 * varies a config salt until the birthday bound hits (about 300 tries for 4 hex digits).
 */
export async function findIdPrefixCollision(hexChars = 4): Promise<[GenPlatformImage, GenPlatformImage]> {
  const seen = new Map<string, GenPlatformImage>();
  for (let i = 0; i < 100_000; i++) {
    const img: GenPlatformImage = { layers: [[{ path: 'amb.txt', content: 'ambiguous\n' }]], salt: `s${i}` };
    const info = await writePlatformImage(new Map(), img);
    const prefix = info.manifest.digest.slice(7, 7 + hexChars);
    const other = seen.get(prefix);
    if (other) return [other, img];
    seen.set(prefix, img);
  }
  throw new Error('no collision found');
}
