// Real-file helpers for GC tests: the real content store, and a snapshot-directory backend
// (directories `<root>/snapshots/<snapshotter>/<id>`, as the snapshots floor lays them out by record id).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { openContentStore, type ContentStore } from '../../src/content/index.js';
import { isStowageError } from '../../src/errors/index.js';
import { labelStoreFor, type GcSnapshotBackend, type Metadata } from '../../src/metadata/index.js';
import { digestOf, type Digest } from '../../src/oci/index.js';

export async function contentFor(md: Metadata): Promise<ContentStore> {
  return openContentStore(path.join(md.root, 'content'), { labels: labelStoreFor(md) });
}

/** Writes bytes as a committed blob; optionally records it (under a lease) with labels. */
export async function putBlob(cs: ContentStore, data: string | Buffer, ref = `put-${Math.random().toString(36).slice(2)}`): Promise<{ digest: Digest; size: number }> {
  const buf = Buffer.from(data);
  const digest = digestOf(buf);
  const w = await cs.writer({ ref });
  await w.write(buf);
  try { await w.commit(buf.length, digest); } catch (e) { if (!isStowageError(e, 'AlreadyExists')) throw e; }
  return { digest, size: buf.length };
}

export function blobPath(md: Metadata, d: Digest): string {
  return path.join(md.root, 'content', 'blobs', 'sha256', d.slice('sha256:'.length));
}

export function exists(p: string): boolean { return fs.existsSync(p); }

/** Makes a file look old (for grace periods). */
export function age(p: string, ms: number): void {
  const t = new Date(Date.now() - ms);
  fs.utimesSync(p, t, t);
}

export class DirSnapshots implements GcSnapshotBackend {
  constructor(readonly root: string) {}
  dir(sn: string, id: number): string { return path.join(this.root, 'snapshots', sn, String(id)); }
  make(sn: string, id: number): void { fs.mkdirSync(this.dir(sn, id), { recursive: true }); fs.writeFileSync(path.join(this.dir(sn, id), 'f'), 'x'); }
  snapshotters(): string[] {
    try { return fs.readdirSync(path.join(this.root, 'snapshots')); } catch { return []; }
  }
  async listDirectories(sn: string): Promise<number[]> {
    const names = await fsp.readdir(path.join(this.root, 'snapshots', sn)).catch(() => [] as string[]);
    return names.filter((n) => /^\d+$/.test(n)).map(Number);
  }
  async removeDirectory(sn: string, id: number): Promise<void> {
    await fsp.rm(this.dir(sn, id), { recursive: true, force: true });
  }
}
