import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fromSystemError, isStowageError, throwIfAborted } from '../errors/index.js';
import type { Descriptor, Index } from '../oci/index.js';
import {
  INDEX_FILE, MANIFEST_FILE, OCI_LAYOUT_FILE, OCI_LAYOUT_VERSION, REPOSITORIES_FILE, blobPath,
  type DockerManifestEntry, type Repositories,
} from './layout.js';
import { tarStream } from './tar-stream.js';
import type * as TarStream from 'tar-stream';

/** One blob to write: its descriptor and how to read its bytes (opened when its turn comes). */
export interface ArchiveBlob {
  descriptor: Pick<Descriptor, 'digest' | 'size'>;
  open(): Promise<Readable>;
}

/** What a dual archive holds: the blobs, the OCI index, docker's manifest.json and repositories. */
export interface ArchivePlan {
  blobs: ArchiveBlob[];
  index: Index;
  manifest: DockerManifestEntry[];
  /** Written when any name was exported. */
  repositories?: Repositories;
}

const EPOCH = new Date(0);

/**
 * Writes the plan as one tar that reads as an OCI image layout and as a docker-archive (docker 25's
 * dual format). Blobs stream straight from `open()` into the tar, one at a time, so memory does not
 * grow with the image; every mtime is the epoch so the same images give the same bytes. Blobs come
 * first and the JSON last, so a reader that stores members as they arrive never has to look back.
 * `output` is ended once the archive is complete and left open on failure.
 */
export async function writeArchive(plan: ArchivePlan, output: Writable, opts: { signal?: AbortSignal } = {}): Promise<void> {
  const pack = tarStream().pack();
  const feeding = feed(pack, plan, opts.signal).catch((e: unknown) => { pack.destroy(e as Error); throw e; });
  feeding.catch(() => undefined);
  const onError = (e: Error) => pack.destroy(e);
  output.on('error', onError);
  try {
    for await (const chunk of pack) {
      if (!output.write(chunk)) await once(output, 'drain', opts.signal ? { signal: opts.signal } : {});
    }
    await feeding;
  } catch (e) {
    pack.destroy();
    await feeding.catch(() => undefined);
    // A full disk or a closed pipe on the output is the store's error family too (ENOSPC → ResourceExhausted).
    throw (e as NodeJS.ErrnoException).code !== undefined && !isStowageError(e) ? fromSystemError(e, 'writing the archive') : e;
  } finally {
    output.off('error', onError);
  }
  output.end();
  if (!output.writableFinished) await once(output, 'finish');
}

async function feed(pack: TarStream.Pack, plan: ArchivePlan, signal: AbortSignal | undefined): Promise<void> {
  const small = (name: string, body: string | Buffer) => new Promise<void>((resolve, reject) => {
    pack.entry({ name, mtime: EPOCH, mode: 0o644, uid: 0, gid: 0 }, typeof body === 'string' ? Buffer.from(body) : body, (e) => (e ? reject(e) : resolve()));
  });
  const dir = (name: string) => new Promise<void>((resolve, reject) => {
    pack.entry({ name, type: 'directory', mtime: EPOCH, mode: 0o755, uid: 0, gid: 0 }, (e) => (e ? reject(e) : resolve()));
  });
  await small(OCI_LAYOUT_FILE, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
  const dirs = new Set<string>();
  const written = new Set<string>();
  for (const b of plan.blobs) {
    throwIfAborted(signal);
    const name = blobPath(b.descriptor.digest);
    if (written.has(name)) continue;
    written.add(name);
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/') + '/';
      if (!dirs.has(d)) { dirs.add(d); await dir(d); }
    }
    const src = await b.open();
    const sink = pack.entry({ name, size: b.descriptor.size, mtime: EPOCH, mode: 0o444, uid: 0, gid: 0 });
    // tar-stream checks the byte count against the header: a blob that changed size fails the archive.
    await pipeline(src, sink as unknown as Writable, signal ? { signal } : {});
  }
  await small(INDEX_FILE, JSON.stringify(plan.index));
  await small(MANIFEST_FILE, JSON.stringify(plan.manifest));
  if (plan.repositories && Object.keys(plan.repositories).length > 0) await small(REPOSITORIES_FILE, JSON.stringify(plan.repositories));
  pack.finalize();
}
