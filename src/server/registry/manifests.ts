/** Manifests: GET/HEAD by tag or digest with Accept negotiation, PUT (push), DELETE of tags and manifests. */
import { Header, acceptsManifest, parseAccept } from '../../distribution/index.js';
import type { StoredManifest } from '../../images/index.js';
import { MAX_MANIFEST_SIZE, isDigest, isValidTag, type Digest } from '../../oci/index.js';
import { RegistryError, toRegistryError } from './errors.js';
import { readBodyCapped, send, v2Path, type Exchange } from './exchange.js';

/** A reference that is neither a tag nor a digest names nothing: 404, as the spec's pull tests want. */
function checkReference(name: string, reference: string): 'tag' | 'digest' {
  if (reference.includes(':')) {
    if (!isDigest(reference)) throw new RegistryError('DIGEST_INVALID', `invalid digest ${JSON.stringify(reference)}`);
    return 'digest';
  }
  if (!isValidTag(reference)) throw new RegistryError('MANIFEST_UNKNOWN', `${name}:${reference}: manifest unknown`);
  return 'tag';
}

async function findManifest(ex: Exchange, name: string, reference: string): Promise<StoredManifest> {
  const kind = checkReference(name, reference);
  let digest: Digest | undefined = kind === 'digest' ? reference as Digest : ex.view.resolveTag(name, reference)?.target.digest;
  let found = digest ? await ex.view.manifest(digest) : undefined;
  if (!found && ex.mirror) {
    found = await ex.mirror.manifest(ex, name, reference);
    digest = found?.descriptor.digest;
  }
  if (!found) {
    if (kind === 'tag' && ex.view.tags(name) === undefined) throw new RegistryError('NAME_UNKNOWN', `repository ${name} not known to registry`, { name });
    throw new RegistryError('MANIFEST_UNKNOWN', `${name}${kind === 'tag' ? ':' : '@'}${reference}: manifest unknown`, { tag: kind === 'tag' ? reference : undefined });
  }
  return found;
}

/** GET and HEAD: the stored bytes with their own type, or 404 when the client does not accept that type. */
export async function getManifest(ex: Exchange, name: string, reference: string): Promise<void> {
  const m = await findManifest(ex, name, reference);
  const accepted = parseAccept(ex.req.headers.accept);
  if (!acceptsManifest(accepted, m.descriptor.mediaType)) {
    // Never a converted document: a client that cannot read the stored type gets none.
    throw new RegistryError('MANIFEST_UNKNOWN', `${name}:${reference}: the manifest is ${m.descriptor.mediaType}, which the Accept header does not list`, { mediaType: m.descriptor.mediaType });
  }
  send(ex, 200, {
    'content-type': m.descriptor.mediaType,
    'content-length': m.bytes.length,
    [Header.ContentDigest]: m.descriptor.digest,
    etag: `"${m.descriptor.digest}"`,
  }, m.bytes);
}

/** PUT: stores the exact bytes; refuses a manifest whose blobs are missing (MANIFEST_BLOB_UNKNOWN). */
export async function putManifest(ex: Exchange, name: string, reference: string): Promise<void> {
  if (!reference.includes(':') && !isValidTag(reference)) throw new RegistryError('TAG_INVALID', `invalid tag ${JSON.stringify(reference)}`);
  if (reference.includes(':') && !isDigest(reference)) throw new RegistryError('DIGEST_INVALID', `invalid digest ${JSON.stringify(reference)}`);
  const bytes = await readBodyCapped(ex, MAX_MANIFEST_SIZE);
  let put;
  try {
    put = await ex.view.putManifest(name, reference, bytes, ex.req.headers['content-type']);
  } catch (e) {
    throw toRegistryError(e, 'manifest');
  }
  send(ex, 201, {
    location: v2Path(name, `manifests/${put.descriptor.digest}`),
    [Header.ContentDigest]: put.descriptor.digest,
    ...(put.subject ? { [Header.OciSubject]: put.subject } : {}),
  });
}

/** DELETE by tag (the tag goes) or by digest (every tag of the repository on it goes): 202. */
export async function deleteManifest(ex: Exchange, name: string, reference: string): Promise<void> {
  const kind = checkReference(name, reference);
  try {
    if (kind === 'tag') ex.view.deleteTag(name, reference);
    else await ex.view.deleteManifest(name, reference as Digest);
  } catch (e) {
    throw toRegistryError(e, 'manifest');
  }
  send(ex, 202);
}
