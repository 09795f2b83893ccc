/**
 * Test images made by the image builder (src/imagebuilder): deterministic, in memory, with their blobs at
 * hand, written as OCI layouts and pushed to a registry with skopeo for interop fixtures. Written by hand
 * here, on top of what the builder made, only what the builder will not make: a manifest without its
 * `mediaType` field (as umoci writes them) and an index of BuildKit attestation manifests.
 *
 *   const img = await makeTestImage({ layers: [{ files: { 'etc/hello': 'hi\n' } }] });
 *   const dir = writeOciLayout(tmp, img, 'v1');
 *   pushWithSkopeo(dir, `docker://${reg.host}/app:v1`, { creds: reg, tag: 'v1' });
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ContentStore } from '../../src/content/index.js';
import { isStowageError } from '../../src/errors/index.js';
import { MediaType, digestOf, type Descriptor, type Digest, type Platform } from '../../src/oci/index.js';
import { buildImage, type FileTree } from '../../src/imagebuilder/index.js';
import type { ImageSource } from '../../src/images/index.js';

const execFileP = promisify(execFile);

export interface TestFile {
  path: string;
  content?: string | Buffer;
  type?: 'file' | 'directory' | 'symlink';
  linkname?: string;
  mode?: number;
}

export interface TestLayerSpec {
  /** A list of entries, or a map path → content for plain files. */
  files: TestFile[] | Record<string, string | Buffer>;
  /** Default 'gzip'. */
  compression?: 'gzip' | 'none';
}

export interface TestImageSpec {
  layers: TestLayerSpec[];
  platform?: Platform;
  /** 'oci' (default) or 'docker' (schema 2 media types). */
  format?: 'oci' | 'docker';
  /** Leave out the manifest's `mediaType` field, as umoci does. */
  omitMediaType?: boolean;
  env?: string[];
  cmd?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface TestImage {
  manifest: Descriptor;
  manifestBytes: Buffer;
  config: Descriptor;
  configBytes: Buffer;
  layers: Descriptor[];
  diffIds: Digest[];
  /** Every blob of the image by digest, manifest included. */
  blobs: Map<Digest, Buffer>;
}

export interface TestIndex {
  index: Descriptor;
  indexBytes: Buffer;
  images: TestImage[];
  blobs: Map<Digest, Buffer>;
}

const MTIME = new Date('2024-01-01T00:00:00Z');

/** A layer's entries as a builder file tree; OCI whiteout names become the builder's deletions. */
export function fileTree(files: TestLayerSpec['files']): FileTree {
  const list: TestFile[] = Array.isArray(files) ? files : Object.entries(files).map(([p, content]) => ({ path: p, content }));
  const tree: FileTree = {};
  for (const f of list) {
    const key = `/${f.path}`.replace(/\/+$/, ''); // 'etc/' and 'etc' name one directory
    const dir = path.posix.dirname(key);
    const base = path.posix.basename(key);
    if (base === '.wh..wh..opq') { tree[dir] = { ...(tree[dir] as object | undefined), type: 'dir', opaque: true }; continue; }
    if (base.startsWith('.wh.')) { tree[path.posix.join(dir, base.slice(4))] = { type: 'delete' }; continue; }
    const type = f.type ?? 'file';
    if (type === 'directory') tree[key] = { ...(tree[key] as object | undefined), type: 'dir', mode: f.mode ?? 0o755, mtime: MTIME };
    else if (type === 'symlink') tree[key] = { type: 'symlink', target: f.linkname ?? '', mtime: MTIME };
    else tree[key] = { content: f.content ?? '', mode: f.mode ?? 0o644, mtime: MTIME };
  }
  return tree;
}

/** The bytes of one blob of an image source (a built image). */
export async function readImageBlob(source: ImageSource, desc: Descriptor): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await source.open(desc)) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

/** An uncompressed layer tar of these entries, as the image builder writes it (sorted, parents first). */
export async function tarOf(files: TestLayerSpec['files']): Promise<Buffer> {
  const built = await buildImage({ platform: 'linux/amd64', compression: 'none', layers: [{ files: fileTree(files) }] });
  return readImageBlob(built, built.layers[0]!);
}

/** A real image made by the image builder (src/imagebuilder), with every blob in memory. */
export async function makeTestImage(spec: TestImageSpec): Promise<TestImage> {
  const compressions = new Set(spec.layers.map((l) => l.compression ?? 'gzip'));
  if (compressions.size > 1) throw new Error('makeTestImage: one compression for every layer');
  const platform = spec.platform ?? { os: 'linux', architecture: 'amd64' };
  const built = await buildImage({
    platform,
    format: spec.format === 'docker' ? 'docker' : 'oci',
    compression: [...compressions][0] ?? 'gzip',
    layers: spec.layers.map((l) => ({ files: fileTree(l.files) })),
    created: MTIME,
    env: spec.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    cmd: spec.cmd ?? ['/bin/sh'],
    labels: spec.labels ?? {},
    history: spec.layers.map((_, i) => ({ createdBy: `layer ${i}`, created: MTIME })),
    ...(spec.annotations ? { annotations: spec.annotations } : {}),
  });
  const blobs = new Map<Digest, Buffer>();
  for (const d of [built.manifest.config, ...built.layers]) blobs.set(d.digest, await readImageBlob(built, d));
  let manifestBytes = await readImageBlob(built, built.target);
  // Deliberately odd (umoci writes it so; the builder always names the media type): no `mediaType` field.
  if (spec.omitMediaType) {
    const { mediaType: _m, ...rest } = JSON.parse(manifestBytes.toString()) as Record<string, unknown>;
    manifestBytes = Buffer.from(JSON.stringify(rest));
  }
  const manifest: Descriptor = { mediaType: built.target.mediaType, digest: digestOf(manifestBytes), size: manifestBytes.length, platform };
  blobs.set(manifest.digest, manifestBytes);
  const config = built.manifest.config;
  return {
    manifest, manifestBytes, config, configBytes: blobs.get(config.digest)!, layers: [...built.layers],
    diffIds: [...built.config.rootfs.diff_ids] as Digest[], blobs,
  };
}

/**
 * An index over images (their manifest descriptors carry the platform); optional BuildKit-style
 * attestations. The attestation images are built by the builder; the index itself is written here: the
 * builder's buildIndex takes one image per platform and no per-manifest annotations, and attestation
 * manifests all share `unknown/unknown` and carry `vnd.docker.reference.*` annotations.
 */
export async function makeTestIndex(images: TestImage[], opts: { format?: 'oci' | 'docker'; attestations?: boolean } = {}): Promise<TestIndex> {
  const docker = opts.format === 'docker';
  const blobs = new Map<Digest, Buffer>();
  const manifests: Descriptor[] = [];
  for (const img of images) {
    for (const [d, b] of img.blobs) blobs.set(d, b);
    manifests.push(img.manifest);
  }
  if (opts.attestations) {
    for (const img of images) {
      const att = await makeTestImage({ layers: [{ files: { 'sbom.json': `{"for":"${img.manifest.digest}"}` }, compression: 'none' }], platform: { os: 'unknown', architecture: 'unknown' } });
      for (const [d, b] of att.blobs) blobs.set(d, b);
      manifests.push({
        ...att.manifest, platform: { os: 'unknown', architecture: 'unknown' },
        annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': img.manifest.digest },
      });
    }
  }
  const mediaType = docker ? MediaType.DockerManifestList : MediaType.OciIndex;
  const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests }));
  const index: Descriptor = { mediaType, digest: digestOf(indexBytes), size: indexBytes.length };
  blobs.set(index.digest, indexBytes);
  return { index, indexBytes, images, blobs };
}

/** A layer of incompressible bytes (for transfer tests where size matters). */
export async function makeRandomImage(layerSizes: number[], platform?: Platform): Promise<TestImage> {
  return makeTestImage({
    platform,
    layers: layerSizes.map((n, i) => ({ files: { [`data-${i}.bin`]: randomBytes(n) }, compression: 'none' as const })),
  });
}

/** Writes an OCI image layout (oci-layout, index.json, blobs/) holding the image or index, tagged `tag`. */
export function writeOciLayout(dir: string, image: TestImage | TestIndex, tag = 'latest'): string {
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const [d, b] of image.blobs) fs.writeFileSync(path.join(dir, 'blobs', 'sha256', d.slice('sha256:'.length)), b);
  const top = 'index' in image ? image.index : { ...image.manifest };
  const { platform: _p, ...desc } = top;
  const entry = { ...desc, annotations: { 'org.opencontainers.image.ref.name': tag } };
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [entry] }));
  return dir;
}

export interface SkopeoCreds { username: string; password: string }

export interface SkopeoPushOptions { tag?: string; creds?: SkopeoCreds; all?: boolean; format?: 'v2s2' | 'oci' }

/**
 * `skopeo copy oci:DIR:tag DEST` (DEST like `docker://127.0.0.1:5000/app:v1`), plain HTTP, digests kept.
 * The third argument is the options, or just the credentials (a Registry from startRegistry will do).
 */
export async function pushWithSkopeo(layoutDir: string, dest: string, third: SkopeoPushOptions | SkopeoCreds = {}): Promise<void> {
  const opts: SkopeoPushOptions = 'username' in third && typeof third.username === 'string' ? { creds: third as SkopeoCreds } : third as SkopeoPushOptions;
  const args = ['copy', '--quiet', '--dest-tls-verify=false'];
  if (!opts.format) args.push('--preserve-digests');
  if (opts.creds) args.push('--dest-creds', `${opts.creds.username}:${opts.creds.password}`);
  if (opts.all) args.push('--all');
  if (opts.format) args.push('--format', opts.format);
  args.push(`oci:${layoutDir}:${opts.tag ?? 'latest'}`, dest);
  await execFileP('skopeo', args, { env: { ...process.env, REGISTRY_AUTH_FILE: path.join(layoutDir, '..', '.skopeo-auth.json') } });
}

/** Runs skopeo with arguments, returning stdout (throws with stderr on failure). */
export async function skopeo(args: string[]): Promise<string> {
  const { stdout } = await execFileP('skopeo', args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/**
 * Pushes an image or index with plain HTTP requests (monolithic uploads), anonymous or with Basic
 * credentials. For fixtures skopeo cannot take from an OCI layout (Docker schema 2 media types).
 */
export async function pushRaw(registryUrl: string, repo: string, tag: string, image: TestImage | TestIndex, creds?: SkopeoCreds): Promise<void> {
  const headers: Record<string, string> = creds ? { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` } : {};
  const manifests = new Set<string>('index' in image ? [image.index.digest, ...image.images.map((i) => i.manifest.digest)] : [image.manifest.digest]);
  for (const [digest, bytes] of image.blobs) {
    if (manifests.has(digest)) continue;
    const start = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
    if (start.status !== 202) throw new Error(`upload start: ${start.status}`);
    const loc = new URL(start.headers.get('location')!, registryUrl);
    loc.searchParams.set('digest', digest);
    const put = await fetch(loc, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: bytes });
    if (put.status !== 201) throw new Error(`upload ${digest}: ${put.status} ${await put.text()}`);
  }
  const putManifest = async (ref: string, desc: Descriptor, bytes: Buffer): Promise<void> => {
    const r = await fetch(`${registryUrl}/v2/${repo}/manifests/${ref}`, { method: 'PUT', headers: { ...headers, 'content-type': desc.mediaType }, body: bytes });
    if (r.status !== 201) throw new Error(`manifest ${ref}: ${r.status} ${await r.text()}`);
  };
  if ('index' in image) {
    for (const i of image.images) await putManifest(i.manifest.digest, i.manifest, i.manifestBytes);
    await putManifest(tag, image.index, image.indexBytes);
  } else {
    await putManifest(tag, image.manifest, image.manifestBytes);
  }
}

/** Writes every blob of a test image or index into a content store (blobs already there are fine). */
export async function storeBlobs(store: ContentStore, x: TestImage | TestIndex): Promise<void> {
  for (const [digest, bytes] of x.blobs) {
    try {
      const w = await store.writer({ ref: `fill-${digest}`, desc: { digest, size: bytes.length } });
      await w.write(bytes);
      await w.commit(bytes.length, digest);
    } catch (e) { if (!isStowageError(e, 'AlreadyExists')) throw e; }
  }
}
