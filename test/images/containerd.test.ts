// "As containerd does", checked against containerd 1.6 itself (a private daemon, native snapshotter):
// the unpacked tree of a pulled image, and what GC keeps and removes after one of two images sharing
// layers is removed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { openStowage } from '../../src/index.js';
import { openMetadata } from '../../src/metadata/index.js';
import { chainID } from '../../src/snapshots/index.js';
import type { Digest } from '../../src/oci/index.js';
import { ctr, startContainerd, unmountAll, type Containerd } from '../harness/containerd.js';
import { makeTestImage, pushRaw, type TestImage } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { skipUnless } from '../harness/skip.js';
import { describeTree, linkGroups } from '../snapshots/helpers.js';

const isRoot = process.geteuid?.() === 0;
const hasCtr = spawnSync('ctr', ['--version']).status === 0 && spawnSync('containerd', ['--version']).status === 0;
const NS = 'stowage-test';

describe('compared with containerd', () => {
  const it = skipUnless(isRoot && hasCtr, isRoot ? 'containerd/ctr not installed (scripts/test.sh installs them as root)' : 'needs root to run a private containerd');
  let reg: Registry;
  let daemon: Containerd;
  let work: string;
  let app: TestImage;
  let tool: TestImage;
  const c = (args: string[]) => ctr(daemon.address, args, NS);

  beforeAll(async () => {
    if (!isRoot || !hasCtr) return;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-ctrd-'));
    reg = await startRegistry();
    daemon = await startContainerd(path.join(work, 'containerd'));
    const base = {
      files: [
        { path: 'etc', type: 'directory' as const }, { path: 'etc/os-release', content: 'ID=cmp\n' },
        { path: 'bin', type: 'directory' as const }, { path: 'bin/tool', content: '#!/bin/sh\n', mode: 0o755 },
        { path: 'bin/sh', type: 'symlink' as const, linkname: 'tool' },
        { path: 'opt', type: 'directory' as const }, { path: 'opt/a', content: 'a' }, { path: 'opt/sub', type: 'directory' as const }, { path: 'opt/sub/b', content: 'b' },
        { path: 'var', type: 'directory' as const, mode: 0o1777 }, { path: 'var/old', content: 'old' },
      ],
    };
    // app: a whiteout, an opaque directory, a replaced file and a new symlink over the shared base.
    app = await makeTestImage({ layers: [base, { files: [
      { path: 'var', type: 'directory', mode: 0o1777 }, { path: 'var/.wh.old', content: '' },
      { path: 'opt', type: 'directory' }, { path: 'opt/.wh..wh..opq', content: '' }, { path: 'opt/new', content: 'new' },
      { path: 'etc', type: 'directory' }, { path: 'etc/os-release', content: 'ID=app\n', mode: 0o600 },
      { path: 'usr', type: 'directory' }, { path: 'usr/link', type: 'symlink', linkname: '/etc/os-release' },
    ] }] });
    tool = await makeTestImage({ layers: [base, { files: { 'tool.conf': 'x=1\n' } }] });
    await pushRaw(reg.url, 'cmp/app', '1', app);
    await pushRaw(reg.url, 'cmp/tool', '1', tool);
  }, 120_000);

  afterAll(async () => {
    await daemon?.stop();
    await reg?.stop();
    if (work) { unmountAll(work); fs.rmSync(work, { recursive: true, force: true }); }
  });

  it('a pulled image unpacks to the same tree as containerd\'s (whiteouts, opaque dirs, links, modes, mtimes)', async () => {
    const ref = `${reg.host}/cmp/app:1`;
    c(['images', 'pull', '--plain-http', '--snapshotter', 'native', ref]);
    const mnt = path.join(work, 'ctr-mount');
    fs.mkdirSync(mnt);
    const theirs = path.join(work, 'ctr-tree');
    try {
      c(['images', 'mount', '--snapshotter', 'native', ref, mnt]);
      // A copy, so the mount can go before comparing (cp -a keeps modes, owners, links and mtimes).
      spawnSync('cp', ['-a', `${mnt}/.`, theirs], { stdio: 'ignore' });
    } finally {
      try { c(['images', 'unmount', '--rm', mnt]); } catch { unmountAll(mnt); }
    }
    const s = await openStowage({ root: path.join(work, 'stowage') });
    try {
      await s.pull(ref);
      const ours = path.join(work, 'ours');
      await s.checkout(ref, ours);
      const tree = await describeTree(theirs, { mtimes: true });
      // containerd applied the whiteout and the opaque directory (the comparison is not of two empty trees).
      expect(Object.keys(tree)).toEqual(expect.arrayContaining(['opt/new', 'usr/link', 'bin/sh', 'etc/os-release']));
      expect(Object.keys(tree)).not.toContain('var/old');
      expect(Object.keys(tree)).not.toContain('opt/a');
      expect(await describeTree(ours, { mtimes: true })).toEqual(tree);
      expect(linkGroups(ours)).toEqual(linkGroups(theirs));
    } finally { await s.close(); }
  });

  it('after removing one of two images that share a layer, GC keeps and removes the same blobs and snapshots as containerd', async () => {
    const refs = { app: `${reg.host}/cmp/app:1`, tool: `${reg.host}/cmp/tool:1` };
    // containerd: pull both, remove app with a synchronous GC.
    for (const r of Object.values(refs)) c(['images', 'pull', '--plain-http', '--snapshotter', 'native', r]);
    c(['images', 'rm', '--sync', refs.app]);
    const theirBlobs = c(['content', 'ls', '-q']).split('\n').filter(Boolean).sort();
    const theirSnaps = c(['snapshots', '--snapshotter', 'native', 'ls']).split('\n').slice(1).map((l) => l.split(/\s+/)[0]!).filter(Boolean).sort();

    const root = path.join(work, 'stowage-gc');
    const s = await openStowage({ root });
    try {
      for (const r of Object.values(refs)) await s.pull(r);
      await s.delete(refs.app);
      await s.gc();
      const ourBlobs = fs.readdirSync(path.join(root, 'blobs', 'sha256')).map((h) => `sha256:${h}`).sort();
      const chains = (img: TestImage) => img.diffIds.reduce<Digest[]>((acc, d) => [...acc, chainID(acc.at(-1), d)], []);
      // What must be left: tool's manifest, config and layers; tool's chain of snapshots.
      const toolBlobs = [tool.manifest.digest, tool.config.digest, ...tool.layers.map((l) => l.digest)].sort();
      expect(theirBlobs).toEqual(toolBlobs);
      expect(ourBlobs).toEqual(theirBlobs);
      expect(theirSnaps).toEqual([...chains(tool)].sort());
      expect((await s.images({ all: true })).map((i) => i.Id)).toEqual([tool.manifest.digest]);
      expect((await s.check()).ok).toBe(true);
      // Our snapshot records are the same chain IDs containerd keeps.
      const md = openMetadata(root);
      try {
        expect(md.snapshots.walk('overlay').filter((x) => x.kind === 'committed').map((x) => x.key).sort()).toEqual(theirSnaps);
      } finally { md.close(); }
    } finally { await s.close(); }
  });
});
