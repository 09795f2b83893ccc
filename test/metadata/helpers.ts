import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { Digest } from '../../src/oci/index.js';

/** A private temp directory, removed by the returned cleanup. */
export function tempRoot(): { root: string; cleanup: () => void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-md-'));
  return { root, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

/** A digest that names `s` (the bytes need not exist). */
export function dg(s: string): Digest {
  return `sha256:${createHash('sha256').update(s).digest('hex')}`;
}

export const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export function target(s: string, size = 100) {
  return { mediaType: MANIFEST, digest: dg(s), size };
}
