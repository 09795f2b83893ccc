import type { Readable } from 'node:stream';
import { InvalidArgumentError, NotFoundError, ResourceExhaustedError, fromSystemError, isStowageError, throwIfAborted } from '../errors/index.js';
import type { Digest } from '../oci/index.js';
import { MAX_ARCHIVE_JSON, isMetadataMember } from './layout.js';
import { linkTarget, memberPath } from './member.js';
import { tarStream } from './tar-stream.js';

/** A member stored by the caller while the archive streams by. */
export interface StoredMember {
  digest: Digest;
  size: number;
  /** 'gzip' | 'zstd' | 'none' as the caller sniffed it (for the media type of a docker-archive layer). */
  compression: string;
}

/**
 * Stores one member's bytes (into a content store) and says what they hash to. `path` is the clean
 * member path; a `blobs/<alg>/<hex>` path names the digest the bytes must have.
 */
export type MemberSink = (path: string, body: Readable, size: number) => Promise<StoredMember>;

export interface ArchiveContents {
  /** Stored members (links resolved to their targets). */
  members: Map<string, StoredMember>;
  /** Metadata members read whole (oci-layout, index.json, manifest.json, repositories, legacy json/VERSION). */
  json: Map<string, Buffer>;
}

const MAX_LINK_HOPS = 16;

/**
 * Reads an uncompressed tar stream member by member: metadata files are kept in memory (capped), every
 * other regular file goes to `sink` as it arrives, so nothing is buffered whole or spooled to disk
 * whatever the order of the members. Symlinks and hard links between members (docker's legacy archives
 * link repeated layers) are resolved once the archive has ended; links that leave the archive, other
 * member types and a path given twice are refused (InvalidArgument).
 */
export async function readArchive(input: Readable, sink: MemberSink, opts: { signal?: AbortSignal } = {}): Promise<ArchiveContents> {
  const members = new Map<string, StoredMember>();
  const json = new Map<string, Buffer>();
  const links = new Map<string, string>();
  const seen = new Set<string>();
  const extract = tarStream().extract();
  input.on('error', (e) => extract.destroy(e));
  input.pipe(extract);
  try {
    for await (const entry of extract) {
      throwIfAborted(opts.signal);
      const h = entry.header;
      const p = memberPath(h.name);
      if (h.type === 'directory') { entry.resume(); continue; }
      if (p === '') throw new InvalidArgumentError(`invalid archive: member ${JSON.stringify(h.name)} has no name`, { member: h.name });
      if (seen.has(p)) throw new InvalidArgumentError(`invalid archive: member ${JSON.stringify(p)} appears twice`, { member: p, reason: 'duplicate-member' });
      seen.add(p);
      if (h.type === 'symlink' || h.type === 'link') {
        links.set(p, linkTarget(p, h.linkname ?? '', h.type));
        entry.resume();
        continue;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        throw new InvalidArgumentError(`invalid archive: member ${JSON.stringify(p)} is a ${h.type}, not a file`, { member: p, reason: 'member-type' });
      }
      const size = h.size ?? 0;
      if (isMetadataMember(p)) {
        if (size > MAX_ARCHIVE_JSON) {
          throw new ResourceExhaustedError(`invalid archive: ${p} is ${size} bytes, over the ${MAX_ARCHIVE_JSON}-byte limit`, { member: p, size, limit: MAX_ARCHIVE_JSON });
        }
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        json.set(p, Buffer.concat(chunks));
        continue;
      }
      members.set(p, await sink(p, entry as unknown as Readable, size));
    }
  } catch (e) {
    if (isStowageError(e)) throw e;
    // System errors keep their class; anything else the tar parser threw means the bytes are not a tar.
    if ((e as NodeJS.ErrnoException).code !== undefined && (e as NodeJS.ErrnoException).syscall !== undefined) throw fromSystemError(e, 'reading the archive');
    throw new InvalidArgumentError(`invalid archive: ${(e as Error).message}`, { reason: 'not-a-tar' }, { cause: e });
  } finally {
    input.unpipe(extract);
    extract.destroy();
  }
  for (const [p, target] of links) {
    let t = target;
    for (let hops = 0; !members.has(t) && !json.has(t); hops++) {
      const next = links.get(t);
      if (next === undefined || hops >= MAX_LINK_HOPS) {
        throw new NotFoundError(`invalid archive: link ${JSON.stringify(p)} points to ${JSON.stringify(target)}, which the archive does not hold`, { member: p, target, reason: 'dangling-link' });
      }
      t = next;
    }
    if (members.has(t)) members.set(p, members.get(t)!);
    else json.set(p, json.get(t)!);
  }
  return { members, json };
}

/** The stored member at `p` (a path from manifest.json), or NotFound in docker's words. */
export function memberAt(contents: ArchiveContents, p: string, what: string): StoredMember {
  const m = contents.members.get(memberPath(p));
  if (!m) throw new NotFoundError(`invalid archive: ${what} ${JSON.stringify(p)} is missing from the archive`, { member: p, reason: 'missing-member' });
  return m;
}
