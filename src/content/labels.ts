import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fromSystemError } from '../errors/index.js';
import { parseDigest, type Digest } from '../oci/index.js';
import type { LabelStore } from './types.js';

/**
 * Per-blob side records under `<root>/labels/<alg>/<hex>.json`: `{labels?, updatedAt?}`.
 *
 * `updatedAt` always lives here (the blob file's mtime is its creation time; atime is unreliable under
 * relatime/noatime). `labels` live here only when the store was opened without a LabelStore (the
 * metadata database provides one). The file exists only for blobs that were labelled or updated.
 */
export class BlobSideRecords {
  constructor(private readonly root: string) {}

  private file(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return path.join(this.root, 'labels', algorithm, `${hex}.json`);
  }

  read(digest: Digest): { labels?: Record<string, string>; updatedAt?: string } {
    try {
      return JSON.parse(readFileSync(this.file(digest), 'utf8')) as { labels?: Record<string, string>; updatedAt?: string };
    } catch {
      return {};
    }
  }

  write(digest: Digest, rec: { labels?: Record<string, string>; updatedAt?: string }): void {
    const file = this.file(digest);
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(rec));
      renameSync(tmp, file);
    } catch (e) {
      throw fromSystemError(e, `labels of ${digest}`);
    }
  }

  remove(digest: Digest): void {
    try {
      unlinkSync(this.file(digest));
    } catch {
      // none
    }
  }
}

/** The fallback LabelStore: labels kept in the side records inside the store root. */
export class DirLabelStore implements LabelStore {
  constructor(private readonly side: BlobSideRecords) {}
  get(digest: Digest): Record<string, string> {
    return { ...(this.side.read(digest).labels ?? {}) };
  }
  set(digest: Digest, labels: Record<string, string>): void {
    const rec = this.side.read(digest);
    this.side.write(digest, { ...rec, labels: { ...labels } });
  }
  update(digest: Digest, key: string, value: string): void {
    const labels = this.get(digest);
    if (value === '') delete labels[key];
    else labels[key] = value;
    this.set(digest, labels);
  }
  delete(digest: Digest): void {
    const rec = this.side.read(digest);
    delete rec.labels;
    if (rec.updatedAt === undefined) this.side.remove(digest);
    else this.side.write(digest, rec);
  }
}
