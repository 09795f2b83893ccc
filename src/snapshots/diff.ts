import fs from 'node:fs';
import path from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, throwIfAborted, isStowageError } from '../errors/index.js';
import { Digester, MediaType, type Digest } from '../oci/index.js';
import { UNCOMPRESSED, type Writer } from '../content/index.js';
import { compressStream, type Compression } from './compression.js';
import { isMarker, mergedChildren, WH_OPAQUE, WH_PREFIX, type MergedEntry } from './merged.js';
import { loadCarriedXattrs, loadOverrides, treeHasXattrs, type OwnerOverride } from './ownership.js';
import { joinRel, parentOf, baseOf } from './rootpath.js';
import { tarStream } from './tar-stream.js';
import type * as TarStream from 'tar-stream';

/** One change between a lower (merged) tree and an upper tree, as Docker's `Changes`. */
export interface Change {
  kind: 'A' | 'C' | 'D';
  path: string;
  /** Internal: a directory whose lower content is hidden entirely (written as `.wh..wh..opq`). */
  opaque?: boolean;
}

/** Docker API form: Kind 0 = modified, 1 = added, 2 = deleted; Path absolute. */
export interface ApiChange { Kind: 0 | 1 | 2; Path: string }

export function toApiChanges(changes: readonly Change[]): ApiChange[] {
  return changes.map((c) => ({ Kind: c.kind === 'C' ? 0 : c.kind === 'A' ? 1 : 2, Path: '/' + c.path }));
}

/** Path order with '/' ranked lowest (so `a/b` precedes `a.b`), as containerd's double walk. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a.replaceAll('/', '\0')), Buffer.from(b.replaceAll('/', '\0')));
}

const byName = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

interface Effective { uid: number; gid: number; mode: number }
function effective(st: fs.Stats, o: OwnerOverride | undefined): Effective {
  if (!o) return { uid: st.uid, gid: st.gid, mode: st.mode };
  return { uid: o.uid, gid: o.gid, mode: (st.mode & ~0o7777) | o.mode };
}

/** A source tree plus the ownership overrides recorded for it. */
export interface TreeSource {
  root: string;
  overrides: Map<string, OwnerOverride>;
  /** user.* / security.capability xattrs to write as SCHILY.xattr records (when known to exist). */
  xattrs?: Map<string, Record<string, Buffer>>;
}

/**
 * Loads a tree's override records, and its xattrs when the tree is marked as carrying some (trees made
 * by apply or checkout) or when `scanXattrs` asks for a walk (one getfattr process).
 */
export async function treeSource(root: string, opts: { scanXattrs?: boolean } = {}): Promise<TreeSource> {
  const src: TreeSource = { root, overrides: await loadOverrides(root) };
  if (opts.scanXattrs || treeHasXattrs(root)) src.xattrs = await loadCarriedXattrs(root);
  return src;
}

/** PAX records for an entry's xattrs; values that are not valid UTF-8 cannot go through tar-stream and are left out. */
function paxXattrs(kv: Record<string, Buffer> | undefined): Record<string, string> | undefined {
  if (!kv) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(kv)) {
    const s = v.toString('utf8');
    if (Buffer.from(s, 'utf8').equals(v)) out[`SCHILY.xattr.${k}`] = s;
  }
  return Object.keys(out).length ? out : undefined;
}

const isUtf8 = (v: Buffer): boolean => Buffer.from(v.toString('utf8'), 'utf8').equals(v);

/** One PAX record, `<len> <key>=<value>\n`, its length counting its own digits; the value as raw bytes. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/**
 * A PAX extended header (`x`) holding `body` verbatim, padded to whole blocks. tar-stream can only write
 * PAX values as UTF-8 text, so binary xattr values (security.capability) go through this.
 */
function rawPaxHeader(body: Buffer): Buffer {
  const h = Buffer.alloc(512);
  h.write('PaxHeader', 0, 'latin1');
  h.write('0000644\0', 100, 'latin1'); h.write('0000000\0', 108, 'latin1'); h.write('0000000\0', 116, 'latin1');
  h.write(body.length.toString(8).padStart(11, '0') + '\0', 124, 'latin1'); h.write('00000000000\0', 136, 'latin1');
  h.write('x', 156, 'latin1'); h.write('ustar\0' + '00', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return Buffer.concat([h, body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
}

/** A name tar-stream can put in a ustar header as is (else the PAX `path` carries it). */
const ustarSafe = (n: string): string => (/^[\x20-\x7e]{1,100}$/.test(n) ? n : 'PaxHeader');

interface LowerView { layers: string[]; overrides: Map<string, OwnerOverride>[]; xattrs: (Map<string, Record<string, Buffer>> | undefined)[] }

/** containerd compares this one xattr only (sameFile step 3). */
function sameCapability(a: Record<string, Buffer> | undefined, b: Record<string, Buffer> | undefined): boolean {
  const x = a?.['security.capability'];
  const y = b?.['security.capability'];
  return x === undefined ? y === undefined : y !== undefined && x.equals(y);
}

function sameContent(a: string, b: string, size: number): boolean {
  if (size === 0) return true;
  const fa = fs.openSync(a, 'r');
  const fb = fs.openSync(b, 'r');
  try {
    const ba = Buffer.allocUnsafe(1 << 20);
    const bb = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const na = fs.readSync(fa, ba, 0, ba.length, null);
      const nb = fs.readSync(fb, bb, 0, bb.length, null);
      if (na !== nb) return false;
      if (na === 0) return true;
      if (ba.compare(bb, 0, nb, 0, na) !== 0) return false;
    }
  } finally { fs.closeSync(fa); fs.closeSync(fb); }
}

/**
 * containerd's sameFile, with one adjustment: Node cannot set nanosecond mtimes, so copies made by
 * checkout differ below the microsecond; times within 1 µs are treated as equal, and equal times
 * that are whole seconds (as tar restores them) fall back to comparing bytes (docker#21555).
 */
function sameFile(l: MergedEntry, lo: OwnerOverride | undefined, upath: string, ust: fs.Stats, uo: OwnerOverride | undefined): boolean {
  if (l.st.dev === ust.dev && l.st.ino === ust.ino) return true;
  const a = effective(l.st, lo);
  const b = effective(ust, uo);
  if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || l.st.rdev !== ust.rdev) return false;
  if (ust.isDirectory()) return true;
  if (l.st.size !== ust.size) return false;
  const la = BigInt(Math.round(l.st.mtimeMs * 1000));
  const ub = BigInt(Math.round(ust.mtimeMs * 1000));
  if (la / 1000000n !== ub / 1000000n) return false;
  const d = la - ub;
  if (d > 1n || d < -1n) return false;
  if (la % 1000000n === 0n || ub % 1000000n === 0n) {
    if (ust.isSymbolicLink()) return fs.readlinkSync(l.src) === fs.readlinkSync(upath);
    if (ust.isFile()) return sameContent(l.src, upath, ust.size);
  }
  return true;
}

/**
 * Double walk (continuity fs.Changes): compares the merged view of `lower` (overlay-layout layer
 * dirs, nearest first; a plain directory is a one-layer chain; [] is the empty tree) with the plain
 * tree `upper`. Deleted directories yield one change (descendants suppressed). Sorted output.
 */
export async function diffDirs(lower: string[], upper: string | TreeSource, opts: { signal?: AbortSignal } = {}): Promise<Change[]> {
  const up = typeof upper === 'string' ? await treeSource(upper) : upper;
  const lv: LowerView = {
    layers: lower,
    overrides: await Promise.all(lower.map((l) => loadOverrides(l))),
    // Only when the upper tree's xattrs are known (a marked tree, or scanXattrs) can capabilities be compared.
    xattrs: up.xattrs ? await Promise.all(lower.map((l) => (treeHasXattrs(l) ? loadCarriedXattrs(l) : undefined))) : [],
  };
  const out: Change[] = [];
  /** Unmodified paths of multiply-linked inodes, emitted as links if the inode changes elsewhere. */
  const heldLinks = new Map<string, string[]>();
  const changedInodes = new Set<string>();
  const walk = (rel: string, lowerKids: Map<string, MergedEntry> | undefined): void => {
    throwIfAborted(opts.signal);
    const uabs = path.join(up.root, rel);
    const unames = fs.readdirSync(uabs).sort(byName);
    const lnames = lowerKids ? [...lowerKids.keys()].sort(byName) : [];
    let i = 0; let j = 0;
    while (i < unames.length || j < lnames.length) {
      const un = unames[i]; const ln = lnames[j];
      const c = un === undefined ? 1 : ln === undefined ? -1 : byName(un, ln);
      if (c > 0) { out.push({ kind: 'D', path: joinRel(rel, ln!) }); j++; continue; }
      const p = joinRel(rel, un!);
      const upath = path.join(uabs, un!);
      const ust = fs.lstatSync(upath);
      if (c < 0) {
        out.push({ kind: 'A', path: p });
        if (ust.isFile()) changedInodes.add(`${ust.dev}:${ust.ino}`);
        if (ust.isDirectory()) walk(p, undefined);
        i++; continue;
      }
      const le = lowerKids!.get(ln!)!;
      i++; j++;
      const lo = lv.overrides[le.layer]?.get(le.rel);
      const uo = up.overrides.get(p);
      const capSame = up.xattrs === undefined || sameCapability(lv.xattrs[le.layer]?.get(le.rel), up.xattrs.get(p));
      const same = capSame && (le.kind === 'dir') === ust.isDirectory() && sameFile(le, lo, upath, ust, uo);
      if (!same) {
        out.push({ kind: 'C', path: p });
        if (ust.isFile()) changedInodes.add(`${ust.dev}:${ust.ino}`);
      } else if (ust.isFile() && ust.nlink > 1) {
        const k = `${ust.dev}:${ust.ino}`;
        heldLinks.set(k, [...(heldLinks.get(k) ?? []), p]);
      }
      if (ust.isDirectory()) walk(p, le.kind === 'dir' ? mergedChildren(lv.layers, le.rel, le.layer, le.stop) : undefined);
    }
  };
  walk('', lower.length ? mergedChildren(lower, '') : undefined);
  for (const [k, paths] of heldLinks) if (changedInodes.has(k)) for (const p of paths) out.push({ kind: 'C', path: p });
  return out.sort((a, b) => comparePaths(a.path, b.path));
}

/**
 * Changes recorded in one overlay-layout layer dir (the fast path: walks only that layer). `.wh.<x>`
 * is a deletion, an opaque marker makes its directory opaque; everything else is Add when absent
 * from the lower chain, Modify otherwise.
 */
export function layerChanges(lower: string[], layerDir: string): Change[] {
  const out: Change[] = [];
  const walk = (rel: string, lowerKids: Map<string, MergedEntry> | undefined): void => {
    const ents = fs.readdirSync(path.join(layerDir, rel), { withFileTypes: true }).sort((a, b) => byName(a.name, b.name));
    const has = new Set(ents.map((d) => d.name)); // not names.includes: a directory of n entries would cost n²
    const markers = new Set(ents.filter(isMarker).map((d) => d.name));
    const opaque = markers.has(WH_OPAQUE);
    for (const d of ents) {
      const n = d.name;
      if (n === WH_OPAQUE && opaque) continue;
      if (markers.has(n)) {
        // `.wh.x` next to a directory `x` of the same layer is written as that directory's opaque marker.
        if (!has.has(n.slice(WH_PREFIX.length))) out.push({ kind: 'D', path: joinRel(rel, n.slice(WH_PREFIX.length)) });
        continue;
      }
      const p = joinRel(rel, n);
      const le = opaque ? undefined : lowerKids?.get(n);
      const whiteoutToo = markers.has(WH_PREFIX + n);
      out.push({ kind: le && !whiteoutToo ? 'C' : 'A', path: p, ...(d.isDirectory() && whiteoutToo ? { opaque: true } : {}) });
      if (d.isDirectory()) walk(p, le?.kind === 'dir' && !whiteoutToo ? mergedChildren(lower, le.rel, le.layer, le.stop) : undefined);
    }
    if (opaque && rel !== '') {
      const mine = out.find((c) => c.path === rel);
      if (mine) mine.opaque = true; else out.push({ kind: 'C', path: rel, opaque: true });
    }
  };
  walk('', lower.length ? mergedChildren(lower, '') : undefined);
  return out.sort((a, b) => comparePaths(a.path, b.path));
}

export interface DiffTarOptions {
  signal?: AbortSignal;
  /** Cap mtimes (SOURCE_DATE_EPOCH style), seconds since the epoch. */
  sourceDateEpoch?: number;
}

const EPOCH = new Date(0);

function devNumbers(rdev: number): { devmajor: number; devminor: number } {
  return { devmajor: Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn), devminor: (rdev & 0xff) | Number((BigInt(rdev) >> 12n) & 0xfff00n) };
}

/**
 * Writes the changes as an OCI layer tar (uncompressed) to `pack`, reading added/modified entries
 * from `upper`. Whiteouts are zero-size files at the epoch; parents precede children (each parent
 * once, for its metadata); hardlinked inodes become one file plus links; owner and mode come from
 * the override records when present; names are PAX-encoded when long. Sockets are skipped.
 */
async function packChanges(changes: readonly Change[], up: TreeSource, pack: TarStream.Pack, opts: DiffTarOptions): Promise<void> {
  const emittedDirs = new Set<string>();
  const inodes = new Map<string, string>();
  const sorted = [...changes].sort((a, b) => comparePaths(a.path, b.path));
  const mtimeOf = (st: fs.Stats): Date => {
    let s = Math.floor(st.mtimeMs / 1000);
    if (opts.sourceDateEpoch !== undefined && s > opts.sourceDateEpoch) s = opts.sourceDateEpoch;
    return new Date(s * 1000);
  };
  const put = (h: TarStream.Header | Partial<TarStream.Header> & { name: string }, body?: Buffer): Promise<void> =>
    new Promise((resolve, reject) => { pack.entry(h as TarStream.Header, body ?? Buffer.alloc(0), (e) => (e ? reject(e) : resolve())); });

  const emitEntry = async (rel: string, withOpaque: boolean): Promise<void> => {
    // Any reader would take such an entry for a whiteout and delete `<x>` instead (image-spec: not representable).
    if (baseOf(rel).startsWith(WH_PREFIX)) throw new InvalidArgumentError(`${JSON.stringify(rel)} cannot be written to a layer: names starting with ${WH_PREFIX} are whiteouts`, { reason: 'unrepresentable', path: rel });
    const abs = path.join(up.root, rel);
    const st = fs.lstatSync(abs);
    const eff = effective(st, up.overrides.get(rel));
    const xa = st.isSymbolicLink() ? undefined : up.xattrs?.get(rel);
    // tar-stream writes PAX values as UTF-8 text: binary values (security.capability) need a PAX header of our own.
    const binary = xa !== undefined && Object.values(xa).some((v) => !isUtf8(v));
    const pax = binary ? undefined : paxXattrs(xa);
    const base = { name: rel, mode: eff.mode & 0o7777, uid: eff.uid, gid: eff.gid, mtime: mtimeOf(st), ...(pax ? { pax } : {}) };
    const prep = <H extends Partial<TarStream.Header> & { name: string }>(h: H): H => {
      if (!binary) return h;
      const recs = [paxRecord('path', Buffer.from(h.name))];
      if (h.linkname) recs.push(paxRecord('linkpath', Buffer.from(h.linkname)));
      for (const [k, v] of Object.entries(xa!)) recs.push(paxRecord(`SCHILY.xattr.${k}`, v));
      // Between entries (every put is awaited) the pack is idle, so these blocks land right before the entry.
      pack.push(rawPaxHeader(Buffer.concat(recs)));
      return { ...h, name: ustarSafe(h.name), ...(h.linkname ? { linkname: ustarSafe(h.linkname) } : {}) };
    };
    if (st.isDirectory()) {
      emittedDirs.add(rel);
      await put(prep({ ...base, name: rel + '/', type: 'directory', size: 0 }));
      if (withOpaque) await put({ name: joinRel(rel, WH_OPAQUE), mode: 0o644, uid: 0, gid: 0, mtime: EPOCH, type: 'file', size: 0 });
    } else if (st.isSymbolicLink()) {
      await put(prep({ ...base, type: 'symlink', linkname: fs.readlinkSync(abs), size: 0 }));
    } else if (st.isFile()) {
      const k = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? inodes.get(k) : undefined;
      if (first !== undefined) { await put(prep({ ...base, type: 'link', linkname: first, size: 0 })); return; }
      if (st.nlink > 1) inodes.set(k, rel);
      if (st.size <= 1 << 20) {
        await put(prep({ ...base, type: 'file', size: st.size }), st.size ? fs.readFileSync(abs) : undefined);
      } else {
        const h = prep({ ...base, type: 'file', size: st.size });
        await new Promise<void>((resolve, reject) => {
          const sink = pack.entry(h as TarStream.Header, (e) => (e ? reject(e) : resolve()));
          pipeline(fs.createReadStream(abs, { highWaterMark: 1 << 20 }), sink as unknown as Writable).catch(reject);
        });
      }
    } else if (st.isFIFO()) {
      await put(prep({ ...base, type: 'fifo', size: 0 }));
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      await put(prep({ ...base, type: st.isCharacterDevice() ? 'character-device' : 'block-device', size: 0, ...devNumbers(st.rdev) }));
    }
    // sockets: skipped, as containerd does
  };
  const includeParents = async (rel: string): Promise<void> => {
    const dir = parentOf(rel);
    if (dir === '' || emittedDirs.has(dir)) return;
    await includeParents(dir);
    const st = fs.lstatSync(path.join(up.root, dir), { throwIfNoEntry: false });
    if (st?.isDirectory()) await emitEntry(dir, false);
    else emittedDirs.add(dir);
  };

  for (const c of sorted) {
    throwIfAborted(opts.signal);
    await includeParents(c.path);
    if (c.kind === 'D') {
      await put({ name: joinRel(parentOf(c.path), WH_PREFIX + baseOf(c.path)), mode: 0o644, uid: 0, gid: 0, mtime: EPOCH, type: 'file', size: 0 });
      continue;
    }
    if (emittedDirs.has(c.path)) continue;
    await emitEntry(c.path, c.opaque === true);
  }
  pack.finalize();
}

/** The uncompressed layer tar of `changes` as a stream. */
export function diffTarStream(changes: readonly Change[], upper: TreeSource, opts: DiffTarOptions = {}): Readable {
  const pack = tarStream().pack();
  packChanges(changes, upper, pack, opts).catch((e) => pack.destroy(e as Error));
  return pack as unknown as Readable;
}

export interface DiffLayer {
  digest: Digest;
  diffID: Digest;
  size: number;
  mediaType: string;
}

const MEDIA: Record<Compression, string> = { gzip: MediaType.OciLayerGzip, zstd: MediaType.OciLayerZstd, none: MediaType.OciLayer };

/**
 * Streams the layer for `changes` through compression into `out` (a content Writer, or any sink),
 * hashing the uncompressed tar for the diffID. A plain stream is ended and flushed before this returns; with a content Writer the blob is committed with the
 * UNCOMPRESSED label (AlreadyExists on commit is harmless and swallowed), and closed
 * if the layer cannot be written.
 */
export async function writeDiffLayer(changes: readonly Change[], upper: string | TreeSource, out: Writer | NodeJS.WritableStream, opts: DiffTarOptions & { compression?: Compression; level?: number } = {}): Promise<DiffLayer> {
  const up = typeof upper === 'string' ? await treeSource(upper) : upper;
  const compression = opts.compression ?? 'gzip';
  const raw = new Digester('sha256');
  const packed = new Digester('sha256');
  const tapRaw = new Transform({ transform(c: Buffer, _e, cb) { raw.update(c); cb(null, c); } });
  const isWriter = typeof (out as Writer).commit === 'function' && typeof (out as Writer).digest === 'function';
  const tapPacked = new Transform({ transform(c: Buffer, _e, cb) { packed.update(c); cb(null, c); } });
  // A content Writer is committed below; a plain stream is ended, and flushed, before this returns.
  const sink = isWriter
    ? new Writable({ highWaterMark: 1 << 20, write(c: Buffer, _e, cb) { (out as Writer).write(c).then(() => cb(), cb); } })
    : (out as NodeJS.WritableStream);
  try {
    await pipeline(diffTarStream(changes, up, opts), tapRaw, compressStream(compression, opts.level), tapPacked, sink, { signal: opts.signal });
  } catch (e) {
    // commit releases a Writer on success; a failed layer must not keep its ref locked either.
    if (isWriter) await (out as Writer).close().catch(() => undefined);
    throw e;
  }
  const diffID = raw.digest();
  const digest = packed.digest();
  if (isWriter) {
    try {
      await (out as Writer).commit(packed.size, digest, { labels: { [UNCOMPRESSED]: diffID } });
    } catch (e) {
      if (!isStowageError(e, 'AlreadyExists')) throw e;
    }
  }
  return { digest, diffID, size: packed.size, mediaType: MEDIA[compression] };
}
