#!/usr/bin/env node
// Builds dist/: tsc emits the library (JavaScript + declarations), then esbuild bundles the command
// line from tsc's output into dist/cli/bundle/ with code splitting. A command then loads one file
// plus the chunks it uses instead of ~150 separate modules, which is most of `stowage`'s start-up
// time on Node 20 (module resolution and compilation, measured with --cpu-prof).
// tsc still emits when some file has type errors: the bundle is made anyway, the exit code says so.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
const entry = path.join(root, 'dist', 'cli', 'main.js');
if (!fs.existsSync(entry)) process.exit(tsc.status || 1);

const outdir = path.join(root, 'dist', 'cli', 'bundle');
fs.rmSync(outdir, { recursive: true, force: true });
await build({
  // The thread scripts sit beside the chunks, where their `new URL('./apply-worker.js',
  // import.meta.url)` finds them (src/snapshots/apply-pool.ts, checkout-threads.ts).
  entryPoints: {
    main: entry,
    'apply-worker': path.join(root, 'dist', 'snapshots', 'apply-worker.js'),
    'checkout-worker': path.join(root, 'dist', 'snapshots', 'checkout-worker.js'),
  },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
// A clean build is stamped: the end-to-end tests' ensureBuilt() (test/cli/binary.ts) then knows
// dist/ matches src/ and never rebuilds under a binary that other test files are running.
if (tsc.status === 0) fs.writeFileSync(path.join(root, 'dist', '.build-stamp'), `${new Date().toISOString()}\n`);
process.exit(tsc.status ?? 1);
