// The shared snapshotter conformance suite: every case of containerd's core/snapshots/testsuite
// (testsuite.go and issues.go) plus the metastore error cases. A snapshotter is "mounted" the rootless way: a
// checkout of the snapshot is edited and captured back (captureTree); Views are read by checkout.
// When running as root, ViewReadonly and the overlay mount options are also checked with real mounts.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  captureTree, checkout, type Snapshotter, type SnapshotCleaner, type SnapshotInfo, type SnapshotLayout,
} from '../../src/snapshots/index.js';
import { describeTree, isRoot, tmpdir } from './helpers.js';
import { expectCode } from '../harness/expect.js';
import { skipUnless } from '../harness/skip.js';

/**
 * The snapshotter under test: the core interface, plus the layout (the suite edits snapshots the rootless
 * way, through checkout and captureTree) and the cleaner (crash recovery is part of the suite).
 */
export type SuiteSnapshotter = Snapshotter & SnapshotLayout & SnapshotCleaner;
export interface SuiteContext { sn: SuiteSnapshotter; root: string; close(): Promise<void> }
export type SnapshotterFactory = (root: string) => Promise<SuiteContext>;

type Applier = (dir: string) => void;

const w = (p: string, body: string, mode = 0o644): Applier => (d) => {
  fs.mkdirSync(path.dirname(path.join(d, p)), { recursive: true });
  fs.writeFileSync(path.join(d, p), body);
  fs.chmodSync(path.join(d, p), mode);
};
const mkdir = (p: string, mode = 0o755): Applier => (d) => { fs.mkdirSync(path.join(d, p), { recursive: true }); fs.chmodSync(path.join(d, p), mode); };
const rmAll = (p: string): Applier => (d) => fs.rmSync(path.join(d, p), { recursive: true, force: true });
const chown = (p: string, uid: number, gid: number): Applier => (d) => fs.lchownSync(path.join(d, p), uid, gid);
const link = (oldp: string, newp: string): Applier => (d) => fs.linkSync(path.join(d, oldp), path.join(d, newp));
const rename = (a: string, b: string): Applier => (d) => fs.renameSync(path.join(d, a), path.join(d, b));
const seq = (...as: Applier[]): Applier => (d) => { for (const a of as) a(d); };

export function snapshotterSuite(name: string, factory: SnapshotterFactory): void {
  describe(`snapshotter suite: ${name}`, () => {
    let ctx: SuiteContext;
    let sn: SuiteSnapshotter;
    let work: string;
    const scratchDirs: string[] = [];
    let n = 0;
    const scratch = (): string => path.join(work, `t${n++}`);

    beforeEach(async () => {
      const base = tmpdir('stowage-suite-');
      scratchDirs.push(base);
      work = path.join(base, 'work');
      fs.mkdirSync(work);
      ctx = await factory(path.join(base, 'root'));
      sn = ctx.sn;
    });
    afterEach(async () => { await ctx.close(); });
    afterAll(() => { for (const d of scratchDirs) fs.rmSync(d, { recursive: true, force: true }); });

    /** Edit an active snapshot: checkout, apply, capture. */
    async function edit(key: string, a: Applier): Promise<void> {
      const d = scratch();
      await checkout(sn, key, d);
      a(d);
      await captureTree(sn, key, d);
    }
    async function view(key: string): Promise<string> {
      const d = scratch();
      await checkout(sn, key, d);
      return d;
    }
    async function withView<T>(parent: string, fn: (dir: string) => Promise<T>): Promise<T> {
      const k = `view-${n++}`;
      await sn.view(k, parent);
      try { return await fn(await view(k)); } finally { await sn.remove(k); }
    }

    /** checkSnapshots: each applier goes to the chain and to a flat reference dir; every commit's View must equal it. */
    async function checkSnapshots(appliers: Applier[]): Promise<void> {
      const flat = scratch();
      fs.mkdirSync(flat);
      let parent: string | undefined;
      for (const [i, a] of appliers.entries()) {
        const key = `layer-${i}-active`;
        await sn.prepare(key, parent);
        expect(await describeTree(await view(key))).toEqual(await describeTree(flat));
        await edit(key, a);
        a(flat);
        const name = `layer-${i}`;
        await sn.commit(name, key);
        parent = name;
        await withView(name, async (d) => expect(await describeTree(d)).toEqual(await describeTree(flat)));
      }
    }

    it('Basic', async () => {
      await sn.prepare('prep', undefined, { labels: { 'containerd.io/gc.root': 'now' } });
      await edit('prep', seq(w('foo', 'foo\n'), mkdir('a/b/c', 0o755)));
      await sn.commit('committed', 'prep');
      const si = await sn.stat('committed');
      expect(si).toMatchObject({ name: 'committed', kind: 'committed' });
      expect(si.parent).toBeUndefined();
      await expectCode(sn.stat('prep'), 'NotFound');
      await sn.prepare('next', 'committed');
      const d = await view('next');
      expect(fs.readFileSync(path.join(d, 'foo'), 'utf8')).toBe('foo\n');
      expect(fs.statSync(path.join(d, 'a/b/c')).isDirectory()).toBe(true);
      await edit('next', seq(w('foo', 'foo bar\n'), w('bar', 'bar\n'), rmAll('a/b')));
      await sn.commit('nextCommitted', 'next');
      const si2 = await sn.stat('nextCommitted');
      expect(si2).toMatchObject({ name: 'nextCommitted', kind: 'committed', parent: 'committed' });
      const infos: SnapshotInfo[] = [];
      await sn.walk((i) => { infos.push(i); });
      expect(infos.map((i) => i.name).sort()).toEqual(['committed', 'nextCommitted']);
      expect(infos.find((i) => i.name === 'committed')).toEqual(si);
      await sn.view('nextView', 'nextCommitted');
      const v = await view('nextView');
      expect(fs.readFileSync(path.join(v, 'foo'), 'utf8')).toBe('foo bar\n');
      expect(fs.readFileSync(path.join(v, 'bar'), 'utf8')).toBe('bar\n');
      expect(fs.readdirSync(path.join(v, 'a'))).toEqual([]);
      await sn.remove('nextView');
      await expectCode(sn.remove('committed'), 'FailedPrecondition', /remove/);
      await sn.remove('nextCommitted');
      await sn.remove('committed');
    });

    it('StatActive', async () => {
      await sn.prepare('active', undefined);
      expect(await sn.stat('active')).toMatchObject({ name: 'active', kind: 'active' });
      expect((await sn.stat('active')).parent).toBeUndefined();
    });

    it('StatComitted', async () => {
      await sn.prepare('p', undefined);
      await sn.commit('c', 'p');
      const s = await sn.stat('c');
      expect(s).toMatchObject({ name: 'c', kind: 'committed' });
      expect(s.parent).toBeUndefined();
    });

    it('TransitivityTest', async () => {
      await sn.prepare('a-p', undefined); await sn.commit('a', 'a-p');
      await sn.prepare('b-p', 'a'); await sn.commit('b', 'b-p');
      const b = await sn.stat('b');
      expect(b.parent).toBe('a');
      expect((await sn.stat(b.parent!)).parent).toBeUndefined();
    });

    it('PreareViewFailingtest', async () => {
      await sn.prepare('k', undefined);
      await expectCode(sn.view('k', undefined), 'AlreadyExists');
      await expectCode(sn.prepare('k', undefined), 'AlreadyExists');
      await sn.view('v', undefined);
      await expectCode(sn.view('v', undefined), 'AlreadyExists');
      // committed names share the key space
      await sn.commit('c', 'k');
      await expectCode(sn.prepare('c', undefined), 'AlreadyExists');
    });

    it('Update', async () => {
      const t0 = Date.now();
      await sn.prepare('c-p', undefined); await sn.commit('committed', 'c-p');
      await sn.prepare('active', 'committed');
      await sn.view('view', 'committed');
      for (const key of ['committed', 'active', 'view']) {
        const st = await sn.stat(key);
        // Created == Updated for a fresh committed snapshot is checked in 'containerd parity' below.
        if (key !== 'committed') expect(st.created.getTime()).toBe(st.updated.getTime());
        let u = await sn.update({ name: key, labels: { l1: 'v1', l2: 'v2' }, parent: 'ignored' });
        expect(u.labels).toEqual({ l1: 'v1', l2: 'v2' });
        expect(u.parent).toBe(key === 'committed' ? undefined : 'committed');
        u = await sn.update({ name: key, labels: { l1: 'v1-1' } }, 'labels.l1', 'labels.l2');
        expect(u.labels).toEqual({ l1: 'v1-1' });
        u = await sn.update({ name: key, labels: { l3: 'v3' } }, 'labels');
        expect(u.labels).toEqual({ l3: 'v3' });
        await expectCode(sn.update({ name: key, labels: {}, parent: 'x' }, 'parent'), 'InvalidArgument');
        const after = await sn.stat(key);
        expect(after.created.getTime()).toBe(st.created.getTime());
        expect(after.updated.getTime()).toBeGreaterThanOrEqual(t0);
        expect(after.updated.getTime()).toBeLessThanOrEqual(Date.now());
      }
      await expectCode(sn.update({ name: 'missing', labels: {} }), 'NotFound');
    });

    it('Remove', async () => {
      await sn.prepare('k', undefined);
      await sn.remove('k');
      await sn.view('k', undefined);
      await sn.remove('k');
      await sn.prepare('k', undefined);
      await sn.commit('c', 'k');
      await sn.remove('c');
      await sn.prepare('k2', undefined);
      await sn.commit('c', 'k2');
      await expectCode(sn.remove('nope'), 'NotFound');
    });

    it('Walk', async () => {
      await sn.prepare('p-wl', undefined, { labels: { l: '1' } }); await sn.commit('committed-wl', 'p-wl', { labels: { l: '1' } });
      await sn.prepare('p', undefined); await sn.commit('committed', 'p');
      await sn.prepare('active-wl', 'committed-wl', { labels: { l: '2' } });
      await sn.prepare('active', 'committed');
      await sn.view('view-wl', 'committed-wl', { labels: { l: '3' } });
      await sn.view('view', 'committed');
      const names = async (...f: string[]): Promise<string[]> => { const o: string[] = []; await sn.walk((i) => { o.push(i.name); }, ...f); return o.sort(); };
      expect(await names()).toEqual(['active', 'active-wl', 'committed', 'committed-wl', 'view', 'view-wl']);
      expect(await names('labels.l')).toEqual(['active-wl', 'committed-wl', 'view-wl']);
      expect(await names('kind==active')).toEqual(['active', 'active-wl']);
      expect(await names('kind==view')).toEqual(['view', 'view-wl']);
      expect(await names('kind==committed')).toEqual(['committed', 'committed-wl']);
      expect(await names('name==active-wl', 'name==view')).toEqual(['active-wl', 'view']);
      expect(await names('name==active-wl,labels.l')).toEqual(['active-wl']);
      expect(await names('name==active,labels.l')).toEqual([]);
      expect(await names('parent==committed-wl')).toEqual(['active-wl', 'view-wl']);
      expect(await names('labels.l==2')).toEqual(['active-wl']);
    });

    // Two details that depend on the metadata records (src/metadata): containerd gives a committed
    // snapshot fresh Created == Updated times, and its `!=` treats an absent field as "".
    it('containerd parity: commit times and parent!="" (metadata records)', async () => {
      await sn.prepare('p', undefined); await sn.commit('c', 'p');
      await sn.prepare('a', 'c');
      const c = await sn.stat('c');
      expect(c.created.getTime()).toBe(c.updated.getTime());
      const names: string[] = [];
      await sn.walk((i) => { names.push(i.name); }, 'parent!=""');
      expect(names).toEqual(['a']);
    });

    it('LayerFileupdate (5 rounds across second boundaries)', async () => {
      for (let i = 0; i < 5; i++) {
        await checkSnapshots([
          seq(w('foo', 'foo\n', 0o777), mkdir('a')),
          w('foo', 'bar\n', 0o700),
          seq(w('foo', 'baz\n', 0o701)),
        ]);
        await new Promise((r) => setTimeout(r, i === 2 ? 1000 : 10));
        for (const k of ['layer-2', 'layer-1', 'layer-0']) await sn.remove(k);
      }
    }, 30_000);

    it('RemoveDirectoryInLowerLayer', async () => {
      await checkSnapshots([
        seq(mkdir('lib'), w('lib/hidden', 'old'), mkdir('lib/sub'), w('lib/sub/x', 'x')),
        seq(rmAll('lib'), mkdir('lib'), w('lib/newfile', 'new')),
        seq(w('lib/third', '3')),
      ]);
    });

    skipUnless(isRoot, 'needs root: chown')('Chown', async () => {
      await checkSnapshots([
        seq(mkdir('opt'), mkdir('opt/a'), mkdir('opt/a/b'), w('opt/a/b/file.txt', 'hello')),
        seq(chown('opt', 1, 1), chown('opt/a', 1, 1), chown('opt/a/b', 1, 1), chown('opt/a/b/file.txt', 1, 1)),
      ]);
    });

    skipUnless(isRoot, 'needs root: chown')('DirectoryPermissionOnCommit', async () => {
      await checkSnapshots([
        seq(mkdir('dir1', 0o700), mkdir('dir2', 0o700), mkdir('dir3', 0o700), chown('dir2', 1, 1), chown('dir3', 1, 1)),
        seq(mkdir('dir4', 0o700), chown('dir4', 2, 2), rmAll('dir2'), mkdir('dir2', 0o700), chown('dir2', 2, 2)),
        seq(mkdir('dir5', 0o700), chown('dir5', 3, 3), rmAll('dir3'), mkdir('dir3', 0o700), chown('dir3', 3, 3)),
      ]);
    });

    it('RemoveIntermediateSnapshot', async () => {
      await sn.prepare('b-a', undefined); await sn.commit('base', 'b-a');
      await sn.prepare('i-a', 'base'); await sn.commit('inter', 'i-a');
      await sn.prepare('top-a', 'inter');
      await expectCode(sn.remove('inter'), 'FailedPrecondition');
      await sn.remove('top-a');
      await sn.remove('inter');
      await sn.remove('base');
    });

    it('DeletedFilesInChildSnapshot', async () => {
      await checkSnapshots([
        seq(mkdir('etc'), w('etc/gone', 'x'), w('etc/stays', 'y')),
        rmAll('etc/gone'),
        w('etc/other', 'z'),
      ]);
    });

    it('MoveFileFromLowerLayer', async () => {
      await checkSnapshots([
        seq(mkdir('dir1'), w('dir1/f1', 'f1'), mkdir('dir2'), w('dir2/f2', 'f2')),
        seq(rmAll('dir1'), w('dir1/f1', 'moved'), mkdir('dir3'), link('dir2/f2', 'dir3/f2'), rmAll('dir2/f2')),
      ]);
    });

    it('ViewReadonly', async () => {
      await sn.prepare('p', undefined);
      await edit('p', w('foo', 'x'));
      await sn.commit('c', 'p');
      const mounts = await sn.view('v', 'c');
      expect(mounts).toHaveLength(1);
      expect(mounts[0]!.type).toBe('bind');
      expect(mounts[0]!.options).toContain('ro');
      await expectCode(captureTree(sn, 'v', work), 'FailedPrecondition');
      await expectCode(sn.commit('vc', 'v'), 'FailedPrecondition');
      if (isRoot) {
        const target = scratch();
        fs.mkdirSync(target);
        execFileSync('mount', ['--bind', mounts[0]!.source, target]);
        try {
          execFileSync('mount', ['-o', 'remount,bind,ro', target]);
          let code: string | undefined;
          try { fs.writeFileSync(path.join(target, 'bar'), 'x'); } catch (e) { code = (e as NodeJS.ErrnoException).code; }
          expect(code).toBe('EROFS');
          expect(fs.readFileSync(path.join(target, 'foo'), 'utf8')).toBe('x');
        } finally { execFileSync('umount', [target]); }
      }
    });

    it('StatInWalk', async () => {
      await sn.prepare('p', undefined); await sn.commit('c', 'p', { labels: { x: 'y' } });
      await sn.prepare('a', 'c');
      await sn.view('v', 'c');
      let seen = 0;
      await sn.walk(async (i) => { expect(await sn.stat(i.name)).toEqual(i); seen++; });
      expect(seen).toBe(3);
    });

    it('CloseTwice', async () => {
      await sn.close();
      await sn.close();
    });

    it('RootPermission', async () => {
      await sn.prepare('p', undefined);
      const d = await view('p');
      expect(fs.statSync(d).mode & 0o7777).toBe(0o755);
      expect(fs.statSync(sn.layerDir('p')).mode & 0o7777).toBe(0o755);
      await edit('p', w('x', ''));
      expect(fs.statSync(sn.layerDir('p')).mode & 0o7777).toBe(0o755);
    });

    it('Rename (including a lower directory, which the overlay family skips but we support)', async () => {
      await checkSnapshots([
        seq(mkdir('dir1'), mkdir('somefiles'), w('somefiles/f1', 'f1'), w('somefiles/f2', 'f2'), w('a', 'a'), w('b', 'b')),
        seq(rename('a', 'b'), rename('somefiles/f1', 'f1'), rename('dir1', 'dir2'), rename('somefiles/f2', 'dir2/f2')),
      ]);
    });

    it('128LayersMount', async () => {
      const appliers: Applier[] = [seq(w('bottom', 'way at the bottom\n'), w('overwriteme', 'FIRST!\n'), mkdir('ADDHERE'), mkdir('REMOVEME'), w('REMOVEME/blah', 'will be removed\n'))];
      for (let i = 1; i < 128; i++) {
        appliers.push(seq(
          w('overwriteme', `${i}\n`), w(`ADDHERE/file-${i}`, `same\n`),
          rmAll('REMOVEME'), mkdir('REMOVEME'), w(`REMOVEME/file-${i}`, `${i}\n`),
        ));
      }
      await checkSnapshots(appliers);
      const top = await sn.stat('layer-127');
      expect(top.parent).toBe('layer-126');
      const mounts = await sn.view('final', 'layer-127');
      // every layer removes REMOVEME (a `.wh.` marker on disk), which only fuse-overlayfs honours
      expect(mounts[0]!.type).toBe('fuse3.fuse-overlayfs');
      expect(mounts[0]!.options.find((o) => o.startsWith('lowerdir='))!.split(':')).toHaveLength(128);
    }, 120_000);

    describe('metastore error cases', () => {
      it('missing parent → NotFound; parent not committed → InvalidArgument (as containerd); view/committed cannot be committed', async () => {
        await expectCode(sn.prepare('x', 'nope'), 'NotFound');
        await sn.prepare('act', undefined);
        await expectCode(sn.prepare('y', 'act'), 'InvalidArgument');
        await sn.view('v', undefined);
        await expectCode(sn.commit('vc', 'v'), 'FailedPrecondition');
        await sn.commit('c', 'act');
        await expectCode(sn.commit('c2', 'c'), 'FailedPrecondition');
        await expectCode(sn.commit('c3', 'missing'), 'NotFound');
        await sn.prepare('act2', undefined);
        await expectCode(sn.commit('c', 'act2'), 'AlreadyExists');
        await expectCode(sn.mounts('c'), 'FailedPrecondition');
        await expectCode(sn.stat('missing'), 'NotFound');
        // failed creates leave no directory behind
        await sn.cleanup();
        const dirs = fs.readdirSync(path.join(ctx.root, 'snapshots')).sort();
        expect(dirs.every((d) => /^\d+$/.test(d))).toBe(true);
        expect(dirs).toHaveLength(3);
      });

      it('Mounts: bind for base layers, overlay with lowerdir nearest-first, view rules', async () => {
        await sn.prepare('p0', undefined);
        expect(await sn.mounts('p0')).toEqual([{ type: 'bind', source: sn.layerDir('p0'), options: ['rw', 'rbind'] }]);
        await sn.commit('c0', 'p0');
        await sn.prepare('p1', 'c0'); await sn.commit('c1', 'p1');
        await sn.prepare('p2', 'c1');
        const m = (await sn.mounts('p2'))[0]!;
        expect(m.type).toBe('overlay');
        const opt = (k: string): string | undefined => m.options.find((o) => o.startsWith(k + '='))?.slice(k.length + 1);
        expect(opt('upperdir')).toBe(sn.layerDir('p2'));
        expect(opt('lowerdir')).toBe(`${sn.layerDir('c1')}:${sn.layerDir('c0')}`);
        expect(fs.statSync(opt('workdir')!).isDirectory()).toBe(true);
        await sn.view('v1', 'c0');
        expect(await sn.mounts('v1')).toEqual([{ type: 'bind', source: sn.layerDir('c0'), options: ['ro', 'rbind'] }]);
        await sn.view('v2', 'c1');
        const mv = (await sn.mounts('v2'))[0]!;
        expect(mv.type).toBe('overlay');
        expect(mv.options.some((o) => o.startsWith('upperdir='))).toBe(false);
      });

      skipUnless(isRoot, 'needs root: mount')('the overlay description mounts for real and shows the merged tree (no deletions in the chain)', async () => {
        await sn.prepare('p0', undefined); await edit('p0', seq(w('a', 'A'), mkdir('d'), w('d/x', '1'))); await sn.commit('c0', 'p0');
        await sn.prepare('p1', 'c0'); await edit('p1', seq(w('b', 'B'), w('d/x', '2'))); await sn.commit('c1', 'p1');
        await sn.prepare('p2', 'c1');
        const m = (await sn.mounts('p2'))[0]!;
        const target = scratch();
        fs.mkdirSync(target);
        execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', m.options.join(','), target]);
        try {
          const co = await view('p2');
          expect(await describeTree(target)).toEqual(await describeTree(co));
          fs.writeFileSync(path.join(target, 'written'), 'w');
        } finally { execFileSync('umount', [target]); }
        expect(fs.readFileSync(path.join(sn.layerDir('p2'), 'written'), 'utf8')).toBe('w');
      });

      it('usage counts the snapshot\'s own layer only, stored at commit', async () => {
        await sn.prepare('p', undefined);
        await edit('p', seq(w('a', 'x'.repeat(10000)), mkdir('d'), w('d/b', 'y')));
        const u = await sn.usage('p');
        expect(u.inodes).toBe(3);
        expect(u.size).toBeGreaterThanOrEqual(10000);
        await sn.commit('c', 'p');
        expect(await sn.usage('c')).toEqual(u);
        await sn.prepare('q', 'c');
        expect((await sn.usage('q')).inodes).toBe(0);
      });

      it('cleanup removes crashed prepares and orphaned dirs', async () => {
        await sn.prepare('p', undefined);
        fs.mkdirSync(path.join(ctx.root, 'snapshots', 'new-crashed'));
        fs.mkdirSync(path.join(ctx.root, 'snapshots', '99999'));
        await sn.cleanup();
        expect(fs.readdirSync(path.join(ctx.root, 'snapshots'))).toHaveLength(1);
        expect((await sn.stat('p')).kind).toBe('active');
      });
    });
  });
}
