import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors/index.js';
import type { ImageSpec } from './build.js';
import type { FileSpec, FileTree } from './file-tree.js';

/** The shape of a random image: how many layers, files and bytes, and the seed that fixes everything else. */
export interface RandomImageShape {
  /** Same seed and shape, same image (same digests). */
  seed: number | string;
  /** Default 3. */
  layers?: number;
  /** Entries written per layer (files, links, deletions). Default 8. */
  filesPerLayer?: number;
  /** File size in bytes, or a range (default 0..4096). */
  fileSize?: number | { min: number; max: number };
  /** Share of the entries of upper layers that replace or delete a lower layer's file, 0..1 (default 0.25). */
  churn?: number;
  /** Symlinks and hard links among the entries (default true). */
  links?: boolean;
  /** Owners other than root (uid/gid 1000, 65534) on some entries (default false). */
  owners?: boolean;
  /** Default `linux/amd64` (the same digests on every machine). */
  platform?: string;
}

/** A small, fast, seeded generator (SplitMix32): the same seed gives the same sequence on every machine. */
class Random {
  private state: number;
  constructor(seed: number | string) {
    this.state = typeof seed === 'number' ? seed >>> 0 : createHash('sha256').update(seed).digest().readUInt32LE(0);
  }
  next(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number { return min + (this.next() % (max - min + 1)); }
  chance(p: number): boolean { return this.next() / 0x1_0000_0000 < p; }
  pick<T>(items: readonly T[]): T { return items[this.int(0, items.length - 1)]!; }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n + 3);
    for (let i = 0; i < n; i += 4) b.writeUInt32LE(this.next(), i);
    return b.subarray(0, n);
  }
}

const DIRS = ['/etc', '/usr/bin', '/usr/lib/app', '/var/lib/data', '/srv/www/static', '/opt/tool'];

/**
 * The spec of a random image of the given shape, for property tests: build it with `buildImage`, and
 * get the tree a checkout must produce with `mergeLayers(spec.layers)`. Upper layers overwrite and delete
 * files of lower ones (whiteouts), so unpacking is exercised, not just copying.
 */
export function randomImageSpec(shape: RandomImageShape): Omit<ImageSpec, 'layers'> & { layers: { files: FileTree }[] } {
  const layerCount = shape.layers ?? 3;
  const perLayer = shape.filesPerLayer ?? 8;
  const churn = shape.churn ?? 0.25;
  const size = typeof shape.fileSize === 'number' ? { min: shape.fileSize, max: shape.fileSize } : shape.fileSize ?? { min: 0, max: 4096 };
  if (!(layerCount >= 0 && perLayer >= 1 && size.min >= 0 && size.max >= size.min && churn >= 0 && churn <= 1)) {
    throw new InvalidArgumentError('random image: layers >= 0, filesPerLayer >= 1, 0 <= fileSize.min <= fileSize.max, 0 <= churn <= 1', { shape });
  }
  const rnd = new Random(shape.seed);
  const links = shape.links ?? true;
  // Paths present after the layers so far (files and links), in creation order.
  const existing: string[] = [];
  const layers: { files: FileTree }[] = [];
  let serial = 0;
  for (let l = 0; l < layerCount; l++) {
    const files: FileTree = {};
    const here: string[] = [];
    for (let i = 0; i < perLayer; i++) {
      const victim = l > 0 && existing.length > 0 && rnd.chance(churn) ? rnd.pick(existing) : undefined;
      if (victim !== undefined && !(victim in files)) {
        if (rnd.chance(0.5)) {
          files[victim] = { type: 'delete' };
          existing.splice(existing.indexOf(victim), 1);
        } else {
          files[victim] = { content: rnd.bytes(rnd.int(size.min, size.max)), mode: rnd.pick([0o644, 0o600, 0o755]) };
          here.push(victim);
        }
        continue;
      }
      const p = `${rnd.pick(DIRS)}/f${serial++}-${rnd.int(0, 0xffff).toString(16)}`;
      let spec: FileSpec;
      const kind = links ? rnd.int(0, 9) : 0;
      if (kind === 8 && here.length > 0) spec = { type: 'hardlink', target: rnd.pick(here) };
      else if (kind === 9) spec = { type: 'symlink', target: rnd.pick(['../etc/hostname', 'f0', '/usr/bin/missing', rnd.pick(DIRS)]) };
      else {
        const owner = shape.owners && rnd.chance(0.3) ? rnd.pick([1000, 65534]) : 0;
        spec = { content: rnd.bytes(rnd.int(size.min, size.max)), mode: rnd.pick([0o644, 0o600, 0o755, 0o640]), uid: owner, gid: owner };
        here.push(p);
      }
      files[p] = spec;
      existing.push(p);
    }
    layers.push({ files });
  }
  return { platform: shape.platform ?? 'linux/amd64', layers };
}
