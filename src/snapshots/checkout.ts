import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, fromSystemError } from '../errors/index.js';
import { walkTree } from './checkout-threads.js';
import { relinkShared, type OutOverride, type WalkSetup } from './checkout-walk.js';
import { isPrivileged, loadCarriedXattrs, loadOverrides, saveOverrides, sidecarPath, treeHasXattrs } from './ownership.js';
import type { SnapshotLayout } from './snapshotter.js';

export interface CheckoutOptions {
  /**
   * 'copy' (default): every regular file is copied, so the tree can be edited freely.
   * 'hardlink': regular files are hard links into the store: fast and free of extra space, but they
   * share inodes (mode, owner, content) with the committed layers, so writing to them in place would
   * corrupt the store. Use it only for read-only consumers (or editors that replace files by rename).
   */
  link?: 'hardlink' | 'copy';
  signal?: AbortSignal;
  rootless?: boolean;
}

/** `linked`: regular files made as hard links to the store ('hardlink'); `copied`: files copied ('copy'). */
export interface CheckoutResult { entries: number; linked: number; copied: number; skipped: { path: string; reason: string }[] }

/**
 * Materialises the merged tree of a snapshot (whiteouts and opaque directories applied) into the plain
 * directory `destDir` (missing or empty), preserving types, modes, owners (or their overrides when
 * rootless), mtimes and symlinks. Hard links between files of one layer stay hard links.
 * `source` is a snapshot key, or an explicit list of overlay-layout layer dirs (nearest first).
 * A big tree is filled by several threads (checkout-threads.ts).
 */
export async function checkout(sn: SnapshotLayout | null, source: string | string[], destDir: string, opts: CheckoutOptions = {}): Promise<CheckoutResult> {
  const layers = typeof source === 'string' ? sn!.layers(source) : source;
  const dest = path.resolve(destDir);
  if (fs.existsSync(dest) && fs.readdirSync(dest).length > 0) throw new InvalidArgumentError(`checkout destination ${destDir} is not empty`, { path: destDir });
  const stage = path.join(path.dirname(dest), `.stowage-checkout-${randomBytes(6).toString('hex')}`);
  fs.mkdirSync(stage, { mode: 0o755 });
  // Not setgid even in a setgid parent: entries made in it are then ours until chowned (DirTask.setgid).
  fs.chmodSync(stage, 0o755);
  const privileged = isPrivileged(opts.rootless);
  const setup: WalkSetup = {
    layers, stage, hardlink: opts.link === 'hardlink', privileged, umask: processUmask(),
    euid: process.geteuid?.() ?? 0, egid: process.getegid?.() ?? 0,
    overrides: await Promise.all(layers.map(async (l) => { const m = await loadOverrides(l); return m.size > 0 ? m : undefined; })),
    // xattrs of layers that carry some (marked at apply time), copied to the visible entries.
    xattrs: await Promise.all(layers.map((l) => (treeHasXattrs(l) ? loadCarriedXattrs(l) : undefined))),
  };
  try {
    const reports = await walkTree(setup, opts.signal);
    const res: CheckoutResult = { entries: 0, linked: 0, copied: -relinkShared(stage, reports), skipped: [] };
    const outOverrides = new Map<string, OutOverride>();
    const outXattrs = new Map<string, Record<string, Buffer>>();
    for (const r of reports) {
      res.entries += r.entries; res.linked += r.linked; res.copied += r.copied;
      res.skipped.push(...r.skipped);
      for (const [rel, o] of r.overrides) outOverrides.set(rel, o);
      // Buffers come back from a thread as plain Uint8Arrays.
      for (const [rel, x] of r.xattrs) outXattrs.set(rel, Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Buffer.from(v.buffer, v.byteOffset, v.byteLength)])));
    }
    if (outOverrides.size > 0 || outXattrs.size > 0) {
      const r = await saveOverrides(stage, outOverrides, outXattrs);
      if (!r.xattrs) for (const p of outXattrs.keys()) res.skipped.push({ path: p, reason: 'xattrs unsupported' });
    }
    if (fs.existsSync(dest)) fs.rmdirSync(dest);
    fs.renameSync(stage, dest);
    if (fs.existsSync(sidecarPath(stage))) fs.renameSync(sidecarPath(stage), sidecarPath(dest));
    return res;
  } catch (e) {
    // No thread writes into the stage any more (walkTree has settled).
    fs.rmSync(stage, { recursive: true, force: true });
    fs.rmSync(sidecarPath(stage), { force: true });
    throw fromSystemError(e, `checkout into ${destDir}`);
  }
}

/**
 * The process's umask, read where no thread can see it change: /proc/self/status on Linux.
 * process.umask() without an argument sets it to 0 for a moment to read it.
 */
function processUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return parseInt(m[1]!, 8);
  } catch { /* not Linux */ }
  return process.umask();
}
