/**
 * ImageAttestations (API 1.55, C8D): the in-toto statements BuildKit stores next to a platform manifest,
 * as attestation manifests of the image's index (`vnd.docker.reference.type: attestation-manifest`,
 * `vnd.docker.reference.digest` naming the platform manifest), one statement per layer.
 */
import { InvalidArgumentError } from '../errors/index.js';
import { MAX_CONFIG_SIZE, type Digest } from '../oci/index.js';
import type { Ctx } from './context.js';
import { platformManifests } from './manifest.js';
import { bestManifest, matcherFor, platformMissing, resolveRecord, toPlatform } from './resolve.js';
import type { PlatformSpec } from './types.js';

export const IN_TOTO_MEDIA_TYPE = 'application/vnd.in-toto+json';
const PREDICATE_ANNOTATION = 'in-toto.io/predicate-type';

export interface AttestationOptions {
  /** The platform whose attestations are wanted (default: the image's best platform). */
  platform?: PlatformSpec;
  /** Only statements of these predicate types (all when empty). */
  predicateTypes?: string[];
  /** Include each statement's JSON. */
  includeStatement?: boolean;
}

export interface Attestation {
  PredicateType: string;
  /** The statement blob. */
  Digest: Digest;
  Size: number;
  Statement?: unknown;
}

export async function imageAttestations(ctx: Ctx, ref: string, opts: AttestationOptions = {}): Promise<Attestation[]> {
  const platform = opts.platform !== undefined ? toPlatform(opts.platform) : undefined;
  const { record } = resolveRecord(ctx, ref);
  const blobs = ctx.blobs();
  const chosen = await bestManifest(ctx, blobs, record.target, matcherFor(ctx, platform), false);
  if (!chosen) throw platformMissing(ref, platform);
  const out: Attestation[] = [];
  for (const m of await platformManifests(record.target, blobs, ctx.sizes)) {
    if (!m.isAttestation() || m.attestationFor() !== chosen.digest || !(await m.present())) continue;
    for (const l of (await m.manifestDoc()).layers) {
      if (l.mediaType !== IN_TOTO_MEDIA_TYPE) continue;
      let predicateType = l.annotations?.[PREDICATE_ANNOTATION];
      let statement: unknown;
      if (opts.includeStatement || predicateType === undefined) {
        if (!(await blobs.has(l.digest))) continue; // an attestation pulled without its blobs
        const text = (await blobs.bytes(l, MAX_CONFIG_SIZE)).toString('utf8');
        try { statement = JSON.parse(text); } catch (e) {
          throw new InvalidArgumentError(`attestation ${l.digest} is not JSON: ${(e as Error).message}`, { digest: l.digest });
        }
        predicateType ??= String((statement as { predicateType?: unknown }).predicateType ?? '');
      }
      if (opts.predicateTypes && opts.predicateTypes.length > 0 && !opts.predicateTypes.includes(predicateType)) continue;
      out.push({ PredicateType: predicateType, Digest: l.digest, Size: l.size, ...(opts.includeStatement ? { Statement: statement } : {}) });
    }
  }
  return out;
}
