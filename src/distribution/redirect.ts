import { InvalidArgumentError, UnavailableError } from '../errors/index.js';
import { MAX_REDIRECTS } from './defaults.js';
import { discard, header, redactUrl, type RegistryRequest, type RoundTripper } from './transport.js';

const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/**
 * The redirect layer: follows `Location` (for GET and HEAD unless the request says otherwise), keeping a
 * presigned query byte for byte. Each hop goes down the layers as its own request whose credential origin
 * is the registry's again, so a hop to another host (a storage bucket) travels without credentials, and
 * only the first hop may settle the registry's scheme.
 */
export function withRedirects(next: RoundTripper): RoundTripper {
  return async (req) => {
    const follow = req.followRedirects ?? (req.method === 'GET' || req.method === 'HEAD');
    let hop: RegistryRequest = req;
    for (let n = 0; ; n++) {
      const res = await next(hop);
      const loc = header(res, 'location');
      if (!follow || !loc || !REDIRECT_STATUSES.has(res.status)) return res;
      discard(res.body);
      if (n >= MAX_REDIRECTS) throw new UnavailableError(`too many redirects fetching ${redactUrl(req.url)}`, { url: redactUrl(req.url) });
      const url = new URL(loc, hop.url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`refusing redirect to ${url.protocol} URL`);
      const { settleScheme: _settle, credentialOrigin: _origin, ...rest } = req;
      hop = { ...rest, url };
    }
  };
}
