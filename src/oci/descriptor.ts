import type { Digest } from './digest.js';
import { parseDigest } from './digest.js';
import { InvalidArgumentError } from '../errors/index.js';

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

/** OCI content descriptor: what a blob is, how big, and where to find it. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string;
  platform?: Platform;
  artifactType?: string;
}

/** Validates the shape of a descriptor read from untrusted JSON. */
export function validateDescriptor(value: unknown, where = 'descriptor'): Descriptor {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`${where}: not an object`);
  }
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType === '') throw new InvalidArgumentError(`${where}: missing mediaType`);
  if (typeof d.digest !== 'string') throw new InvalidArgumentError(`${where}: missing digest`);
  parseDigest(d.digest);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new InvalidArgumentError(`${where}: invalid size ${String(d.size)}`);
  }
  if (d.annotations !== undefined) {
    if (typeof d.annotations !== 'object' || d.annotations === null) throw new InvalidArgumentError(`${where}: invalid annotations`);
    for (const v of Object.values(d.annotations)) if (typeof v !== 'string') throw new InvalidArgumentError(`${where}: annotation values must be strings`);
  }
  return d as unknown as Descriptor;
}
