import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/**
 * Rootless ownership. When the process cannot chown (not root, or forced rootless), the owner and
 * permission bits an archive asked for are kept as `uid:gid:mode` (mode in octal, permission bits
 * only) in the `user.stowage.override` xattr of the file (like containers/storage's
 * `user.containers.override_stat`). Symlinks cannot carry user.* xattrs, and some file systems
 * refuse them, so those records go to a sidecar JSON file next to the tree (`<tree>.stowage-override`).
 * The sidecar also marks a tree as "has overrides", so readers skip the xattr scan for trees
 * applied as root.
 */
export const OVERRIDE_XATTR = 'user.stowage.override';

export interface OwnerOverride { uid: number; gid: number; mode: number }

export function formatOverride(o: OwnerOverride): string {
  return `${o.uid}:${o.gid}:0${(o.mode & 0o7777).toString(8)}`;
}

export function parseOverride(s: string): OwnerOverride | undefined {
  const m = /^(\d+):(\d+):(0?[0-7]+)$/.exec(s.trim());
  if (!m) return undefined;
  return { uid: Number(m[1]), gid: Number(m[2]), mode: parseInt(m[3]!, 8) & 0o7777 };
}

export function sidecarPath(treeDir: string): string {
  return path.join(path.dirname(treeDir), path.basename(treeDir) + '.stowage-override');
}

interface Sidecar {
  version: 1;
  /** Overrides of files and dirs are in xattrs (else all are in `entries`). */
  xattrs: boolean;
  /** Some entries carry user.* (or security.capability) xattrs worth carrying into checkouts and diffs. */
  userXattrs?: boolean;
  entries: Record<string, string>;
}

/** True when the process can chown arbitrary ids (root), unless the caller forces rootless behaviour. */
export function isPrivileged(forceRootless?: boolean): boolean {
  if (forceRootless) return false;
  return typeof process.geteuid === 'function' && process.geteuid() === 0;
}

/** getfattr/setfattr quoting of a file name: backslash and control bytes as \ooo. */
function quoteName(rel: string): string {
  let out = '';
  for (const ch of rel) {
    const code = ch.charCodeAt(0);
    out += ch === '\\' || code < 0x20 || code === 0x7f ? '\\' + code.toString(8).padStart(3, '0') : ch;
  }
  return out;
}

function unquoteName(s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else bytes.push(b);
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Sets many xattrs in one `setfattr --restore` process (Node has no xattr API; one process per file
 * would cost ~1 ms each). Paths are relative to `root`; callers pass only non-symlink paths they
 * created inside a private tree. Returns false when setfattr is missing or refused.
 */
export async function writeXattrs(root: string, attrs: Map<string, Record<string, Buffer>>): Promise<boolean> {
  if (attrs.size === 0) return true;
  let dump = '';
  for (const [rel, kv] of attrs) {
    // Re-check at write time: the final component must not have become a symlink.
    const st = fs.lstatSync(path.join(root, rel), { throwIfNoEntry: false });
    if (!st || st.isSymbolicLink()) continue;
    dump += `# file: ./${quoteName(rel)}\n`;
    for (const [k, v] of Object.entries(kv)) dump += `${k}=0x${v.toString('hex')}\n`;
    dump += '\n';
  }
  const file = path.join(path.dirname(root), `.xattr-${process.pid}-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(file, dump);
  try {
    await execFileP('setfattr', ['-h', `--restore=${file}`], { cwd: root, maxBuffer: 1 << 20 });
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** Reads every xattr matching `pattern` (a getfattr -m regex) under `root`, keyed by relative path. */
export async function readXattrs(root: string, pattern: string): Promise<Map<string, Record<string, Buffer>>> {
  const out = new Map<string, Record<string, Buffer>>();
  let stdout: string;
  try {
    ({ stdout } = await execFileP('getfattr', ['-R', '-P', '-d', '-m', pattern, '-e', 'hex', '.'], { cwd: root, maxBuffer: 1 << 30 }));
  } catch (e) {
    stdout = (e as { stdout?: string }).stdout ?? '';
  }
  for (const [name, kv] of parseGetfattrDump(stdout)) out.set(name.startsWith('./') ? name.slice(2) : name, kv);
  return out;
}

/**
 * Parses `getfattr -d` output: a `# file: <name>` line (name quoted as getfattr quotes it), then one
 * `key=value` line per xattr, value as `0x<hex>` (with `-e hex`) or a quoted string.
 */
export function parseGetfattrDump(stdout: string): Map<string, Record<string, Buffer>> {
  const out = new Map<string, Record<string, Buffer>>();
  let cur: Record<string, Buffer> | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      cur = {};
      out.set(unquoteName(line.slice(8)), cur);
    } else if (cur && !line.startsWith('#') && line.includes('=')) {
      const i = line.indexOf('=');
      const v = line.slice(i + 1);
      cur[line.slice(0, i)] = v.startsWith('0x') ? Buffer.from(v.slice(2), 'hex') : Buffer.from(v.replace(/^"|"$/g, ''));
    }
  }
  return out;
}

/**
 * Persists overrides for a tree: xattrs for files and directories (one setfattr run), the sidecar for
 * symlinks and for everything when xattrs are unavailable. Always writes the sidecar (it marks the tree).
 */
export async function saveOverrides(treeDir: string, overrides: Map<string, OwnerOverride & { symlink?: boolean }>, extraXattrs = new Map<string, Record<string, Buffer>>(), opts: { noXattrs?: boolean } = {}): Promise<{ xattrs: boolean }> {
  const attrs = new Map<string, Record<string, Buffer>>(extraXattrs);
  const side: Record<string, string> = {};
  for (const [rel, o] of overrides) {
    if (o.symlink || opts.noXattrs) { side[rel] = formatOverride(o); continue; }
    attrs.set(rel, { ...(attrs.get(rel) ?? {}), [OVERRIDE_XATTR]: Buffer.from(formatOverride(o)) });
  }
  let xattrs = !opts.noXattrs && await writeXattrs(treeDir, attrs);
  if (!xattrs) {
    xattrs = false;
    for (const [rel, o] of overrides) side[rel] = formatOverride(o);
  }
  const userXattrs = [...extraXattrs.values()].some((kv) => Object.keys(kv).some((k) => k !== OVERRIDE_XATTR));
  if (overrides.size > 0 || userXattrs || fs.existsSync(sidecarPath(treeDir))) {
    const sc: Sidecar = { version: 1, xattrs, entries: side };
    if (userXattrs && xattrs) sc.userXattrs = true;
    fs.writeFileSync(sidecarPath(treeDir), JSON.stringify(sc));
  }
  return { xattrs };
}

/** True when the tree was written rootless and carries ownership overrides. */
export function hasOverrides(treeDir: string): boolean {
  return fs.existsSync(sidecarPath(treeDir));
}

/** Pattern of the xattrs a layer carries across checkout and diff (containerd keeps only security.capability). */
export const CARRIED_XATTRS = '^(user\\.|security\\.capability$)';

/** True when the tree's sidecar says some entries carry xattrs worth copying. */
export function treeHasXattrs(treeDir: string): boolean {
  try { return (JSON.parse(fs.readFileSync(sidecarPath(treeDir), 'utf8')) as Sidecar).userXattrs === true; } catch { return false; }
}

/** The carried xattrs of a tree (one getfattr walk), minus our override records. */
export async function loadCarriedXattrs(treeDir: string): Promise<Map<string, Record<string, Buffer>>> {
  const all = await readXattrs(treeDir, CARRIED_XATTRS);
  for (const [rel, kv] of all) {
    delete kv[OVERRIDE_XATTR];
    if (Object.keys(kv).length === 0) all.delete(rel);
  }
  return all;
}

/** All overrides recorded for a tree (xattrs and sidecar), keyed by relative path. */
export async function loadOverrides(treeDir: string): Promise<Map<string, OwnerOverride>> {
  const out = new Map<string, OwnerOverride>();
  let sc: Sidecar;
  try { sc = JSON.parse(fs.readFileSync(sidecarPath(treeDir), 'utf8')) as Sidecar; } catch { return out; }
  if (sc.xattrs) {
    const x = await readXattrs(treeDir, '^user\\.stowage\\.override$');
    for (const [rel, kv] of x) {
      const v = kv[OVERRIDE_XATTR];
      const o = v && parseOverride(v.toString());
      if (o) out.set(rel, o);
    }
  }
  for (const [rel, s] of Object.entries(sc.entries)) {
    const o = parseOverride(s);
    if (o) out.set(rel, o);
  }
  return out;
}

/**
 * What one file of a layer carries besides its bytes (for a copy-up into an upper layer): its real
 * owner and mode when the layer was applied rootless (the sidecar entry, else the override xattr) and
 * its carried xattrs (user.*, security.capability). One getfattr call: copy-ups are rare.
 */
export function fileRecords(layerDir: string, rel: string, file: string): { override?: OwnerOverride | undefined; xattrs?: Record<string, Buffer> } {
  const out: { override?: OwnerOverride | undefined; xattrs?: Record<string, Buffer> } = {};
  try {
    const side = JSON.parse(fs.readFileSync(sidecarPath(layerDir), 'utf8')) as Partial<Sidecar>;
    const e = side.entries?.[rel];
    if (e !== undefined) out.override = parseOverride(e);
  } catch { /* no sidecar: the layer was applied as root */ }
  let dump = '';
  try {
    dump = execFileSync('getfattr', ['-h', '--absolute-names', '-d', '-e', 'hex', '-m', CARRIED_XATTRS, file], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  } catch { return out; }
  for (const kv of parseGetfattrDump(dump).values()) {
    for (const [k, val] of Object.entries(kv)) {
      if (k === OVERRIDE_XATTR) out.override ??= parseOverride(val.toString());
      else (out.xattrs ??= {})[k] = val;
    }
  }
  return out;
}
