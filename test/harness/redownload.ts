/**
 * Measures what a resumed pull fetched again although the store already held it: before the re-run,
 * `heldBytes` reads how much of each blob the store has (the whole blob once committed, else the bytes
 * its ingest has on disk); after it, `refetchedBytes` compares each blob GET's Range start with that.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ProxyRecord } from './proxy.js';
import type { TestImage } from './images.js';

/** Bytes of the image's config and layers the store at `root` holds, by digest. */
export function heldBytes(root: string, img: TestImage): Map<string, number> {
  return new Map([img.config, ...img.layers].map((d) => {
    if (fs.existsSync(path.join(root, 'blobs', 'sha256', d.digest.slice('sha256:'.length)))) return [d.digest, d.size];
    // Pull's ingest refs are `<kind>-<digest>`; the content store names an ingest dir by the ref's sha256.
    const ref = `${d === img.config ? 'config' : 'layer'}-${d.digest}`;
    const data = path.join(root, 'ingest', createHash('sha256').update(ref).digest('hex'), 'data');
    return [d.digest, fs.existsSync(data) ? fs.statSync(data).size : 0];
  }));
}

/** Bytes of blob GETs in `requests` that fall below what `held` says the store already had. */
export function refetchedBytes(requests: ProxyRecord[], held: Map<string, number>): number {
  return requests.reduce((n, r) => {
    const m = /\/blobs\/(sha256:[0-9a-f]{64})/.exec(r.path);
    if (r.method !== 'GET' || !m || r.bytesSent === 0) return n;
    const start = Number(/^bytes=(\d+)-/.exec(r.range ?? '')?.[1] ?? 0);
    return n + Math.min(r.bytesSent, Math.max(0, (held.get(m[1]!) ?? 0) - start));
  }, 0);
}
