import { InvalidArgumentError } from '../errors/index.js';

/**
 * Image references, parsed and normalised exactly as docker's distribution/reference does
 * (ParseNormalizedNamed, familiar names, `docker.io/library/` default, `latest`).
 * Error messages are docker's, word for word: the CLI and the Engine API show them to users.
 */

export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
export const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
/** Maximum length of the repository path (without the domain). */
export const NAME_TOTAL_LENGTH_MAX = 255;

/** docker's error texts (distribution/reference errors.go and go-digest). */
export const ReferenceErrors = {
  invalidFormat: 'invalid reference format',
  tagInvalidFormat: 'invalid tag format',
  digestInvalidFormat: 'invalid digest format',
  nameContainsUppercase: 'repository name must be lowercase',
  nameEmpty: 'repository name must have at least one component',
  nameTooLong: `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`,
  nameNotCanonical: 'repository name must be canonical',
  checksumInvalidFormat: 'invalid checksum digest format',
  checksumInvalidLength: 'invalid checksum digest length',
  checksumUnsupported: 'unsupported digest algorithm',
} as const;

/**
 * A parsed reference. `domain` is empty only for references parsed without normalisation
 * (parseReference) that carry no domain; `path` is empty for a bare digest reference.
 * `digest` keeps the algorithm as written (sha256, sha384, sha512).
 */
export interface Reference {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

/** A reference that names a repository (domain + path always set after normalisation). */
export interface NamedReference extends Reference {
  domain: string;
  path: string;
}

// --- grammar (distribution/reference regexp.go) ---
const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const ipv6address = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const host = `(?:${domainName}|${ipv6address})`;
const domainAndPort = `${host}(?::[0-9]+)?`;
const tagPat = '[\\w][\\w.-]{0,127}';
const digestPat = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const namePat = `(?:${domainAndPort}/)?${remoteName}`;

const referenceRe = new RegExp(`^(${namePat})(?::(${tagPat}))?(?:@(${digestPat}))?$`);
const anchoredNameRe = new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`);
const anchoredTagRe = new RegExp(`^${tagPat}$`);
const anchoredRemoteNameRe = new RegExp(`^${remoteName}$`);
const anchoredDigestRe = new RegExp(`^${digestPat}$`);
const anchoredIdentifierRe = /^[a-f0-9]{64}$/;
const anchoredDomainRe = new RegExp(`^${domainAndPort}$`);

function fail(message: string, input: string): never {
  throw new InvalidArgumentError(message, { reference: input });
}

const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** go-digest's Parse/Validate: known algorithm, lowercase hex of the right length. */
function validateReferenceDigest(d: string, input: string): void {
  const i = d.indexOf(':');
  if (i <= 0 || i + 1 === d.length) fail(ReferenceErrors.checksumInvalidFormat, input);
  const alg = d.slice(0, i);
  const hex = d.slice(i + 1);
  const want = DIGEST_HEX_LENGTH[alg];
  if (want === undefined) fail(ReferenceErrors.checksumUnsupported, input);
  if (hex.length !== want) fail(ReferenceErrors.checksumInvalidLength, input);
  if (!/^[a-f0-9]+$/.test(hex)) fail(ReferenceErrors.checksumInvalidFormat, input);
}

/** distribution/reference Parse: the grammar only, no defaults (domain may stay empty). */
export function parseReference(s: string): Reference {
  const m = referenceRe.exec(s);
  if (!m) {
    if (s === '') fail(ReferenceErrors.nameEmpty, s);
    if (referenceRe.test(s.toLowerCase())) fail(ReferenceErrors.nameContainsUppercase, s);
    fail(ReferenceErrors.invalidFormat, s);
  }
  const name = m[1]!;
  const nm = anchoredNameRe.exec(name);
  const domain = nm?.[1] ?? '';
  const path = nm?.[2] ?? name;
  if (path.length > NAME_TOTAL_LENGTH_MAX) fail(ReferenceErrors.nameTooLong, s);
  const ref: Reference = { domain, path };
  if (m[2] !== undefined && m[2] !== '') ref.tag = m[2];
  if (m[3] !== undefined && m[3] !== '') {
    validateReferenceDigest(m[3], s);
    ref.digest = m[3];
  }
  return ref;
}

/** docker's splitDockerDomain: the first component is a domain only if it looks like one. */
export function splitDockerDomain(name: string): { domain: string; remainder: string } {
  let domain: string;
  let remainder: string;
  const i = name.indexOf('/');
  const first = i === -1 ? '' : name.slice(0, i);
  if (i === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

/**
 * ParseNormalizedNamed: `alpine` → docker.io/library/alpine, `user/app:1` → docker.io/user/app:1,
 * `localhost:5000/x@sha256:…` keeps its domain. No tag is added (see tagNameOnly).
 */
export function parseNormalizedNamed(s: string): NamedReference {
  if (anchoredIdentifierRe.test(s)) {
    fail(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`, s);
  }
  const { domain, remainder } = splitDockerDomain(s);
  const tagSep = remainder.indexOf(':');
  const remote = tagSep > -1 ? remainder.slice(0, tagSep) : remainder;
  if (remote.toLowerCase() !== remote) {
    fail(`invalid reference format: repository name (${remote}) must be lowercase`, s);
  }
  const ref = parseReference(`${domain}/${remainder}`);
  if (ref.path === '') fail(`reference ${s} has no name`, s);
  return ref as NamedReference;
}

/**
 * ParseAnyReference: a 64-hex string or a digest becomes a digest-only reference (domain and path empty);
 * anything else is a normalised named reference.
 */
export function parseAnyReference(s: string): Reference {
  if (anchoredIdentifierRe.test(s)) return { domain: '', path: '', digest: `sha256:${s}` };
  if (anchoredDigestRe.test(s)) {
    try {
      validateReferenceDigest(s, s);
      return { domain: '', path: '', digest: s };
    } catch { /* not a digest after all: parse as a name (which fails like docker does) */ }
  }
  return parseNormalizedNamed(s);
}

/**
 * containerd's ParseDockerRef: normalised, `latest` when neither tag nor digest, and the tag dropped
 * when a digest is present (the digest is what gets pulled).
 */
export function parseDockerRef(s: string): NamedReference {
  const ref = parseNormalizedNamed(s);
  if (ref.digest !== undefined) return { domain: ref.domain, path: ref.path, digest: ref.digest };
  return tagNameOnly(ref);
}

/** TagNameOnly: adds `latest` to a reference with neither tag nor digest. */
export function tagNameOnly<T extends Reference>(ref: T): T {
  if (ref.tag === undefined && ref.digest === undefined) return { ...ref, tag: DEFAULT_TAG };
  return ref;
}

/** The repository name only: `docker.io/library/alpine`. */
export function repositoryName(ref: Pick<Reference, 'domain' | 'path'>): string {
  return ref.domain === '' ? ref.path : `${ref.domain}/${ref.path}`;
}

/** Full canonical string: `docker.io/library/alpine:3@sha256:…`. */
export function referenceString(ref: Reference): string {
  let s = repositoryName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += s === '' ? ref.digest : `@${ref.digest}`;
  return s;
}

/** FamiliarName: drops `docker.io/` and, for official images, `library/`. */
export function familiarName(ref: Pick<Reference, 'domain' | 'path'>): string {
  if (ref.domain !== DEFAULT_DOMAIN) return repositoryName(ref);
  let path = ref.path;
  if (path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = path.slice(OFFICIAL_REPO_PREFIX.length);
    if (!rest.includes('/')) path = rest;
  }
  return path;
}

/** FamiliarString: the familiar name plus tag and digest, as `docker images` shows them. */
export function familiarString(ref: Reference): string {
  if (ref.path === '' && ref.domain === '') return ref.digest ?? '';
  let s = familiarName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** Validates a tag alone (for `tag` operations). */
export function validateTag(tag: string): void {
  if (!isValidTag(tag)) fail(ReferenceErrors.tagInvalidFormat, tag);
}

/** Is this a tag by the reference grammar (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`)? */
export function isValidTag(tag: string): boolean {
  return anchoredTagRe.test(tag);
}

/** Is this a repository path by the reference grammar (`library/alpine`: no domain, lowercase, at most 255 characters)? */
export function isValidRepositoryPath(path: string): boolean {
  return path.length <= NAME_TOTAL_LENGTH_MAX && anchoredRemoteNameRe.test(path);
}

/** Validates a registry host string (`host[:port]`, `[v6]:port`, `localhost`). */
export function isValidDomain(domain: string): boolean {
  return anchoredDomainRe.test(domain);
}

/** docker refuses to tag `sha256:…`-looking names (`refusing to create an ambiguous tag using digest algorithm as name`). */
export function isAmbiguousDigestName(ref: Reference): boolean {
  return ref.domain === DEFAULT_DOMAIN && ref.path === `${OFFICIAL_REPO_PREFIX}sha256`;
}
