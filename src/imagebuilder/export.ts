import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { AlreadyExistsError, DigestMismatchError, InvalidArgumentError, fromSystemError, throwIfAborted, isNotFound } from '../errors/index.js';
import { IMAGE_NAME_ANNOTATION, INDEX_FILE, OCI_LAYOUT_FILE, OCI_LAYOUT_VERSION, REF_NAME_ANNOTATION, blobPath } from '../archive/index.js';
import { openStowage, type ImageSource } from '../images/index.js';
import {
  Digester, MAX_MANIFEST_SIZE, MediaType, isIndexType, parseManifest, parseNormalizedNamed, referenceString, tagNameOnly,
  type Descriptor, type Index,
} from '../oci/index.js';

export interface ExportOptions {
  /** The name written into the output (`repo:tag`, `latest` by default); unnamed without it. */
  ref?: string;
  signal?: AbortSignal;
}

/**
 * Writes an image as one tar that is both an OCI image layout and a docker-archive (what `docker save`
 * writes and `docker load`, `skopeo`, `podman load` and `stowage load` read). The archive is made by
 * the store's own `save`, through a temporary store, so there is one writer of the format.
 */
export async function writeImageArchive(image: ImageSource, output: Writable, opts: ExportOptions = {}): Promise<void> {
  const signal = opts.signal ? { signal: opts.signal } : {};
  const store = await openStowage({ temporary: true });
  try {
    const { id, ref } = await store.addImage(image, { ...(opts.ref !== undefined ? { ref: opts.ref } : {}), ...signal });
    await store.save([ref ?? id], output, signal);
  } finally {
    await store.close();
  }
}

/** Every blob of an image: the target, the manifests of an index, their configs and layers. */
async function blobsOf(image: ImageSource, signal?: AbortSignal): Promise<Descriptor[]> {
  const out: Descriptor[] = [image.target];
  const read = async (d: Descriptor): Promise<Buffer> => {
    if (d.size > MAX_MANIFEST_SIZE) throw new InvalidArgumentError(`${d.digest} is too large for a manifest`, { digest: d.digest });
    const chunks: Buffer[] = [];
    for await (const c of await image.open(d, signal)) chunks.push(Buffer.from(c as Uint8Array));
    return Buffer.concat(chunks);
  };
  const manifests = isIndexType(image.target.mediaType) ? await (async () => {
    const p = parseManifest(await read(image.target), image.target.mediaType);
    if (p.kind !== 'index') throw new InvalidArgumentError(`${image.target.digest} is not an index`);
    out.push(...p.index.manifests);
    return p.index.manifests;
  })() : [image.target];
  for (const m of manifests) {
    const p = parseManifest(await read(m), m.mediaType);
    if (p.kind !== 'manifest') throw new InvalidArgumentError(`${m.digest}: nested indexes are not supported`);
    out.push(p.manifest.config, ...p.manifest.layers);
  }
  return out;
}

/** Streams one blob into the layout: a temporary name first, renamed once its digest checks out. */
async function writeBlobFile(dir: string, image: ImageSource, desc: Descriptor, signal?: AbortSignal): Promise<void> {
  const file = path.join(dir, blobPath(desc.digest));
  if (fs.existsSync(file)) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.partial`;
  const digester = new Digester();
  const fh = await fs.promises.open(tmp, 'w', 0o644);
  try {
    for await (const c of await image.open(desc, signal)) {
      const chunk = c as Uint8Array;
      digester.update(chunk);
      await fh.write(chunk);
    }
  } finally {
    await fh.close();
  }
  if (digester.digest() !== desc.digest || digester.size !== desc.size) {
    fs.rmSync(tmp, { force: true });
    throw new DigestMismatchError(`blob ${desc.digest} was written as ${digester.digest()} (${digester.size} bytes)`, { digest: desc.digest });
  }
  fs.renameSync(tmp, file);
}

/**
 * Writes an image as an OCI image layout directory (`oci-layout`, `index.json`, `blobs/`), as skopeo's
 * `oci:DIR:TAG` and umoci read it. `dir` must be absent or empty. Every blob is verified as it is written.
 */
export async function writeOciLayout(image: ImageSource, dir: string, opts: ExportOptions = {}): Promise<void> {
  const { signal } = opts;
  let entries: string[] = [];
  try { entries = fs.readdirSync(dir); } catch (e) { if (!isNotFound(e)) throw fromSystemError(e, dir); }
  if (entries.length > 0) throw new AlreadyExistsError(`${dir} is not empty`, { path: dir });
  try { fs.mkdirSync(dir, { recursive: true }); } catch (e) { throw fromSystemError(e, dir); }
  const seen = new Set<string>();
  for (const d of await blobsOf(image, signal)) {
    throwIfAborted(signal);
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    await writeBlobFile(dir, image, d, signal);
  }
  const named = opts.ref !== undefined ? tagNameOnly(parseNormalizedNamed(opts.ref)) : undefined;
  const { platform: _p, ...top } = image.target;
  const entry: Descriptor = named
    ? { ...top, annotations: { ...(top.annotations ?? {}), [IMAGE_NAME_ANNOTATION]: referenceString(named), [REF_NAME_ANNOTATION]: named.tag! } }
    : top;
  const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [entry] };
  fs.writeFileSync(path.join(dir, OCI_LAYOUT_FILE), JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
  fs.writeFileSync(path.join(dir, INDEX_FILE), JSON.stringify(index));
}
