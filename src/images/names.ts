import { InvalidArgumentError, isStowageError, stowageErrorOf } from '../errors/index.js';
import {
  familiarName, familiarString, parseAnyReference, parseNormalizedNamed, referenceString, repositoryName, tagNameOnly,
  type Digest, type NamedReference, type Reference,
} from '../oci/index.js';

/**
 * Image record names. A record is named by a canonical reference string (`docker.io/library/alpine:latest`,
 * `repo@sha256:…`); an untagged image that must be kept lives on as `dangling@<digest>`, hidden from names.
 */
export const DANGLING_PREFIX = 'dangling@';

export function danglingName(digest: Digest): string { return `${DANGLING_PREFIX}${digest}`; }
export function isDanglingName(name: string): boolean { return name.startsWith(DANGLING_PREFIX); }
/** A record is dangling iff its name is the dangling name of its own target. */
export function isDanglingRecord(rec: { name: string; target: { digest: string } }): boolean {
  return rec.name === `${DANGLING_PREFIX}${rec.target.digest}`;
}

/** Parses a reference a user gave (pull, push, tag, inspect): any parse failure is InvalidArgument. */
export function parseUserReference(input: string): NamedReference {
  try {
    return parseNormalizedNamed(input);
  } catch (e) {
    if (isStowageError(e)) throw new InvalidArgumentError(e.message, stowageErrorOf(e)!.data, { cause: e });
    throw e;
  }
}

/** Parses a stored canonical record name (never a dangling one). */
export function parseRecordName(name: string): NamedReference {
  return parseNormalizedNamed(name);
}

/** The familiar form of a record name (`alpine:latest`, `localhost:5000/app@sha256:…`). */
export function familiarOf(name: string): string {
  if (isDanglingName(name)) return name.slice(DANGLING_PREFIX.length);
  try { return familiarString(parseRecordName(name)); } catch { return name; }
}

/** Canonical repository of a record name (`docker.io/library/alpine`), undefined for dangling. */
export function repositoryOf(name: string): string | undefined {
  if (isDanglingName(name)) return undefined;
  try { return repositoryName(parseRecordName(name)); } catch { return undefined; }
}

/** `repo@digest` for a record name and a digest (RepoDigests). */
export function repoDigestOf(name: string, digest: string): string | undefined {
  if (isDanglingName(name)) return undefined;
  try {
    const ref = parseRecordName(name);
    return `${familiarName(ref)}@${digest}`;
  } catch { return undefined; }
}

/** Canonical string of a named reference with `latest` added when it has neither tag nor digest. */
export function canonicalTagged(ref: NamedReference): string { return referenceString(tagNameOnly(ref)); }

/** The form used in "No such image" messages: familiar, `:latest` added to name-only refs, digests as given. */
export function missingImageName(input: string): string {
  try {
    const ref = parseAnyReference(input);
    if (ref.path === '') return ref.digest ?? input;
    return familiarString(tagNameOnly(ref));
  } catch { return input; }
}

/** An input that can be a truncated image ID: optional `sha256:` and 4..64 lowercase hex. */
export function idPrefixOf(input: string): string | undefined {
  const m = /^(?:sha256:)?([a-f0-9]{4,64})$/.exec(input);
  return m ? m[1] : undefined;
}

export function shortId(digest: string): string {
  const i = digest.indexOf(':');
  return digest.slice(i + 1, i + 13);
}

export type { Reference };
