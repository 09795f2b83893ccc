// How the built binary ends: right after the command, output flushed; a bookkeeping-only command
// without closing the store's database (see MainOptions.exiting). Its commits must reach the next
// process all the same, and no output may be cut short by the exit.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage } from '../../src/images/index.js';
import { BIN, REPO, ensureBuilt, stowage } from './binary.js';

let tmp: string;
let root: string;

beforeAll(async () => {
  await ensureBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-exit-'));
  root = path.join(tmp, 'store');
  const src = path.join(tmp, 'src');
  fs.mkdirSync(src);
  for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(src, `f${i}`), randomBytes(64 << 10));
  execFileSync('tar', ['-cf', path.join(tmp, 'rootfs.tar'), '-C', src, '.']);
}, 120_000);

afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

/** stdout of the binary as bytes. */
function bytesOf(args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    const parts: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => parts.push(c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(parts)) : reject(new Error(`exit ${code}`))));
  });
}

describe('the stowage binary on its way out', () => {
  it('a command that records images closes the database (its records are on disk); a checkout leaves its bookkeeping in the WAL, where the next process reads it', async () => {
    const wal = path.join(root, 'metadata.db-wal');
    const walBytes = (): number => (fs.existsSync(wal) ? fs.statSync(wal).size : 0);
    const imported = await stowage(['--root', root, 'import', path.join(tmp, 'rootfs.tar'), 'exit-test:v1']);
    expect(imported.code, imported.stderr).toBe(0);
    expect(walBytes()).toBe(0); // checkpointed at close
    const co = await stowage(['--root', root, 'checkout', 'exit-test:v1', path.join(tmp, 'co')]);
    expect(co.code, co.stderr).toBe(0);
    expect(fs.readdirSync(path.join(tmp, 'co'))).toHaveLength(40);
    expect(walBytes()).toBeGreaterThan(0); // its lease, made and dropped, not checkpointed (nor fsynced) at exit
    const listed = await stowage(['--root', root, 'images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(listed.stdout.trim()).toBe('exit-test:v1');
    const store = await openStowage({ root });
    expect((await store.images()).flatMap((i) => i.RepoTags)).toEqual(['exit-test:v1']);
    await store.close();
    expect(walBytes()).toBe(0);
  }, 60_000);

  it('writes all of a large output before it exits', async () => {
    const file = path.join(tmp, 'saved.tar');
    expect((await stowage(['--root', root, 'save', '-o', file, 'exit-test:v1'])).code).toBe(0);
    const piped = await bytesOf(['--root', root, 'save', 'exit-test:v1']);
    expect(piped.length).toBeGreaterThan(2 << 20);
    expect(piped.equals(fs.readFileSync(file))).toBe(true);
  }, 60_000);
});

describe('the stowage binary as users start it', () => {
  it('runs through sh as node with its V8 flag, in the same process, keeping arguments and exit codes', async () => {
    const odd = path.join(tmp, `a b 'c' "d" $HOME`);
    const child = spawn(BIN, ['--root', odd, 'load'], { cwd: tmp, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const code = new Promise<number | null>((resolve) => child.on('close', resolve));
    // `load` waits for its archive on stdin: meanwhile the process is node itself (sh exec'd it).
    let cmdline: string[] = [];
    for (let i = 0; i < 200 && !cmdline.includes(BIN); i++) {
      await new Promise((r) => setTimeout(r, 25));
      cmdline = fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
    }
    expect(path.basename(cmdline[0]!)).toMatch(/^node/);
    expect(cmdline).toContain('--initial-old-space-size=64');
    expect(cmdline.slice(cmdline.indexOf(BIN) + 1, -1)).toEqual(['--root', odd, 'load']);
    child.stdin.end('not an archive');
    expect(await code).toBe(1);
    expect(stderr).toMatch(/archive|tar/i);
    expect(fs.existsSync(odd)).toBe(true);
  }, 60_000);
});
