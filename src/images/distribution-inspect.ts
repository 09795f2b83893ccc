/**
 * `GET /distribution/{name}/json` (`docker manifest inspect`'s daemon side, and what `docker pull --platform`
 * checks against): resolve a reference on its registry and report the descriptor and its platforms.
 */
import { InvalidArgumentError, isStowageError, stowageErrorOf } from '../errors/index.js';
import { parseImageConfig, parseManifest, parseNormalizedNamed, tagNameOnly, type Platform } from '../oci/index.js';
import type { ClientFactory } from './registry.js';
import type { DistributionInspect, DistributionInspectOptions } from './types.js';

function configPlatform(c: ReturnType<typeof parseImageConfig>): Platform {
  return {
    architecture: c.architecture ?? '', os: c.os ?? '',
    ...(c['os.version'] ? { 'os.version': c['os.version'] } : {}),
    ...(c['os.features'] ? { 'os.features': c['os.features'] } : {}),
    ...(c.variant ? { variant: c.variant } : {}),
  };
}

export async function inspectDistribution(clients: ClientFactory, input: string, opts: DistributionInspectOptions = {}): Promise<DistributionInspect> {
  if (/^(sha256:)?[a-f0-9]{64}$/.test(input)) throw new InvalidArgumentError('no manifest found for full image ID', { reference: input });
  let ref;
  try { ref = tagNameOnly(parseNormalizedNamed(input)); } catch (e) {
    if (isStowageError(e)) throw new InvalidArgumentError(e.message, stowageErrorOf(e)!.data, { cause: e });
    throw e;
  }
  const client = clients(ref.domain, opts.credentials ? { credentials: opts.credentials } : {});
  const signal = opts.signal ? { signal: opts.signal } : {};
  const resolved = await client.resolve(ref, signal);
  const desc = resolved.descriptor;
  const { bytes } = await client.fetchManifest(resolved.repository, desc, signal);
  const parsed = parseManifest(bytes, desc.mediaType);
  const platforms: Platform[] = [];
  if (parsed.kind === 'index') {
    for (const m of parsed.index.manifests) if (m.platform) platforms.push(m.platform);
  } else {
    const cfg = await client.fetchConfig(resolved.repository, parsed.manifest.config, signal).catch(() => undefined);
    if (cfg && cfg.config.os) platforms.push(configPlatform(cfg.config));
  }
  return { Descriptor: { mediaType: desc.mediaType, digest: desc.digest, size: desc.size }, Platforms: platforms };
}
