/**
 * A tree COPY and ADD read from: the build context (with `.dockerignore` applied, owned by root as the
 * docker CLI sends it) or the root filesystem of a stage or image (`COPY --from`). Paths are resolved
 * inside the tree, symlinks included, as docker's FollowSymlinkInScope does.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../errors/index.js';
import { isIgnored, mayHoldExceptions, parseDockerignore, type IgnorePattern } from './dockerignore.js';
import { pathHash } from './source-hash.js';
import { loadOverrides, type OwnerOverride } from '../snapshots/index.js';

export interface SourceEntry {
  /** Path relative to the tree root, `/`-separated, no leading `/` ('' for the root). */
  rel: string;
  abs: string;
  st: fs.Stats;
  uid: number;
  gid: number;
  /** Permission bits (with setuid/setgid/sticky), the recorded ones for a tree checked out rootless. */
  mode: number;
  /**
   * Where it comes from, which decides how docker hashes it: a context file is hashed from the tar the
   * client sent (permission bits, no owner names); an image file from its stat (file type bits, owner names).
   */
  origin: 'context' | 'image';
  /** Owner names in the hash: none for the context; for an image, the names of the machine doing the build (dockerd's Go runtime looks them up on the host: a docker quirk, kept for equal hashes). */
  uname: string;
  gname: string;
}

/** id → name from a passwd/group file (first entry wins). */
function idNames(file: string): Map<number, string> {
  const m = new Map<number, string>();
  let text = '';
  try { text = fs.readFileSync(file, 'utf8'); } catch { return m; }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && /^\d+$/.test(f[2]!) && !m.has(Number(f[2]))) m.set(Number(f[2]), f[0]!);
  }
  return m;
}

export class BuildSource {
  private readonly included = new Map<string, fs.Stats>();
  /** Directory → its visible children (also directories only present because something below them is). */
  private kids?: Map<string, string[]>;

  private users?: Map<number, string>;
  private groups?: Map<number, string>;

  private constructor(readonly root: string, private readonly asRoot: boolean, private readonly overrides = new Map<string, OwnerOverride>()) {}

  /**
   * The build context directory. Files matched by `.dockerignore` are left out as the docker CLI leaves
   * them out of the context it sends (the Dockerfile and .dockerignore too, when they match).
   */
  static context(dir: string): BuildSource {
    const root = path.resolve(dir);
    const st = fs.statSync(root, { throwIfNoEntry: false });
    if (!st?.isDirectory()) throw new InvalidArgumentError(`unable to prepare context: path ${JSON.stringify(dir)} not found`, { path: dir });
    const ignoreFile = path.join(root, '.dockerignore');
    const patterns = fs.existsSync(ignoreFile) ? parseDockerignore(fs.readFileSync(ignoreFile, 'utf8')) : [];
    const s = new BuildSource(root, true);
    s.index('', patterns);
    return s;
  }

  /** A root filesystem (a checked-out stage or image): everything, owners as stored (or as recorded, when checked out rootless). */
  static async tree(dir: string): Promise<BuildSource> {
    const s = new BuildSource(path.resolve(dir), false, await loadOverrides(path.resolve(dir)));
    s.index('', []);
    return s;
  }

  private index(relDir: string, patterns: readonly IgnorePattern[]): void {
    let names: string[];
    try { names = fs.readdirSync(path.join(this.root, relDir)); } catch { return; }
    names.sort();
    for (const n of names) {
      const rel = relDir === '' ? n : `${relDir}/${n}`;
      const st = fs.lstatSync(path.join(this.root, rel));
      const ignored = patterns.length > 0 && isIgnored(patterns, rel);
      if (!ignored) this.included.set(rel, st);
      // An excluded directory is still entered when an exception may bring back something inside it.
      if (st.isDirectory() && (!ignored || mayHoldExceptions(patterns, rel))) this.index(rel, patterns);
    }
  }

  private tree(): Map<string, string[]> {
    if (this.kids) return this.kids;
    const kids = new Map<string, Set<string>>();
    for (const k of this.included.keys()) {
      let child = k;
      for (;;) {
        const i = child.lastIndexOf('/');
        const parent = i < 0 ? '' : child.slice(0, i);
        let set = kids.get(parent);
        if (!set) { set = new Set(); kids.set(parent, set); }
        if (set.has(child)) break;
        set.add(child);
        if (parent === '') break;
        child = parent;
      }
    }
    this.kids = new Map([...kids].map(([k, v]) => [k, [...v].sort()]));
    return this.kids;
  }

  /** Whether the tree holds `rel` (after .dockerignore). */
  has(rel: string): boolean { return rel === '' || this.included.has(rel) || this.tree().has(rel); }

  /** The entry at `rel` (not following a final symlink), or undefined when absent or excluded. */
  entry(rel: string): SourceEntry | undefined {
    if (!this.has(rel)) return undefined;
    const abs = path.join(this.root, rel);
    const st = this.included.get(rel) ?? fs.lstatSync(abs, { throwIfNoEntry: false });
    if (!st) return undefined;
    if (this.asRoot) return { rel, abs, st, uid: 0, gid: 0, mode: st.mode & 0o7777, origin: 'context', uname: '', gname: '' };
    this.users ??= idNames('/etc/passwd');
    this.groups ??= idNames('/etc/group');
    const o = this.overrides.get(rel);
    const uid = o?.uid ?? st.uid;
    const gid = o?.gid ?? st.gid;
    return { rel, abs, st, uid, gid, mode: o?.mode ?? (st.mode & 0o7777), origin: 'image', uname: this.users.get(uid) ?? '', gname: this.groups.get(gid) ?? '' };
  }

  /** Included children of a directory, sorted by name. */
  children(relDir: string): string[] { return this.tree().get(relDir) ?? []; }

  /** `relDir` and everything below it, depth first, names sorted (Go's filepath.Walk order). */
  walk(relDir: string): SourceEntry[] {
    const out: SourceEntry[] = [];
    const visit = (rel: string): void => {
      const e = this.entry(rel);
      if (!e) return;
      out.push(e);
      if (e.st.isDirectory()) for (const c of this.children(rel)) visit(c);
    };
    visit(relDir);
    return out;
  }

  /**
   * The per-path hash docker's classic builder uses for this tree. The context's hashes come from the
   * tar the client sent: a symlink counts as the file it points to (resolved inside the context), and a
   * directory the tar holds no entry for (excluded, with an exception below it) counts as its path.
   */
  hashOf(e: SourceEntry): string {
    if (e.origin === 'context') {
      if (!this.included.has(e.rel)) return e.rel;
      if (e.st.isSymbolicLink()) {
        const target = this.resolve(e.rel);
        const t = this.included.has(target) ? this.entry(target) : undefined;
        return t ? pathHash(t) : target;
      }
    }
    return pathHash(e);
  }

  /** Every included path, sorted. */
  paths(): string[] { return [...this.included.keys()].sort(); }

  /**
   * Resolves a path as written in the Dockerfile to a path inside the tree, following symlinks but
   * never leaving the root (`..` and absolute link targets stay inside).
   */
  resolve(p: string): string {
    let parts = path.posix.normalize('/' + p).split('/').filter((x) => x !== '' && x !== '.');
    const done: string[] = [];
    let hops = 0;
    while (parts.length > 0) {
      const part = parts.shift()!;
      if (part === '..') { done.pop(); continue; }
      const rel = [...done, part].join('/');
      const st = fs.lstatSync(path.join(this.root, rel), { throwIfNoEntry: false });
      if (st?.isSymbolicLink()) {
        if (++hops > 255) throw new InvalidArgumentError(`too many links resolving ${p}`, { path: p });
        const target = fs.readlinkSync(path.join(this.root, rel));
        const rest = target.split('/').filter((x) => x !== '' && x !== '.');
        if (target.startsWith('/')) done.length = 0;
        parts = [...rest, ...parts];
        continue;
      }
      done.push(part);
    }
    return done.join('/');
  }
}
