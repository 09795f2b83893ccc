/**
 * Private working state of one process: directories under `<root>/tmp` (a checked-out build layer, an
 * unpacked build context) and working containers (a build step's), named `<purpose>-<pid>-<random>` so
 * that what a crashed process left behind can be told from what a live process (this one or another
 * sharing the root) still uses, and removed when a store opens.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pidExists } from '../owners/index.js';

const NAME_RE = /^[a-z][a-z0-9-]*?-(\d+)-[0-9a-f]{16}$/;

/** A fresh name for `purpose` (lower-case words joined by `-`) that carries this process's id. */
export function scratchName(purpose: string): string {
  return `${purpose}-${process.pid}-${randomBytes(8).toString('hex')}`;
}

/** A fresh directory path (not created) for `purpose`. */
export function scratchPath(root: string, purpose: string): string {
  const dir = path.join(root, 'tmp');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return path.join(dir, scratchName(purpose));
}

/** Whether `name` is a scratch name whose process is gone. */
export function isStaleScratch(name: string): boolean {
  const m = NAME_RE.exec(name);
  return m !== null && !pidExists(Number(m[1]));
}

/** Removes scratch directories (and their spool and override sidecar files) whose process is gone. Returns how many. */
export function sweepScratch(root: string): number {
  const dir = path.join(root, 'tmp');
  let names: string[];
  try { names = fs.readdirSync(dir); } catch { return 0; }
  let n = 0;
  for (const name of names) {
    if (!isStaleScratch(name.replace(/\.(tar|stowage-override)$/, ''))) continue;
    fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    n++;
  }
  return n;
}
