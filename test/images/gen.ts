/**
 * A small generator of real OCI images for the image-service suite: writes an OCI image layout (one
 * image or a multi-platform index) from a few file lists, with history (including empty_layer entries)
 * and labels. Layers are real gzip tars, so the registry, skopeo and umoci treat them as any image.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import tar from 'tar-stream';
import { compress as zstdCompress } from 'zstd-napi';

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
  /** Appended to the config so otherwise-identical images differ. */
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

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function tarOf(files: GenFile[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => { chunks.push(c as Buffer); });
  const done = new Promise<void>((resolve, reject) => { pack.on('end', resolve); pack.on('error', reject); });
  const mtime = new Date('2024-01-01T00:00:00Z');
  for (const f of files) {
    const type = f.type ?? (f.content === undefined ? 'dir' : 'file');
    if (type === 'file') pack.entry({ name: f.path, mode: f.mode ?? 0o644, mtime, uid: 0, gid: 0 }, f.content ?? '');
    else if (type === 'dir') pack.entry({ name: f.path, type: 'directory', mode: f.mode ?? 0o755, mtime, uid: 0, gid: 0 });
    else pack.entry({ name: f.path, type: 'symlink', linkname: f.linkname!, mode: 0o777, mtime, uid: 0, gid: 0 });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Blob sink: a directory (OCI layout) or an in-memory map. */
type Sink = string | Map<string, Buffer>;

function writeBlob(dir: Sink, data: Buffer, mediaType: string): GenBlob {
  const digest = sha(data);
  if (typeof dir === 'string') {
    const p = path.join(dir, 'blobs', 'sha256', digest.slice(7));
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data);
  } else dir.set(digest, data);
  return { digest, size: data.length, mediaType };
}

async function writePlatformImage(dir: Sink, img: GenPlatformImage): Promise<GenManifestInfo> {
  const layers: GenBlob[] = [];
  const diffIds: string[] = [];
  for (const files of img.layers) {
    const raw = await tarOf(files);
    diffIds.push(sha(raw));
    const c = img.compression ?? 'gzip';
    if (c === 'gzip') layers.push(writeBlob(dir, zlib.gzipSync(raw, { level: 1 }), 'application/vnd.oci.image.layer.v1.tar+gzip'));
    else if (c === 'zstd') layers.push(writeBlob(dir, zstdCompress(raw), 'application/vnd.oci.image.layer.v1.tar+zstd'));
    else layers.push(writeBlob(dir, raw, 'application/vnd.oci.image.layer.v1.tar'));
  }
  const created = img.created ?? '2024-01-01T00:00:00Z';
  const history: Array<Record<string, unknown>> = [];
  img.layers.forEach((_, i) => {
    history.push({ created, created_by: `/bin/sh -c #(nop) ADD layer ${i}`, comment: i === 0 ? 'base' : '' });
    if (i === 0) for (let e = 0; e < (img.emptyLayers ?? 0); e++) {
      history.push({ created, created_by: `/bin/sh -c #(nop) ENV E${e}=1`, empty_layer: true });
    }
  });
  const platform = { os: img.os ?? 'linux', architecture: img.architecture ?? 'amd64', ...(img.variant ? { variant: img.variant } : {}) };
  const config = {
    created,
    author: 'stowage-tests',
    ...platform,
    config: { Env: img.env ?? ['PATH=/usr/bin:/bin'], Cmd: img.cmd ?? ['/bin/sh'], Labels: img.labels ?? {} },
    rootfs: { type: 'layers', diff_ids: img.badDiffId ? [...diffIds.slice(0, -1), sha(Buffer.from('wrong'))] : diffIds },
    history,
    ...(img.salt ? { 'stowage.salt': img.salt } : {}),
  };
  const configBlob = writeBlob(dir, Buffer.from(JSON.stringify(config)), 'application/vnd.oci.image.config.v1+json');
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: configBlob,
    layers,
  };
  const manifestBlob = writeBlob(dir, Buffer.from(JSON.stringify(manifest)), manifest.mediaType);
  return { manifest: manifestBlob, config: configBlob, layers, diffIds, platform };
}

/** Writes an OCI layout with one image (one platform) or an index (several). Tag `tag` names it in index.json. */
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
    target = writeBlob(dir, Buffer.from(JSON.stringify(index)), index.mediaType);
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
