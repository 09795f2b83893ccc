import fs from 'node:fs';
import type http from 'node:http';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, NotFoundError, UnavailableError, fromSystemError } from '../errors/index.js';
import { DEFAULT_USER_AGENT, nodeTransport, type HttpResponse } from '../distribution/index.js';
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
  const res = await download(source, signal);
  const fail = (status: string): never => {
    res.body.destroy();
    throw new (res.status === 404 ? NotFoundError : UnavailableError)(`Get "${source.href}": ${status}`, { source: source.href, status: res.status });
  };
  if (res.status === 404) fail('404 Not Found');
  // node:http only here, on a failure: the commands that load this module do not pay for it.
  if (res.status < 200 || res.status > 299) fail(`${res.status} ${(createRequire(import.meta.url)('node:http') as typeof http).STATUS_CODES[res.status] ?? ''}`.trim());
  const len = Number(res.headers['content-length'] ?? '');
  return { stream: res.body, name: source.href, ...(len > 0 ? { total: len } : {}) };
}

/** Redirects a download follows at most (as fetch does). */
const MAX_REDIRECTS = 20;

/**
 * GET `url` through the registry client's transport, following redirects. That transport, not fetch,
 * so that an https: source is trusted as a registry is (NODE_EXTRA_CA_CERTS included, which the
 * launcher defers: see defaultCaCertificates in src/distribution/transport.ts), and the body comes as
 * sent (no content decoding).
 */
async function download(url: URL, signal?: AbortSignal): Promise<HttpResponse> {
  const send = nodeTransport();
  for (let hops = 0; ; hops++) {
    let res: HttpResponse;
    try {
      res = await send({ method: 'GET', url, headers: { 'user-agent': DEFAULT_USER_AGENT }, ...(signal ? { signal } : {}) });
    } catch (e) {
      throw new UnavailableError(`Get "${url.href}": ${(e as Error).message}`, { source: url.href }, { cause: e });
    }
    const location = res.headers.location;
    if (![301, 302, 303, 307, 308].includes(res.status) || location === undefined) return res;
    res.body.resume();
    const next = new URL(location, url);
    if (hops + 1 > MAX_REDIRECTS || (next.protocol !== 'http:' && next.protocol !== 'https:')) {
      throw new UnavailableError(`Get "${url.href}": ${hops + 1 > MAX_REDIRECTS ? 'too many redirects' : `redirect to ${next.protocol} URL`}`, { source: url.href, status: res.status });
    }
    url = next;
  }
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
