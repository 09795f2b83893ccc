import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isDigest, type Digest } from '../oci/index.js';

/**
 * A chunked upload session as the registry last confirmed it, kept on disk so that a later process
 * (after a kill, a crash or a dropped connection) can continue the upload instead of restarting it.
 * The Location may carry a registry-signed state token (distribution's `_state`) or presigned query
 * parameters, so the files are private (0600 in a 0700 directory) and never hold credentials.
 */
export interface UploadState {
  version: 1;
  /** The registry API host the upload was started on (`127.0.0.1:5000`, `registry-1.docker.io`). */
  host: string;
  /** Repository path (`library/alpine`). */
  repository: string;
  digest: Digest;
  size: number;
  /** Absolute URL of the session's next request (the last Location the registry gave). */
  location: string;
  /** Bytes the registry confirmed holding (its `Range: 0-<offset-1>`). A hint: the registry is asked again. */
  offset: number;
  /** The registry's OCI-Chunk-Min-Length, if it gave one. */
  minChunk: number;
  startedAt: string;
  updatedAt: string;
}

/** Sessions older than this are not resumed: registries purge abandoned uploads, tokens in Locations expire. */
export const UPLOAD_STATE_MAX_AGE_MS = 24 * 60 * 60 * 1000;

export interface UploadStateStoreOptions {
  maxAgeMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * One small JSON file per (host, repository, digest) under a directory the caller owns (the image service
 * uses `<store root>/uploads`). Writes are atomic (temporary file + rename), so a process killed while
 * saving leaves either the old state or the new one. Saving is best effort: resume is an optimisation, and
 * a full or read-only disk must not fail a push that could otherwise succeed.
 */
export class UploadStateStore {
  readonly dir: string;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(dir: string, opts: UploadStateStoreOptions = {}) {
    this.dir = dir;
    this.maxAgeMs = opts.maxAgeMs ?? UPLOAD_STATE_MAX_AGE_MS;
    this.now = opts.now ?? Date.now;
  }

  /** The file name: sha256 of `host/repository/digest`, so no path characters leak from the inputs. */
  static key(host: string, repository: string, digest: string): string {
    return createHash('sha256').update(`${host}/${repository}/${digest}`).digest('hex');
  }

  pathOf(host: string, repository: string, digest: string): string {
    return path.join(this.dir, `${UploadStateStore.key(host, repository, digest)}.json`);
  }

  /**
   * The saved session for this blob, or undefined. A file that is unreadable, for another upload, or
   * older than the age limit is removed and reported as `discarded`.
   */
  async load(host: string, repository: string, digest: Digest, size: number): Promise<{ state?: UploadState; discarded?: 'stale' | 'mismatch' | 'corrupt' }> {
    const file = this.pathOf(host, repository, digest);
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch {
      return {};
    }
    let s: UploadState;
    try {
      s = JSON.parse(text) as UploadState;
    } catch {
      await this.removeFile(file);
      return { discarded: 'corrupt' };
    }
    if (!isValid(s)) { await this.removeFile(file); return { discarded: 'corrupt' }; }
    if (s.host !== host || s.repository !== repository || s.digest !== digest || s.size !== size || s.offset > size) {
      await this.removeFile(file);
      return { discarded: 'mismatch' };
    }
    const age = this.now() - Date.parse(s.updatedAt);
    if (!(age >= 0 && age <= this.maxAgeMs)) { await this.removeFile(file); return { discarded: 'stale' }; }
    return { state: s };
  }

  /** Records the session atomically; failures are swallowed (see the class comment). */
  async save(s: Omit<UploadState, 'version' | 'updatedAt' | 'startedAt'> & { startedAt?: string }): Promise<void> {
    const now = new Date(this.now()).toISOString();
    const full: UploadState = { version: 1, ...s, startedAt: s.startedAt ?? now, updatedAt: now };
    const file = this.pathOf(s.host, s.repository, s.digest);
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
      await fs.writeFile(tmp, JSON.stringify(full), { mode: 0o600 });
      await fs.rename(tmp, file);
    } catch {
      await fs.rm(tmp, { force: true }).catch(() => {});
    }
  }

  async remove(host: string, repository: string, digest: string): Promise<void> {
    await this.removeFile(this.pathOf(host, repository, digest));
  }

  private async removeFile(file: string): Promise<void> {
    await fs.rm(file, { force: true }).catch(() => {});
  }
}

function isValid(s: unknown): s is UploadState {
  const v = s as Partial<UploadState> | null;
  if (!v || typeof v !== 'object' || v.version !== 1) return false;
  if (typeof v.host !== 'string' || typeof v.repository !== 'string' || typeof v.digest !== 'string' || !isDigest(v.digest)) return false;
  if (!Number.isSafeInteger(v.size) || !Number.isSafeInteger(v.offset) || (v.offset ?? -1) < 0) return false;
  if (!Number.isSafeInteger(v.minChunk ?? 0) || typeof v.updatedAt !== 'string' || typeof v.startedAt !== 'string') return false;
  try {
    const u = new URL(String(v.location));
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}
