/**
 * Archives written by buildah (containers/image's docker-archive and oci-archive writers, the ones
 * podman uses too): an image built from scratch with buildah loads with its name, label and tree.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage, type Stowage } from '../../src/index.js';
import { describeTree } from '../snapshots/helpers.js';

const hasBuildah = process.geteuid?.() === 0 && spawnSync('buildah', ['--version']).status === 0;
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
