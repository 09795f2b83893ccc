import fs from 'node:fs';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, NotFoundError, UnavailableError, fromSystemError } from '../errors/index.js';
import type { Digest, ImageConfig, Platform } from '../oci/index.js';
import { applyChanges } from './changes.js';
import type { Ctx } from './context.js';
import { underLease, writeImage } from './create.js';
import { storeLayerStream } from './layer-blob.js';
import { ProgressSink } from './progress.js';
import { toPlatform } from './resolve.js';
import { parseTagTarget } from './tag.js';
import type { ImportOptions } from './types.js';

/** Opens an import source: a stream as is, a `file:` URL from disk, an `http(s):` URL fetched (loopback or not, the caller's choice). */
async function openSource(source: Readable | URL, progress: ProgressSink, signal?: AbortSignal): Promise<{ stream: Readable; name: string; total?: number }> {
  if (!(source instanceof URL)) return { stream: source, name: '-' };
  if (source.protocol === 'file:') {
    const file = fileURLToPath(source);
    try {
      const fh = await fs.promises.open(file, 'r');
      const st = await fh.stat();
      return { stream: fh.createReadStream({ highWaterMark: 1 << 20 }), name: source.href, total: st.size };
    } catch (e) { throw fromSystemError(e, `open ${file}`); }
  }
  if (source.protocol !== 'http:' && source.protocol !== 'https:') {
    throw new InvalidArgumentError(`unsupported import source ${source.href}: use a file, -, or an http(s) URL`, { source: source.href });
  }
  progress.status(`Downloading from ${source.href}`);
  let res: Response;
  try {
    res = await fetch(source, { ...(signal ? { signal } : {}), redirect: 'follow' });
  } catch (e) {
    throw new UnavailableError(`Get "${source.href}": ${(e as Error).message}`, { source: source.href }, { cause: e });
  }
  if (res.status === 404) throw new NotFoundError(`Get "${source.href}": 404 Not Found`, { source: source.href, status: 404 });
  if (!res.ok || !res.body) throw new UnavailableError(`Get "${source.href}": ${res.status} ${res.statusText}`, { source: source.href, status: res.status });
  const len = Number(res.headers.get('content-length') ?? '');
  return { stream: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), name: source.href, ...(len > 0 ? { total: len } : {}) };
}

/**
 * `docker import` (as docker's containerd image store does it): the tarball as one layer (gzip/zstd kept, others stored gzip), a
 * config made of the `changes` applied to an empty container config, the platform asked for or the
 * host's, one history entry with the message. ID = the manifest digest; named when `ref` is given.
 */
export async function importImage(ctx: Ctx, source: Readable | URL, opts: ImportOptions = {}): Promise<{ id: Digest }> {
  // Everything that can be refused is refused before a byte is read.
  const container = applyChanges({}, opts.changes ?? []);
  if (opts.ref) parseTagTarget(opts.ref);
  const platform: Platform = opts.platform !== undefined ? toPlatform(opts.platform) : ctx.host;
  const progress = new ProgressSink(opts.onProgress);
  const src = await openSource(source, progress, opts.signal);
  const id = await underLease(ctx, `import ${src.name}`, async (lease) => {
    const layer = await storeLayerStream(ctx.content.withLease(lease), src.stream, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      onBytes: (n) => progress.bytes('Importing', '', n, src.total ?? 0),
    });
    const created = new Date().toISOString();
    const config: ImageConfig = {
      created,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: container,
      rootfs: { type: 'layers', diff_ids: [] },
      history: [{ created, comment: opts.message ?? `Imported from ${src.name}` }],
    };
    return writeImage(ctx, {
      config, layers: [layer], lease, event: 'import',
      ...(opts.ref ? { ref: opts.ref } : {}), ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }).finally(() => src.stream.destroy());
  progress.status(id);
  return { id };
}
