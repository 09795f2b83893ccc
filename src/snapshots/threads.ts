// Where the snapshot floor's thread scripts are, and how many threads a pool gets.
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

/**
 * `script` when it exists as a file: not where its module was not loaded from one (a bundler may put
 * it anywhere), nor from the TypeScript source (the tests), where the work then runs in the calling thread.
 */
export function threadScript(script: URL): URL | undefined {
  try { return fs.existsSync(fileURLToPath(script)) ? script : undefined; } catch { return undefined; }
}

/** The environment variable `name` when set (0: none, work in the calling thread), else `fallback` of the cores (one per core, at most 4). */
export function threadCount(name: string, fallback = (cores: number) => Math.min(4, cores)): number {
  const env = process.env[name];
  const n = env !== undefined && env !== '' ? Number(env) : fallback(os.availableParallelism());
  return Number.isInteger(n) && n > 0 ? n : 0;
}
