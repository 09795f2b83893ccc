/** Blobs: GET (whole, or one Range: 206/416) and HEAD by digest; DELETE is left to the store's GC. */
import { pipeline } from 'node:stream/promises';
import { Header, formatContentRange, formatUnsatisfiedRange, parseRangeRequest } from '../../distribution/index.js';
import { isDigest, type Digest } from '../../oci/index.js';
import { RegistryError } from './errors.js';
import { send, type Exchange } from './exchange.js';

export function checkDigest(value: string): Digest {
  if (!isDigest(value)) throw new RegistryError('DIGEST_INVALID', `invalid digest ${JSON.stringify(value)}`);
  return value;
}

export async function getBlob(ex: Exchange, name: string, digestParam: string): Promise<void> {
  const digest = checkDigest(digestParam);
  let size = await ex.view.blobSize(digest);
  if (size === undefined && ex.mirror) {
    // A mirror answers a GET without Range with the bytes as they arrive from upstream.
    if (ex.req.method === 'GET' && ex.req.headers.range === undefined) {
      if (await ex.mirror.streamBlob(ex, name, digest)) return;
    } else {
      size = await ex.mirror.fetchBlob(ex, name, digest, ex.req.method === 'HEAD');
    }
    size ??= await ex.view.blobSize(digest);
  }
  if (size === undefined) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} unknown to registry`, { digest });
  const common = { [Header.ContentDigest]: digest, etag: `"${digest}"`, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
  const range = parseRangeRequest(ex.req.headers.range, size);
  if (range === 'unsatisfiable') {
    throw new RegistryError('BLOB_UNKNOWN', `range ${ex.req.headers.range} is outside the ${size}-byte blob`, undefined, { status: 416, headers: { 'content-range': formatUnsatisfiedRange(size) } });
  }
  if (ex.req.method === 'HEAD') { send(ex, 200, { ...common, 'content-length': size }); return; }
  const reader = await ex.view.openBlob(digest);
  try {
    const { res } = ex;
    res.statusCode = range ? 206 : 200;
    res.setHeader(Header.ApiVersion, 'registry/2.0');
    for (const [k, v] of Object.entries(common)) res.setHeader(k, v);
    if (range) res.setHeader('content-range', formatContentRange(range, size));
    res.setHeader('content-length', range ? range.end - range.start + 1 : size);
    await pipeline(reader.stream(range ? { start: range.start, end: range.end + 1 } : {}), res).catch(() => {
      // The client went away: nothing to answer any more.
      res.destroy();
    });
  } finally {
    await reader.close();
  }
}

/** Blob deletion is refused: in a shared store, blobs go when no image names them (the store's GC). */
export function deleteBlob(_ex: Exchange, _name: string, digestParam: string): never {
  checkDigest(digestParam);
  throw new RegistryError('UNSUPPORTED', 'blob deletion is not supported: the store collects unreferenced blobs itself (stowage gc)');
}
