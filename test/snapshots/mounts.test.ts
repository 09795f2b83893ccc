// mounts() must describe a mount that really shows the snapshot's merged tree. Layer directories keep
// deletions as OCI marker files, which only fuse-overlayfs understands; chains without markers keep
// the kernel overlay. Every description is mounted for real and compared with a checkout.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openMetadata } from '../../src/metadata/index.js';
import {
  applyLayerToSnapshot, captureTree, checkout, openSnapshotter, type DirectorySnapshotter, type Mount,
} from '../../src/snapshots/index.js';
import type { Digest } from '../../src/oci/index.js';
import { buildTar, describeTree, dir, file, isRoot, streamOf, symlink, tmpdir, whiteout, type TEntry } from './helpers.js';
import { skipUnless } from '../harness/skip.js';

function hasFuseOverlayfs(): boolean {
  try { execFileSync('fuse-overlayfs', ['--version'], { stdio: 'ignore' }); } catch { return false; }
  return fs.existsSync('/dev/fuse');
}
const fuseReady = hasFuseOverlayfs();
const skipReason = !isRoot ? 'not root: cannot mount' : !fuseReady ? 'fuse-overlayfs or /dev/fuse missing (apt-get install fuse-overlayfs)' : '';
const itMounting = skipUnless(!skipReason, skipReason);

let root: string;
let sn: DirectorySnapshotter;
let closeMd: () => void;
const mounted: string[] = [];

beforeEach(() => {
  root = tmpdir();
  const md = openMetadata(path.join(root, 'store'));
  sn = openSnapshotter(path.join(root, 'store'), md.snapshots, 'overlay');
  closeMd = () => (md as unknown as { close?: () => void }).close?.();
});

afterEach(async () => {
  for (const t of mounted.splice(0)) { try { execFileSync('umount', [t]); } catch { /* already gone */ } }
  await sn.close();
  closeMd();
  fs.rmSync(root, { recursive: true, force: true });
});

/** Commits a chain of layers (base first); returns the top chainID. */
async function chain(...layers: TEntry[][]): Promise<Digest> {
  let parent: Digest | undefined;
  for (const entries of layers) {
    const input: Parameters<typeof applyLayerToSnapshot>[1] = { layer: streamOf(await buildTar(entries)) };
    if (parent !== undefined) input.parentChainId = parent;
    parent = (await applyLayerToSnapshot(sn, input)).chainID;
  }
  return parent!;
}

/** Performs the mount a runtime would perform from the description. */
function mount(m: Mount, env: NodeJS.ProcessEnv = {}): string {
  const target = fs.mkdtempSync(path.join(root, 'mnt-'));
  if (m.type === 'fuse3.fuse-overlayfs') {
    execFileSync('fuse-overlayfs', ['-o', m.options.join(','), target], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  } else if (m.type === 'overlay') {
    execFileSync('mount', ['-t', 'overlay', m.source, '-o', m.options.join(','), target]);
  } else {
    execFileSync('mount', ['--bind', m.source, target]);
    if (m.options.includes('ro')) execFileSync('mount', ['-o', 'remount,bind,ro', target]);
  }
  mounted.push(target);
  return target;
}

function unmount(target: string): void {
  execFileSync('umount', [target]);
  mounted.splice(mounted.indexOf(target), 1);
}

async function checkedOut(key: string): Promise<string> {
  const dest = path.join(root, `co-${key}-${Math.random().toString(36).slice(2)}`);
  await checkout(sn, key, dest);
  return dest;
}

const opt = (m: Mount, k: string): string | undefined => m.options.find((o) => o.startsWith(k + '='))?.slice(k.length + 1);

// Deletions of every kind: a whiteout of a file, of a whole directory, of a file in a kept directory,
// an opaque directory with new content, and a deleted-then-recreated path in a later layer.
const base: TEntry[] = [
  file('a', 'A1'), file('gone', 'G'), dir('d'), file('d/inner', 'I'), dir('o'), file('o/lowfile', 'L'),
  dir('o/sub'), file('o/sub/deep', 'D'), dir('keep'), file('keep/k1', 'K1'), file('keep/k2', 'K2'),
  symlink('a', 'link'), file('back', 'B1'),
];
const middle: TEntry[] = [
  whiteout('.wh.gone'), whiteout('.wh.d'), dir('o'), whiteout('o/.wh..wh..opq'), file('o/newfile', 'N'),
  dir('keep'), whiteout('keep/.wh.k1'), file('a', 'A2'), whiteout('.wh.back'), file('mid', 'M'),
];
const top: TEntry[] = [file('back', 'B3'), dir('d'), file('d/fresh', 'F'), whiteout('.wh.mid')];

describe('mounts(): the description matches the merged tree', () => {
  it('chains without deletion markers keep the kernel overlay (active and view), fuse only with markers', async () => {
    const clean = await chain([file('a', '1'), dir('d'), file('d/x', 'x')], [file('b', '2'), file('d/x', 'y')]);
    await sn.prepare('w', clean);
    const m = (await sn.mounts('w'))[0]!;
    expect(m.type).toBe('overlay');
    expect(m.source).toBe('overlay');
    expect(opt(m, 'upperdir')).toBe(sn.layerDir('w'));
    await sn.view('v', clean);
    expect((await sn.mounts('v'))[0]!.type).toBe('overlay');

    const marked = await chain(base, middle);
    await sn.prepare('w2', marked);
    const f = (await sn.mounts('w2'))[0]!;
    expect(f.type).toBe('fuse3.fuse-overlayfs');
    expect(f.source).toBe('fuse-overlayfs');
    expect(opt(f, 'upperdir')).toBe(sn.layerDir('w2'));
    expect(opt(f, 'lowerdir')).toBe(sn.layers('w2').slice(1).join(':'));
    expect(fs.statSync(opt(f, 'workdir')!).isDirectory()).toBe(true);
    // prepare returns the same description
    const prepared = await sn.prepare('w3', marked);
    expect(prepared[0]!.type).toBe('fuse3.fuse-overlayfs');
    expect(prepared).toEqual(await sn.mounts('w3'));
    await sn.view('v1', marked);
    expect(await sn.mounts('v1')).toEqual([{ type: 'fuse3.fuse-overlayfs', source: 'fuse-overlayfs', options: [`lowerdir=${sn.layers('v1').join(':')}`] }]);
    // one layer: a bind, unless the layer holds markers (a bind would show them as files)
    const one = await chain([file('a', '1')]);
    await sn.view('v2', one);
    expect(await sn.mounts('v2')).toEqual([{ type: 'bind', source: sn.layerDir(one), options: ['ro', 'rbind'] }]);
  });

  itMounting('a view of one layer holding markers mounts without showing them', async () => {
    const one = await chain([file('a', '1'), whiteout('.wh.x'), dir('o'), whiteout('o/.wh..wh..opq'), file('o/f', 'f')]);
    await sn.view('v', one);
    const m = (await sn.mounts('v'))[0]!;
    expect(m).toEqual({ type: 'fuse3.fuse-overlayfs', source: 'fuse-overlayfs', options: [`lowerdir=${sn.layerDir(one)}`] });
    const target = mount(m);
    try {
      expect(await describeTree(target)).toEqual(await describeTree(await checkedOut('v')));
      expect(fs.readdirSync(target).sort()).toEqual(['a', 'o']);
    } finally { unmount(target); }
  });

  it('the marker record is rebuilt once when missing (stores from before it)', async () => {
    const marked = await chain(base, middle);
    const clean = await chain([file('z', 'z')], [file('y', 'y')]);
    for (const id of fs.readdirSync(path.join(root, 'store', 'snapshots'))) fs.rmSync(path.join(root, 'store', 'snapshots', id, 'markers.json'), { force: true });
    await sn.view('v', marked);
    await sn.view('vc', clean);
    expect((await sn.mounts('v'))[0]!.type).toBe('fuse3.fuse-overlayfs');
    expect((await sn.mounts('vc'))[0]!.type).toBe('overlay');
    const rec = JSON.parse(fs.readFileSync(path.join(path.dirname(sn.layerDir(marked)), 'markers.json'), 'utf8')) as { markers: boolean };
    expect(rec.markers).toBe(true); // the middle layer holds the whiteouts
  });

  it('a layer applied into a snapshot has its markers recorded at commit, from the apply, with no walk', async () => {
    const clean = await chain([file('a', 'a')]);
    const marked = await chain([file('b', 'b')], [whiteout('.wh.b'), file('c', 'c')]);
    const record = (id: string) => JSON.parse(fs.readFileSync(path.join(path.dirname(sn.layerDir(id)), 'markers.json'), 'utf8')) as { ino: number; markers: boolean };
    expect(record(clean)).toEqual({ ino: fs.statSync(sn.layerDir(clean)).ino, markers: false });
    expect(record(marked)).toEqual({ ino: fs.statSync(sn.layerDir(marked)).ino, markers: true });
    expect(fs.existsSync(path.join(path.dirname(sn.layerDir(marked)), 'usage.json'))).toBe(false);
  });

  it('a commit measures nothing: usage and markers are walked once, on first demand, and in-place changes before it are seen', async () => {
    const lower = await chain([file('a', 'a'), file('b', 'bb')]);
    await sn.prepare('edit', lower);
    // Its own layer was recorded empty when made; a deletion marker is then written in place, not through a mount.
    expect((await sn.mounts('edit'))[0]!.type).toBe('overlay');
    fs.writeFileSync(path.join(sn.layerDir('edit'), '.wh.a'), '');
    fs.writeFileSync(path.join(sn.layerDir('edit'), 'c'), 'c'.repeat(10_000));
    await sn.commit('edited', 'edit');
    const dir = path.dirname(sn.layerDir('edited'));
    expect(fs.existsSync(path.join(dir, 'usage.json'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'markers.json'))).toBe(false);
    await sn.view('look', 'edited');
    expect((await sn.mounts('look'))[0]!.type).toBe('fuse3.fuse-overlayfs');
    // The walk that found the marker also measured the committed layer.
    const stored = JSON.parse(fs.readFileSync(path.join(dir, 'usage.json'), 'utf8')) as { size: number; inodes: number };
    expect(stored.inodes).toBe(2); // .wh.a and c
    expect(stored.size).toBeGreaterThanOrEqual(10_000);
    expect(await sn.usage('edited')).toEqual(stored);
  });

  itMounting('a chain with whiteouts and opaque dirs: the fuse-overlayfs mount equals the checkout; writes land in the upperdir', async () => {
    const id = await chain(base, middle, top);
    await sn.prepare('work', id);
    const m = (await sn.mounts('work'))[0]!;
    const co = await checkedOut('work');
    const want = await describeTree(co);
    // sanity: the fixture really deletes things
    expect(Object.keys(want)).not.toContain('gone');
    expect(Object.keys(want)).not.toContain('o/lowfile');
    expect(Object.keys(want)).toContain('d/fresh');
    const target = mount(m, { FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT: '1' });
    try {
      expect(await describeTree(target)).toEqual(want);
      fs.writeFileSync(path.join(target, 'written'), 'w');
      fs.writeFileSync(path.join(target, 'o', 'newfile'), 'N2');
      fs.rmSync(path.join(target, 'keep', 'k2'));
    } finally { unmount(target); }
    const upper = sn.layerDir('work');
    expect(fs.readFileSync(path.join(upper, 'written'), 'utf8')).toBe('w');
    expect(fs.readFileSync(path.join(upper, 'o', 'newfile'), 'utf8')).toBe('N2');
    // the deletion is stored the way the store reads it: a checkout agrees with the mount
    expect(fs.lstatSync(path.join(upper, 'keep', '.wh.k2')).isFile()).toBe(true);
    const after = await describeTree(await checkedOut('work'));
    expect(Object.keys(after)).not.toContain('keep/k2');
    expect(after['written']?.type).toBe('file');
    // committed and built upon, the chain still mounts right (read-only view)
    await sn.commit('done', 'work');
    await sn.view('look', 'done');
    const vm = (await sn.mounts('look'))[0]!;
    expect(vm.type).toBe('fuse3.fuse-overlayfs');
    const vt = mount(vm);
    try {
      expect(await describeTree(vt)).toEqual(after);
      expect(() => fs.writeFileSync(path.join(vt, 'nope'), 'x')).toThrow();
    } finally { unmount(vt); }
  });

  itMounting('an active snapshot whose own layer gains markers through captureTree switches to fuse-overlayfs', async () => {
    const clean = await chain([file('a', '1'), dir('d'), file('d/x', 'x'), file('d/y', 'y')], [file('b', '2')]);
    await sn.prepare('w', clean);
    expect((await sn.mounts('w'))[0]!.type).toBe('overlay');
    const tree = await checkedOut('w');
    fs.rmSync(path.join(tree, 'd', 'x'));
    fs.rmSync(path.join(tree, 'a'));
    fs.writeFileSync(path.join(tree, 'c'), '3');
    await captureTree(sn, 'w', tree);
    const m = (await sn.mounts('w'))[0]!;
    expect(m.type).toBe('fuse3.fuse-overlayfs');
    const target = mount(m);
    try {
      expect(await describeTree(target)).toEqual(await describeTree(await checkedOut('w')));
      expect(fs.existsSync(path.join(target, 'a'))).toBe(false);
    } finally { unmount(target); }
  });

  itMounting('a chain without markers: the kernel overlay mount equals the checkout', async () => {
    const id = await chain([file('a', '1'), dir('d'), file('d/x', 'x'), symlink('a', 's')], [file('b', '2'), file('d/x', 'y')], [dir('e'), file('e/z', 'z')]);
    await sn.prepare('w', id);
    const m = (await sn.mounts('w'))[0]!;
    expect(m.type).toBe('overlay');
    const target = mount(m);
    try {
      expect(await describeTree(target)).toEqual(await describeTree(await checkedOut('w')));
      fs.writeFileSync(path.join(target, 'written'), 'w');
    } finally { unmount(target); }
    expect(fs.readFileSync(path.join(sn.layerDir('w'), 'written'), 'utf8')).toBe('w');
  });
});
