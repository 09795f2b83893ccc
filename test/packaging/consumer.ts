/**
 * A fresh project outside the source tree that installs the packed tarball the way a user's project
 * does, offline. npm resolves versions from registry metadata that the local npm cache does not hold
 * (it holds the tarballs), so the project gets a lockfile made from this repository's: the same
 * versions and integrity hashes, only the packages the project's dependencies reach. `npm ci --offline`
 * then installs from the cache alone.
 *
 * The two native modules (better-sqlite3, zstd-napi) compile from source on install, about two minutes
 * on two cores. By default the install skips scripts and copies their compiled `build/` directories from
 * this repository's node_modules (the same versions, the same Node): set STOWAGE_PACK_NATIVE_BUILD=1 to
 * compile them for real.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  [k: string]: unknown;
}

const NATIVE = ['better-sqlite3', 'zstd-napi'];

/** The lockfile location a dependency `name` of the package at `from` resolves to (node's lookup upwards). */
function resolveIn(packages: Record<string, LockEntry>, from: string, name: string): string | undefined {
  for (let at = from; ; ) {
    const candidate = `${at ? `${at}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!at) return undefined;
    const i = at.lastIndexOf('/node_modules/');
    at = i < 0 ? '' : at.slice(0, i);
  }
}

/** The lockfile entries reachable from `roots` (names at the top level), with their own dependencies. */
function reachable(packages: Record<string, LockEntry>, roots: string[]): Set<string> {
  const seen = new Set<string>();
  const queue = roots.map((r) => `node_modules/${r}`);
  while (queue.length > 0) {
    const loc = queue.pop()!;
    if (seen.has(loc) || !packages[loc]) continue;
    seen.add(loc);
    const e = packages[loc]!;
    for (const name of Object.keys({ ...e.dependencies, ...e.optionalDependencies, ...e.peerDependencies })) {
      const to = resolveIn(packages, loc, name);
      if (to) queue.push(to);
    }
  }
  return seen;
}

export interface Consumer { dir: string; install: { ms: number } }

/**
 * Makes `dir` a project depending on the tarball plus `devTools` (names of this repository's own
 * devDependencies, at the same versions), and installs it offline.
 */
export async function makeConsumer(repo: string, tarball: string, dir: string, devTools: string[]): Promise<Consumer> {
  const repoPkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };
  const repoLock = JSON.parse(fs.readFileSync(path.join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  fs.mkdirSync(dir, { recursive: true });
  const local = `file:${path.relative(dir, tarball)}`;
  const dependencies = { [repoPkg.name]: local };
  const devDependencies = Object.fromEntries(devTools.map((t) => [t, repoPkg.devDependencies[t]!]));
  const pkg = { name: 'stowage-consumer', version: '1.0.0', private: true, type: 'module', dependencies, devDependencies };
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));

  const keep = reachable(repoLock.packages, [...Object.keys(repoPkg.dependencies), ...devTools]);
  const packages: Record<string, LockEntry> = { '': { name: pkg.name, version: pkg.version, dependencies, devDependencies } };
  packages[`node_modules/${repoPkg.name}`] = { version: repoPkg.version, resolved: local, license: 'Apache-2.0', dependencies: repoPkg.dependencies, bin: { stowage: 'bin/stowage.js' } };
  for (const loc of [...keep].sort()) packages[loc] = repoLock.packages[loc]!;
  fs.writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify({ name: pkg.name, version: pkg.version, lockfileVersion: 3, requires: true, packages }, null, 2));

  const nativeBuild = process.env.STOWAGE_PACK_NATIVE_BUILD === '1';
  const started = performance.now();
  await run('npm', ['ci', '--offline', '--no-audit', '--no-fund', ...(nativeBuild ? [] : ['--ignore-scripts'])], { cwd: dir, timeout: 600_000, maxBuffer: 16 << 20 });
  if (!nativeBuild) {
    for (const name of NATIVE) {
      fs.cpSync(path.join(repo, 'node_modules', name, 'build'), path.join(dir, 'node_modules', name, 'build'), { recursive: true });
    }
  }
  return { dir, install: { ms: performance.now() - started } };
}
