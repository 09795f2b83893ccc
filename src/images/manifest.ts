import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { NotFoundError, isStowageError, isNotFound } from '../errors/index.js';
import {
  MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, configPlatform, isAttestation, isLayerType, isUnknownPlatform, parseImageConfig,
  parseManifest, REFERENCE_DIGEST_ANNOTATION, isIndexType,
  type Descriptor, type Digest, type ImageConfig, type Manifest as ManifestDoc, type ParsedManifest, type Platform,
} from '../oci/index.js';
import type { ContentStore } from '../content/index.js';
import type { PlatformManifest } from './types.js';

/** What the manifest helpers need from the snapshot floor. */
export interface SnapshotSizes {
  /** Whether a committed snapshot named `chainId` exists. */
  exists(chainId: Digest): Promise<boolean>;
  /** Bytes used by that one snapshot (its own layer only). 0 when absent. */
  usage(chainId: Digest): Promise<number>;
}

/** containerd's chain IDs: chain(0) = diff(0), chain(i) = sha256(chain(i-1) + " " + diff(i)). */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}`);
  }
  return out;
}

/** Blob reads with caps, plus presence checks; a per-operation cache of parsed documents. */
export class BlobReader {
  private readonly parsed = new Map<string, Promise<ParsedManifest>>();
  private readonly configs = new Map<string, Promise<ImageConfig>>();
  private readonly present = new Map<string, Promise<number | undefined>>();

  /**
   * `pathOf`: where the local store keeps a committed blob, when it says so. Listing thousands of images
   * reads thousands of tiny manifests and configs: plain synchronous reads of those files are an order
   * of magnitude cheaper than the handle-based async path, and they are immutable once committed.
   */
  constructor(readonly content: ContentStore, private readonly pathOf?: (digest: Digest) => string) {}

  async bytes(desc: Pick<Descriptor, 'digest' | 'size'>, cap: number): Promise<Buffer> {
    if (desc.size > cap) throw new NotFoundError(`blob ${desc.digest} is too large to read (${desc.size} bytes)`);
    if (this.pathOf) {
      try {
        return fs.readFileSync(this.pathOf(desc.digest));
      } catch (e) {
        if (isNotFound(e)) throw new NotFoundError(`content ${desc.digest}: not found`, { digest: desc.digest });
        throw e;
      }
    }
    const r = await this.content.readerAt({ digest: desc.digest });
    try { return await r.readAt(0, r.size); } finally { await r.close(); }
  }

  manifest(desc: Pick<Descriptor, 'digest' | 'size' | 'mediaType'>): Promise<ParsedManifest> {
    let p = this.parsed.get(desc.digest);
    if (!p) {
      p = this.bytes(desc, MAX_MANIFEST_SIZE).then((b) => parseManifest(b, desc.mediaType));
      p.catch(() => this.parsed.delete(desc.digest));
      this.parsed.set(desc.digest, p);
    }
    return p;
  }

  config(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<ImageConfig> {
    let p = this.configs.get(desc.digest);
    if (!p) {
      p = this.bytes(desc, MAX_CONFIG_SIZE).then((b) => parseImageConfig(b));
      p.catch(() => this.configs.delete(desc.digest));
      this.configs.set(desc.digest, p);
    }
    return p;
  }

  /** Size of the blob when present, undefined otherwise. */
  sizeIfPresent(digest: Digest): Promise<number | undefined> {
    let p = this.present.get(digest);
    if (!p && this.pathOf) {
      const st = fs.statSync(this.pathOf(digest), { throwIfNoEntry: false });
      p = Promise.resolve(st?.isFile() ? st.size : undefined);
      this.present.set(digest, p);
    }
    if (!p) {
      p = this.content.info(digest).then((i: { size: number }) => i.size, (e: unknown) => {
        if (isStowageError(e, 'NotFound')) return undefined;
        throw e;
      });
      this.present.set(digest, p);
    }
    return p;
  }

  async has(digest: Digest): Promise<boolean> { return (await this.sizeIfPresent(digest)) !== undefined; }

  /** Forget cached presence (after a pull or delete changed the store). */
  invalidate(): void { this.present.clear(); }
}

/**
 * One platform manifest of an image (docker's ImageManifest): the descriptor as its parent index lists it,
 * with lazy access to the manifest, its config and its unpacked snapshots.
 */
export class PlatformManifestImpl implements PlatformManifest {
  constructor(
    readonly descriptor: Descriptor,
    private readonly blobs: BlobReader,
    private readonly snapshots: SnapshotSizes,
  ) {}

  get digest(): Digest { return this.descriptor.digest; }

  async manifestDoc(): Promise<ManifestDoc> {
    const parsed = await this.blobs.manifest(this.descriptor);
    if (parsed.kind !== 'manifest') throw new NotFoundError(`${this.descriptor.digest} is an index, not a manifest`);
    return parsed.manifest;
  }

  async present(): Promise<boolean> { return this.blobs.has(this.descriptor.digest); }

  async platform(): Promise<Platform> {
    if (this.descriptor.platform) return this.descriptor.platform;
    return configPlatform(await this.readConfig());
  }

  async contentAvailable(): Promise<boolean> {
    if (!(await this.present())) return false;
    const m = await this.manifestDoc();
    for (const d of [m.config, ...m.layers]) if (!(await this.blobs.has(d.digest))) return false;
    return true;
  }

  isAttestation(): boolean { return isAttestation(this.descriptor); }

  /** The manifest this attestation describes. */
  attestationFor(): string | undefined { return this.descriptor.annotations?.[REFERENCE_DIGEST_ANNOTATION]; }

  async isPseudoImage(): Promise<boolean> {
    if (this.isAttestation() || isUnknownPlatform(this.descriptor.platform)) return true;
    const m = await this.manifestDoc();
    return m.layers.length > 0 && !m.layers.some((l) => isLayerType(l.mediaType));
  }

  async presentContentSize(): Promise<number> {
    let total = (await this.blobs.sizeIfPresent(this.descriptor.digest)) ?? 0;
    if (total === 0) return 0;
    const m = await this.manifestDoc();
    for (const d of [m.config, ...m.layers]) total += (await this.blobs.sizeIfPresent(d.digest)) ?? 0;
    return total;
  }

  async readConfig(): Promise<ImageConfig> {
    const m = await this.manifestDoc();
    return this.blobs.config(m.config);
  }

  async chainIds(): Promise<Digest[]> {
    return chainIds((await this.readConfig()).rootfs.diff_ids);
  }

  async snapshotUsage(): Promise<number> {
    let total = 0;
    for (const id of await this.chainIdsIfReadable()) total += await this.snapshots.usage(id);
    return total;
  }

  async isUnpacked(): Promise<boolean> {
    const ids = await this.chainIdsIfReadable();
    if (ids.length === 0) return this.contentAvailable();
    return this.snapshots.exists(ids[ids.length - 1]!);
  }

  private async chainIdsIfReadable(): Promise<Digest[]> {
    try { return await this.chainIds(); } catch (e) {
      if (isStowageError(e, 'NotFound')) return [];
      throw e;
    }
  }
}

/** The platform manifests an image target reaches (index children, or the manifest itself). */
export async function platformManifests(target: Descriptor, blobs: BlobReader, snaps: SnapshotSizes): Promise<PlatformManifestImpl[]> {
  if (!isIndexType(target.mediaType)) return [new PlatformManifestImpl(target, blobs, snaps)];
  if (!(await blobs.has(target.digest))) return [];
  const parsed = await blobs.manifest(target);
  if (parsed.kind !== 'index') return [new PlatformManifestImpl(target, blobs, snaps)];
  const out: PlatformManifestImpl[] = [];
  for (const d of parsed.index.manifests) {
    if (isIndexType(d.mediaType)) {
      // Nested index: flatten (rare; docker walks them too).
      if (await blobs.has(d.digest)) out.push(...await platformManifests(d, blobs, snaps));
    } else out.push(new PlatformManifestImpl(d, blobs, snaps));
  }
  return out;
}
