import { InvalidArgumentError, NotFoundError, isStowageError, stowageErrorOf } from '../errors/index.js';
import type { ImageRecord } from '../metadata/index.js';
import {
  anyPlatformRankedBy, formatPlatform, normalizePlatform, onlyPlatform, onlyStrictPlatform, parseAnyReference,
  parsePlatform, repositoryName, tagNameOnly, referenceString,
  type Platform, type PlatformMatcher, type Reference,
} from '../oci/index.js';
import type { Ctx } from './context.js';
import type { BlobReader } from './manifest.js';
import { platformManifests, type PlatformManifestImpl } from './manifest.js';
import { idPrefixOf, isDanglingRecord, missingImageName, repositoryOf } from './names.js';
import type { PlatformSpec } from './types.js';

/** The outcome of resolving a user's `refOrID` (an ID, ID prefix, name or digest reference), as docker does. */
export interface Resolved {
  /** The record chosen. */
  record: ImageRecord;
  /** Every record sharing the chosen target (dangling one included). */
  all: ImageRecord[];
  /** The parsed input (a digest-only reference for bare IDs). */
  ref: Reference;
  /** True when the input named the image by ID, ID prefix or bare digest, not by a repository. */
  byId: boolean;
}

function parseInput(input: string): Reference {
  try {
    return parseAnyReference(input);
  } catch (e) {
    if (isStowageError(e)) throw new InvalidArgumentError(e.message, { ...stowageErrorOf(e)!.data, reference: input }, { cause: e });
    throw e;
  }
}

export function noSuchImage(input: string): NotFoundError {
  return new NotFoundError(`No such image: ${missingImageName(input)}`, { reference: input });
}

/** Resolves a reference, digest, full ID or ID prefix to an image record. */
export function resolveRecord(ctx: Ctx, input: string): Resolved {
  const ref = parseInput(input);
  const records = ctx.md.images.list();
  const sharing = (digest: string) => records.filter((r) => r.target.digest === digest);

  if (ref.digest !== undefined) {
    let hits = sharing(ref.digest);
    if (ref.path !== '') {
      const repo = repositoryName(ref);
      hits = hits.filter((r) => repositoryOf(r.name) === repo);
    }
    if (hits.length === 0) throw noSuchImage(input);
    // Prefer the exact name, then any named record, then the dangling one.
    const exact = hits.find((r) => r.name === referenceString(ref)) ?? hits.find((r) => !isDanglingRecord(r)) ?? hits[0]!;
    return { record: exact, all: sharing(exact.target.digest), ref, byId: ref.path === '' };
  }

  const name = referenceString(tagNameOnly(ref));
  const exact = records.find((r) => r.name === name);
  if (exact) return { record: exact, all: sharing(exact.target.digest), ref, byId: false };

  const prefix = idPrefixOf(input);
  if (prefix !== undefined) {
    const normalized = referenceString(ref);
    const hits = records.filter((r) => r.name === normalized || r.target.digest.startsWith(`sha256:${prefix}`));
    if (hits.length > 0) {
      const named = hits.find((r) => r.name === normalized);
      if (named) return { record: named, all: sharing(named.target.digest), ref, byId: false };
      const digests = new Set(hits.map((r) => r.target.digest));
      if (digests.size > 1) throw new NotFoundError(`No such image: ${input}: ambiguous reference`, { reference: input, ambiguous: true });
      const chosen = hits.find((r) => !isDanglingRecord(r)) ?? hits[0]!;
      return { record: chosen, all: sharing(chosen.target.digest), ref: { domain: '', path: '', digest: chosen.target.digest }, byId: true };
    }
  }
  throw noSuchImage(input);
}

export function toPlatform(p: PlatformSpec): Platform {
  if (typeof p === 'string') return parsePlatform(p);
  if (!p.os || !p.architecture) throw new InvalidArgumentError('both OS and Architecture must be provided', { platform: p });
  return normalizePlatform(p);
}

/** Docker's default matcher (every platform, host-ranked) or OnlyStrict / Only for a requested platform. */
export function matcherFor(ctx: Ctx, platform: Platform | undefined, strict = true): PlatformMatcher {
  if (platform === undefined) return anyPlatformRankedBy(ctx.host);
  return strict ? onlyStrictPlatform(platform) : onlyPlatform(platform);
}

/**
 * The best locally present platform manifest of a target: present manifest and config, not a pseudo image
 * (unless nothing else is present and no platform was asked for), best ranked.
 */
export async function bestManifest(
  ctx: Ctx, blobs: BlobReader, target: ImageRecord['target'], matcher: PlatformMatcher, allowPseudo = true,
): Promise<PlatformManifestImpl | undefined> {
  const all = await platformManifests(target, blobs, ctx.sizes);
  let best: { m: PlatformManifestImpl; rank: number } | undefined;
  let pseudo: PlatformManifestImpl | undefined;
  for (const m of all) {
    if (!(await m.present())) continue;
    try {
      await m.readConfig(); // a platform whose config is missing or unreadable cannot be the image
    } catch (e) {
      if (isStowageError(e, 'NotFound') || isStowageError(e, 'InvalidArgument')) continue;
      throw e;
    }
    if (await m.isPseudoImage()) { pseudo ??= m; continue; }
    const p = await m.platform();
    if (!matcher.match(p)) continue;
    const rank = matcher.rank(p);
    if (!best || rank < best.rank) best = { m, rank };
  }
  return best?.m ?? (allowPseudo ? pseudo : undefined);
}

export function platformMissing(input: string, platform: Platform | undefined): NotFoundError {
  const what = platform ? formatPlatform(platform) : 'any platform';
  return new NotFoundError(`image with reference ${input} was found but does not provide the specified platform (${what})`, { reference: input });
}
