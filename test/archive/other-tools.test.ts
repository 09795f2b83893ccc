/**
 * Archives written by buildah and podman (containers/image's docker-archive and oci-archive writers):
 * an image built with buildah loads with its name, label and tree; podman's multi-image docker-archive
 * loads every name; podman loads what stowage saves.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage, type Stowage } from '../../src/index.js';
import { describeTree } from '../snapshots/helpers.js';

const hasBuildah = process.geteuid?.() === 0 && spawnSync('buildah', ['--version']).status === 0;
const hasPodman = process.geteuid?.() === 0 && spawnSync('podman', ['--version']).status === 0;
let work: string;
let store: Stowage;
const NAME = 'localhost/bh/img:1';

function buildah(args: string[]): string {
  return execFileSync('buildah', ['--root', path.join(work, 'root'), '--runroot', path.join(work, 'run'), '--storage-driver', 'vfs', ...args], { cwd: work }).toString().trim();
}

beforeAll(async () => {
  if (!hasBuildah) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-buildah-'));
  fs.mkdirSync(path.join(work, 'ctx/etc'), { recursive: true });
  fs.writeFileSync(path.join(work, 'ctx/etc/conf'), 'a=1\n');
  fs.writeFileSync(path.join(work, 'ctx/etc/gone'), 'x\n');
  const c = buildah(['from', 'scratch']);
  buildah(['copy', c, 'ctx/etc', '/etc']);
  buildah(['commit', '-q', c, 'localhost/bh/base:1']);
  // A second layer deleting a file: buildah writes the whiteout.
  const c2 = buildah(['from', 'localhost/bh/base:1']);
  const mnt = buildah(['mount', c2]);
  fs.rmSync(path.join(mnt, 'etc/gone'));
  fs.writeFileSync(path.join(mnt, 'etc/new'), 'new\n');
  buildah(['umount', c2]);
  buildah(['config', '--label', 'made=buildah', '--cmd', '/bin/true', c2]);
  buildah(['commit', '-q', c2, NAME]);
  buildah(['push', '-q', NAME, `oci-archive:${path.join(work, 'o.tar')}:${NAME}`]);
  buildah(['push', '-q', NAME, `docker-archive:${path.join(work, 'd.tar')}:${NAME}`]);
  store = await openStowage({ root: path.join(work, 'store') });
}, 120_000);

afterAll(async () => {
  await store?.close();
  if (work) {
    spawnSync('buildah', ['--root', path.join(work, 'root'), '--runroot', path.join(work, 'run'), '--storage-driver', 'vfs', 'rm', '--all']);
    fs.rmSync(work, { recursive: true, force: true });
  }
});

describe.skipIf(!hasBuildah)('buildah archives', () => {
  it('oci-archive: and docker-archive: both load with the name, label and tree (whiteout applied)', async () => {
    const trees = [];
    for (const file of ['o.tar', 'd.tar']) {
      const s = await openStowage({ root: path.join(work, `store-${file}`) });
      const r = await s.load(fs.createReadStream(path.join(work, file)));
      expect(r.images.map((i) => i.name)).toEqual([NAME]);
      const ins = await s.inspect(NAME);
      expect(ins.Config.Labels).toMatchObject({ made: 'buildah' });
      expect(ins.RootFS.Layers).toHaveLength(2);
      const dir = path.join(work, `tree-${file}`);
      await s.checkout(NAME, dir);
      const t = await describeTree(dir);
      expect(Object.keys(t).sort()).toEqual(['etc', 'etc/conf', 'etc/new']);
      trees.push(t);
      expect((await s.check()).ok).toBe(true);
      await s.close();
    }
    expect(trees[0]).toEqual(trees[1]);
  });
});

describe.skipIf(!hasPodman)('podman archives', () => {
  let dir: string;
  const podman = (args: string[]) => execFileSync('podman', [
    '--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), '--storage-driver', 'vfs',
    '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', ...args,
  ], { cwd: dir }).toString();
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-podman-'));
    fs.mkdirSync(path.join(dir, 'rootfs/etc'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'rootfs/etc/pm'), 'pm\n');
    execFileSync('tar', ['-C', path.join(dir, 'rootfs'), '-cf', path.join(dir, 'r.tar'), '.']);
    podman(['import', '-q', 'r.tar', 'localhost/pm/img:1']);
    podman(['tag', 'localhost/pm/img:1', 'localhost/pm/other:2']);
  }, 60_000);
  afterAll(() => {
    if (!dir) return;
    spawnSync('podman', ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), '--storage-driver', 'vfs', 'rmi', '-a', '-f'], { stdio: 'ignore' });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('podman save (docker-archive with two names, oci-archive) loads; podman load takes stowage save', async () => {
    podman(['save', '-q', '--format', 'docker-archive', '-m', '-o', 'd.tar', 'localhost/pm/img:1', 'localhost/pm/other:2']);
    podman(['save', '-q', '--format', 'oci-archive', '-o', 'o.tar', 'localhost/pm/img:1']);
    const s = await openStowage({ root: path.join(dir, 'store') });
    try {
      const d = await s.load(fs.createReadStream(path.join(dir, 'd.tar')));
      expect(d.images.map((i) => i.name).sort()).toEqual(['localhost/pm/img:1', 'localhost/pm/other:2']);
      const o = await s.load(fs.createReadStream(path.join(dir, 'o.tar')));
      expect(o.images.map((i) => i.name)).toEqual(['localhost/pm/img:1']);
      const tree = path.join(dir, 'tree');
      await s.checkout('localhost/pm/other:2', tree);
      expect(fs.readFileSync(path.join(tree, 'etc/pm'), 'utf8')).toBe('pm\n');
      await s.tag('localhost/pm/img:1', 'localhost/pm/ours:3');
      await s.save(['localhost/pm/ours:3'], fs.createWriteStream(path.join(dir, 'ours.tar')));
    } finally {
      await s.close();
    }
    expect(podman(['load', '-q', '-i', 'ours.tar'])).toContain('localhost/pm/ours:3');
    expect(podman(['image', 'inspect', '--format', '{{.RootFS.Layers}}', 'localhost/pm/ours:3'])).toContain('sha256:');
  });
});
