/**
 * Runs the BUILT `stowage` binary (node bin/stowage.js → dist/cli/bundle/main.js) for end-to-end tests.
 * `ensureBuilt()` builds once (npm run build: tsc, then the CLI bundle) when dist is missing or older than src,
 * under a lock directory so parallel test files do not build over each other.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
export const REPO = path.resolve(import.meta.dirname, '..', '..');
export const BIN = path.join(REPO, 'bin', 'stowage.js');
const ENTRY = path.join(REPO, 'dist', 'cli', 'bundle', 'main.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : fs.statSync(full).mtimeMs);
  }
  return newest;
}

/**
 * Written after a whole build (by scripts/build.mjs after a clean build, and here). The entry file alone does not say the build is over: while another test
 * file's tsc still emits, dist/cli/main.js can be new and the modules it imports not yet written.
 */
const STAMP = path.join(REPO, 'dist', '.build-stamp');

function isFresh(): boolean {
  return fs.existsSync(ENTRY) && fs.existsSync(STAMP) && fs.statSync(STAMP).mtimeMs >= newestMtime(path.join(REPO, 'src'));
}

export async function ensureBuilt(): Promise<void> {
  if (isFresh()) return;
  const lock = path.join(REPO, 'dist', '.build-lock');
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try { fs.mkdirSync(lock); break; } catch {
      // Another test file is building (or a stale lock from a killed run: take it after 2 minutes).
      if (isFresh()) return;
      if (Date.now() > deadline) { fs.rmSync(lock, { recursive: true, force: true }); continue; }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    if (isFresh()) return;
    // tsc still emits (and the bundle is still made) when some other folder has type errors; the
    // entry file is what matters here.
    await execFileP(process.execPath, [path.join(REPO, 'scripts', 'build.mjs')], { cwd: REPO }).catch(() => undefined);
    if (!fs.existsSync(ENTRY)) throw new Error('build failed: dist/cli/bundle/main.js missing');
    fs.writeFileSync(STAMP, `${new Date().toISOString()}\n`);
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

export interface RunResult { code: number; stdout: string; stderr: string }

export interface RunOptions { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number }

/** Runs `stowage ARGS...` and collects its output. */
export function stowage(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}
