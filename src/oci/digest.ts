import { createHash, type Hash } from 'node:crypto';
import { InvalidArgumentError } from '../errors/index.js';

/** A digest string `algorithm:hex`. Only sha256 and sha512 are accepted (as the OCI spec registers). */
export type Digest = `${string}:${string}`;

const HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };
const DIGEST_RE = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

export interface ParsedDigest { algorithm: 'sha256' | 'sha512'; hex: string }

/** Parses and validates a digest; throws InvalidArgument for anything malformed or unsupported. */
export function parseDigest(value: string): ParsedDigest {
  const m = DIGEST_RE.exec(value);
  if (!m) throw new InvalidArgumentError(`invalid digest ${JSON.stringify(value)}`, { digest: value });
  const [, algorithm, hex] = m;
  const want = HEX_LENGTH[algorithm!];
  if (want === undefined) throw new InvalidArgumentError(`unsupported digest algorithm ${JSON.stringify(algorithm)}`, { digest: value });
  if (hex!.length !== want || !/^[a-f0-9]+$/.test(hex!)) {
    throw new InvalidArgumentError(`invalid ${algorithm} digest ${JSON.stringify(value)}`, { digest: value });
  }
  return { algorithm: algorithm as 'sha256' | 'sha512', hex: hex! };
}

export function isDigest(value: string): value is Digest {
  try { parseDigest(value); return true; } catch { return false; }
}

export function digestOf(data: Uint8Array | string, algorithm: 'sha256' | 'sha512' = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Hash that also counts bytes, for verifying a stream against a descriptor. */
export class Digester {
  readonly algorithm: 'sha256' | 'sha512';
  private hash: Hash;
  size = 0;
  constructor(algorithm: 'sha256' | 'sha512' = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void { this.hash.update(chunk); this.size += chunk.length; }
  /** The digest of the bytes so far; the digester stays usable. */
  digest(): Digest { return `${this.algorithm}:${this.hash.copy().digest('hex')}`; }
}

/** Digest of zero bytes, handy for empty layers and checks. */
export const EMPTY_SHA256: Digest = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
