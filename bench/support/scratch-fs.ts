// File systems for one tool's run in a benchmark.
//
// On this VM's long-lived ext4, creating files where a large tree was just deleted costs seconds of
// kernel time in the inode allocator (`recently_deleted`, `find_inode_bit` in `perf record -a -g`),
// so a benchmark that removes one tool's output and lets the next tool write in the same place
// measures the allocator, not the tools. Each run therefore gets a file system of its own: a sparse
// file on the disk, `mkfs.ext4`, loop-mounted (root only), unmounted and deleted afterwards. tmpfs is
// the second column: it hides per-file syscall costs that users pay on their disks.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unmountAll } from './pull-peers.js';

export type FsKind = 'ext4' | 'tmpfs';

export interface ScratchFs {
  /** An empty directory on the new file system. */
  dir: string;
  kind: FsKind;
  /** Unmounts and deletes everything (idempotent). */
  dispose(): void;
}

/** Fresh ext4 file systems need root (mount -o loop) and mkfs.ext4; otherwise only tmpfs is offered. */
export function canMakeExt4(): boolean {
  return process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v mkfs.ext4 && command -v losetup'], { stdio: 'ignore' }).status === 0;
}

/** The file-system kinds a benchmark runs on, disk first: `--fs=ext4,tmpfs` narrows it. */
export function benchFsKinds(argv = process.argv): FsKind[] {
  const given = argv.find((a) => a.startsWith('--fs='))?.slice('--fs='.length).split(',') as FsKind[] | undefined;
  const kinds = given ?? ['ext4', 'tmpfs'];
  if (kinds.includes('ext4') && !canMakeExt4()) {
    console.log('  (not root, or no mkfs.ext4/losetup: fresh ext4 file systems are not possible; running on tmpfs only)');
    return ['tmpfs'];
  }
  return kinds;
}

/** Where loop-file images live: a disk, never tmpfs (the file system inside must sit on a disk). */
function diskScratch(): string {
  for (const d of [process.env.STOWAGE_BENCH_DISK, '/var/tmp', os.tmpdir()]) {
    if (d && fs.existsSync(d) && !isTmpfs(d)) return d;
  }
  throw new Error('no disk-backed directory for loop images (set STOWAGE_BENCH_DISK)');
}

function isTmpfs(dir: string): boolean {
  const r = spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' });
  return r.stdout.trim() === 'tmpfs';
}

const live = new Set<ScratchFs>();
process.once('exit', () => { for (const s of live) s.dispose(); });

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
}

/**
 * A new, empty file system of `kind` for one run. ext4: a `sizeGiB` sparse file formatted with
 * mkfs.ext4 (lazy inode-table init, as a new disk has) and loop-mounted; tmpfs: a directory in
 * /dev/shm, which is already a fresh tmpfs for the allocator's purposes.
 */
export function freshFs(kind: FsKind, label: string, sizeGiB = 6): ScratchFs {
  if (kind === 'tmpfs') {
    const dir = fs.mkdtempSync(path.join('/dev/shm', `stowage-bench-${label}-`));
    const s: ScratchFs = { dir, kind, dispose: () => { unmountAll(dir); fs.rmSync(dir, { recursive: true, force: true }); live.delete(s); } };
    live.add(s);
    return s;
  }
  const holder = fs.mkdtempSync(path.join(diskScratch(), `stowage-bench-${label}-`));
  const image = path.join(holder, 'fs.img');
  const dir = path.join(holder, 'mnt');
  fs.mkdirSync(dir);
  let mounted = false;
  const s: ScratchFs = {
    dir,
    kind,
    dispose: () => {
      if (mounted) { unmountAll(dir); spawnSync('umount', [dir], { stdio: 'ignore' }); mounted = false; }
      fs.rmSync(holder, { recursive: true, force: true });
      live.delete(s);
    },
  };
  live.add(s);
  try {
    fs.writeFileSync(image, '');
    fs.truncateSync(image, sizeGiB * 1024 ** 3);
    run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=1,lazy_journal_init=1', image]);
    run('mount', ['-o', 'loop', image, dir]);
    mounted = true;
    return s;
  } catch (e) {
    s.dispose();
    throw e;
  }
}

/** Runs `fn` on a fresh file system and disposes of it afterwards, also on failure. */
export async function onFreshFs<T>(kind: FsKind, label: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const s = freshFs(kind, label);
  try {
    return await fn(s.dir);
  } finally {
    s.dispose();
  }
}
