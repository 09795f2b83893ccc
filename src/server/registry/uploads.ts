/**
 * Upload sessions (POST, PATCH, PUT, GET status, DELETE) and cross-repository mounts. A session's bytes
 * go straight into its content ingest (see RepositoryView), so whatever a 202 acknowledged survives a
 * killed server, and a session is resumed after a restart by its id alone. Between requests the
 * session's writer stays open for a while (re-opening a large ingest would re-hash it).
 */
import type { Writer } from '../../content/index.js';
import { Header, formatUploadRange, parseChunkRange } from '../../distribution/index.js';
import { isStowageError } from '../../errors/index.js';
import type { RepositoryView } from '../../images/index.js';
import type { Digest } from '../../oci/index.js';
import { checkDigest } from './blobs.js';
import { RegistryError, toRegistryError } from './errors.js';
import { send, v2Path, type Exchange } from './exchange.js';

const IDLE_WRITER_MS = 30_000;

interface OpenSession { writer?: Writer; queue: Promise<unknown>; idle?: NodeJS.Timeout }

/** The open writers of this server's sessions, one operation at a time per session. */
export class Uploads {
  private readonly sessions = new Map<string, OpenSession>();
  constructor(private readonly view: RepositoryView) {}

  /** Runs `fn` with the session's writer, after every earlier operation on the same session. */
  run<T>(id: string, signal: AbortSignal, fn: (w: Writer) => Promise<T>): Promise<T> {
    let s = this.sessions.get(id);
    if (!s) { s = { queue: Promise.resolve() }; this.sessions.set(id, s); }
    const session = s;
    const next = session.queue.then(async () => {
      if (session.idle) { clearTimeout(session.idle); session.idle = undefined; }
      session.writer ??= await this.view.uploadWriter(id, signal);
      try {
        return await fn(session.writer);
      } catch (e) {
        // A store failure may leave the writer unusable: the next request opens the ingest afresh.
        if (!(e instanceof RegistryError) && session.writer) {
          await session.writer.close().catch(() => {});
          session.writer = undefined;
        }
        throw e;
      }
    });
    session.queue = next.catch(() => {}).then(() => this.park(id, session));
    return next;
  }

  /** Keeps an idle writer open for a while, then closes it (the ingest stays). */
  private park(id: string, s: OpenSession): void {
    if (this.sessions.get(id) !== s) return;
    if (!s.writer) { this.sessions.delete(id); return; }
    s.idle = setTimeout(() => { void this.release(id); }, IDLE_WRITER_MS);
    s.idle.unref();
  }

  /** Forgets the session's writer (after commit, cancel, or an error that closed it). */
  forget(id: string): void {
    const s = this.sessions.get(id);
    if (!s) return;
    if (s.idle) clearTimeout(s.idle);
    s.writer = undefined;
  }

  private async release(id: string): Promise<void> {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    if (s.idle) clearTimeout(s.idle);
    await s.queue.catch(() => {});
    await s.writer?.close().catch(() => {});
  }

  /** Closes every writer (graceful stop): their ingests stay for the next start. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.sessions.keys()].map((id) => this.release(id)));
  }
}

function sessionHeaders(name: string, id: string, received: number): Record<string, string> {
  return { location: v2Path(name, `blobs/uploads/${id}`), range: formatUploadRange(received), [Header.UploadUuid]: id };
}

/** Appends the request body to the session, checking a Content-Range against what the session holds. */
async function appendBody(ex: Exchange, name: string, id: string, writer: Writer): Promise<number> {
  const offset = writer.status().offset;
  const header = ex.req.headers['content-range'];
  const length = ex.req.headers['content-length'] !== undefined ? Number(ex.req.headers['content-length']) : undefined;
  if (header !== undefined) {
    const r = parseChunkRange(header);
    // A gap, an overlap or a repeated chunk: refused whole, nothing stored.
    if (!r || r.start !== offset || (length !== undefined && length !== r.end - r.start + 1)) {
      ex.req.resume();
      throw new RegistryError('BLOB_UPLOAD_INVALID', `Content-Range ${JSON.stringify(header)} does not continue the upload at byte ${offset}`, undefined,
        { status: 416, headers: sessionHeaders(name, id, offset) });
    }
  }
  let received = offset;
  try {
    for await (const c of ex.req) {
      await writer.write(c as Buffer);
      received += (c as Buffer).length;
    }
  } catch (e) {
    // The client dropped mid-chunk: what arrived is kept, and a status request tells where to continue.
    if (isStowageError(e)) throw e;
    throw new RegistryError('BLOB_UPLOAD_INVALID', 'the request body ended early', undefined, { status: 400 });
  }
  return received;
}

/** POST: a mount, a single-request upload (`?digest=`), or a new session. */
export async function startUpload(ex: Exchange, name: string): Promise<void> {
  const mount = ex.url.searchParams.get('mount');
  if (mount !== null) {
    const digest = checkDigest(mount);
    if (await ex.view.mount(digest, name)) {
      ex.req.resume();
      send(ex, 201, { location: v2Path(name, `blobs/${digest}`), [Header.ContentDigest]: digest });
      return;
    }
  }
  const digestParam = ex.url.searchParams.get('digest');
  const id = ex.view.startUpload();
  if (digestParam !== null && mount === null) {
    const digest = checkDigest(digestParam);
    await finish(ex, name, id, digest);
    return;
  }
  ex.req.resume();
  send(ex, 202, sessionHeaders(name, id, 0));
}

function checkSession(ex: Exchange, id: string): void {
  if (!ex.view.hasUpload(id)) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${id} unknown to registry`);
}

/** GET: where the session stands (204, `Range: 0-<last>`). */
export async function uploadStatus(ex: Exchange, name: string, id: string): Promise<void> {
  checkSession(ex, id);
  const offset = await ex.uploads.run(id, ex.signal, async (w) => w.status().offset);
  send(ex, 204, sessionHeaders(name, id, offset));
}

/** PATCH: one chunk (with Content-Range) or a stream (without), appended at the session's end. */
export async function patchUpload(ex: Exchange, name: string, id: string): Promise<void> {
  checkSession(ex, id);
  const received = await ex.uploads.run(id, ex.signal, (w) => appendBody(ex, name, id, w));
  send(ex, 202, sessionHeaders(name, id, received));
}

/** PUT `?digest=`: an optional last chunk, then the bytes are verified and committed (201). */
export async function putUpload(ex: Exchange, name: string, id: string): Promise<void> {
  checkSession(ex, id);
  const digestParam = ex.url.searchParams.get('digest');
  if (digestParam === null) throw new RegistryError('DIGEST_INVALID', 'the digest parameter is required to finish an upload');
  await finish(ex, name, id, checkDigest(digestParam));
}

async function finish(ex: Exchange, name: string, id: string, digest: Digest): Promise<void> {
  try {
    await ex.uploads.run(id, ex.signal, async (w) => {
      await appendBody(ex, name, id, w);
      ex.uploads.forget(id);
      await ex.view.finishUpload(id, w, digest, name);
    });
  } catch (e) {
    if (isStowageError(e, 'DigestMismatch') || isStowageError(e, 'SizeMismatch')) {
      throw new RegistryError('DIGEST_INVALID', `the uploaded content does not match digest ${digest}`, { digest });
    }
    throw toRegistryError(e, 'upload');
  }
  send(ex, 201, { location: v2Path(name, `blobs/${digest}`), [Header.ContentDigest]: digest });
}

/** DELETE: cancels the session (its bytes go). */
export async function cancelUpload(ex: Exchange, _name: string, id: string): Promise<void> {
  checkSession(ex, id);
  await ex.uploads.run(id, ex.signal, async (w) => {
    ex.uploads.forget(id);
    await w.close();
    await ex.view.cancelUpload(id);
  });
  send(ex, 204);
}
