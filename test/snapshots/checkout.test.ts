// checkout, held to the same cases in the calling thread alone, on checkout threads alone (run from
// the built thread script), and on both (the threads start at the first directory; whether they are
// up before a small tree is done depends on the machine).
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { applyLayer, checkout, prestartCheckoutThreads, setCheckoutThreads } from '../../src/snapshots/index.js';
import { copyFile, SMALL_FILE } from '../../src/snapshots/checkout-walk.js';
import { isStowageError } from '../../src/errors/index.js';
import { REPO, ensureBuilt } from '../cli/binary.js';
import { buildTar, describeTree, dir, file, hardlink, isRoot, linkGroups, streamOf, symlink, tmpdir, whiteout, type TEntry } from './helpers.js';

const roots: string[] = [];
const scratch = (): string => { const d = tmpdir(); roots.push(d); return d; };
afterAll(() => { for (const d of roots) fs.rmSync(d, { recursive: true, force: true }); });

const threaded = async (threads: number, callerWalks = true): Promise<void> => {
  await ensureBuilt();
  setCheckoutThreads({ script: pathToFileURL(path.join(REPO, 'dist', 'snapshots', 'checkout-worker.js')), threads, handoff: 0, callerWalks });
};
const VARIANTS = [
  { name: 'in the calling thread', setup: async () => setCheckoutThreads(undefined) },
  { name: 'on threads only', setup: () => threaded(3, false) },
  { name: 'on the calling thread and threads', setup: () => threaded(2) },
];
afterAll(() => setCheckoutThreads(undefined));

/** A few layers with something of every kind: many directories (work to share), whiteouts, an opaque directory, hard links, odd modes. */
async function layerChain(base: string): Promise<string[]> {
  const lower: TEntry[] = [dir('usr'), dir('usr/share'), dir('etc', 0o755), file('etc/passwd', 'root:x:0:0\n'), dir('opt'), dir('opt/old'), file('opt/old/f', 'old')];
  for (let d = 0; d < 40; d++) {
    lower.push(dir(`usr/share/d${d}`, d % 5 === 0 ? 0o775 : 0o755));
    for (let f = 0; f < 12; f++) lower.push(file(`usr/share/d${d}/f${f}`, `${d}.${f} `.repeat(f), f % 4 === 0 ? 0o600 : 0o644, f % 9 === 0 ? { uid: 3, gid: 4 } : {}));
    lower.push(dir(`usr/share/d${d}/sub`), file(`usr/share/d${d}/sub/x`, 'x'), symlink(`../f${d % 12}`, `usr/share/d${d}/sub/up`));
  }
  lower.push(hardlink('usr/share/d0/f1', 'usr/share/d39/sub/same-as-d0-f1'), hardlink('etc/passwd', 'usr/share/d20/passwd'));
  const upper: TEntry[] = [
    dir('usr'), dir('usr/share'), dir('usr/share/d3'), whiteout('usr/share/d3/.wh.f2'), whiteout('usr/share/.wh.d4'),
    dir('opt'), dir('opt/old'), whiteout('opt/old/.wh..wh..opq'), file('opt/old/g', 'new'),
    dir('tmp', 0o1777), dir('usr/share/d7'), file('usr/share/d7/f0', 'replaced', 0o640), dir('ro', 0o555), file('ro/r', 'r', 0o444),
  ];
  const layers = [path.join(base, 'l1'), path.join(base, 'l2')];
  await applyLayer(streamOf(await buildTar(lower)), layers[0]!, { mode: 'overlay' });
  await applyLayer(streamOf(await buildTar(upper)), layers[1]!, { mode: 'overlay' });
  return layers.reverse(); // nearest first
}

describe.each(VARIANTS)('checkout $name', (variant) => {
  beforeEach(() => variant.setup());

  it('a merged chain, in both modes, equals the single-threaded walk of it', async () => {
    const base = scratch();
    const layers = await layerChain(base);
    const results = new Map<string, unknown>();
    for (const link of ['copy', 'hardlink'] as const) {
      const out = path.join(base, `out-${link}`);
      const res = await checkout(null, layers, out, { link });
      results.set(link, res);
      setCheckoutThreads(undefined);
      const ref = path.join(base, `ref-${link}`);
      const want = await checkout(null, layers, ref, { link });
      await variant.setup();
      expect(res).toEqual(want);
      expect(await describeTree(out, { owners: isRoot, mtimes: true, dirMtimes: true }), link).toEqual(await describeTree(ref, { owners: isRoot, mtimes: true, dirMtimes: true }));
      expect(linkGroups(out)).toEqual(linkGroups(ref));
      expect(fs.existsSync(path.join(out, 'usr/share/d4'))).toBe(false);
      expect(fs.readdirSync(path.join(out, 'opt/old'))).toEqual(['g']);
    }
    // a copy shares no inode with the store; names that shared one in the layer share one in the copy
    const copy = path.join(base, 'out-copy');
    expect(fs.statSync(path.join(copy, 'usr/share/d0/f1')).ino).not.toBe(fs.statSync(path.join(layers[1]!, 'usr/share/d0/f1')).ino);
    expect(fs.statSync(path.join(copy, 'usr/share/d0/f1')).ino).toBe(fs.statSync(path.join(copy, 'usr/share/d39/sub/same-as-d0-f1')).ino);
    expect(fs.statSync(path.join(base, 'out-hardlink', 'usr/share/d0/f1')).ino).toBe(fs.statSync(path.join(layers[1]!, 'usr/share/d0/f1')).ino);
    // Now every stored file has a second name (in out-hardlink): a copy still makes one inode per
    // inode of the layer, and links only where the layer has them.
    const again = path.join(base, 'out-copy-again');
    const res = await checkout(null, layers, again);
    expect(res).toEqual(results.get('copy'));
    expect(await describeTree(again, { owners: isRoot, mtimes: true, dirMtimes: true })).toEqual(await describeTree(copy, { owners: isRoot, mtimes: true, dirMtimes: true }));
    expect(linkGroups(again)).toEqual(linkGroups(copy));
  });

  it('a rootless checkout records the owners it cannot set, as a single walk does', async () => {
    const base = scratch();
    const layers = await layerChain(base);
    const out = path.join(base, 'out');
    await checkout(null, layers, out, { rootless: true });
    setCheckoutThreads(undefined);
    await checkout(null, layers, path.join(base, 'ref'), { rootless: true });
    expect(await describeTree(out, { owners: true, mtimes: true })).toEqual(await describeTree(path.join(base, 'ref'), { owners: true, mtimes: true }));
  });

  it('a failure leaves neither the destination nor the stage behind, and a typed error', async () => {
    const base = scratch();
    // Names that fit under the layer but not under the destination, deep in several subtrees.
    const seg = 'n'.repeat(200);
    const entries: TEntry[] = [];
    for (let d = 0; d < 8; d++) {
      let p = `d${d}`;
      entries.push(dir(p));
      for (let k = 0; k < 6; k++) { p += `/${seg}`; entries.push(dir(p)); }
      entries.push(file(`${p}/f`, 'f'));
    }
    const layer = path.join(base, 'l');
    await applyLayer(streamOf(await buildTar(entries)), layer, { mode: 'overlay' });
    let parent = base;
    while (parent.length < 3000) parent = path.join(parent, 'p'.repeat(250));
    fs.mkdirSync(parent, { recursive: true });
    for (const link of ['copy', 'hardlink'] as const) {
      const err = await checkout(null, [layer], path.join(parent, 'out'), { link }).then(() => undefined, (e: unknown) => e);
      expect(isStowageError(err), String(err)).toBe(true);
      expect(String(err)).toMatch(/ENAMETOOLONG|too long/);
      expect(fs.readdirSync(parent)).toEqual([]);
    }
  });

  it('an aborted checkout leaves nothing behind', async () => {
    const base = scratch();
    const layers = await layerChain(base);
    const err = await checkout(null, layers, path.join(base, 'out'), { signal: AbortSignal.abort() }).then(() => undefined, (e: unknown) => e);
    expect(isStowageError(err, 'Aborted'), String(err)).toBe(true);
    expect(fs.readdirSync(base).sort()).toEqual(['l1', 'l2']);
  });

  describe('checkout copies owners and modes exactly, with no more calls than it needs', () => {
    it.runIf(isRoot)('setuid bits survive the chown, a setgid directory does not hand its group to entries that name another', async () => {
      const base = scratch();
      const layer = path.join(base, 'layer');
      await applyLayer(streamOf(await buildTar([
        dir('g', 0o2755, { gid: 42 }),
        file('g/own-group', 'a', 0o644),
        file('g/other', 'b', 0o640, { uid: 5, gid: 6 }),
        dir('g/sub', 0o755),
        file('suid', '#!', 0o4755, { uid: 7 }),
        file('sgid', '#!', 0o2755, { gid: 8 }),
        file('plain', 'p', 0o600),
      ])), layer, { mode: 'overlay' });
      const out = path.join(base, 'out');
      await checkout(null, [layer], out);
      const want = await describeTree(layer, { owners: true, mtimes: true });
      expect(await describeTree(out, { owners: true, mtimes: true })).toEqual(want);
      expect(want['g/own-group']).toMatchObject({ uid: 0, gid: 0 });
      expect(want['g/sub']).toMatchObject({ gid: 0 });
      expect(want['suid']).toMatchObject({ uid: 7, mode: 0o4755 });
      expect(want['sgid']).toMatchObject({ gid: 8, mode: 0o2755 });
    });
  });

  describe('checkout into a setgid directory', () => {
    it.runIf(isRoot)('entries keep their own group, not the one the destination\'s parent hands down', async () => {
      const base = scratch();
      const layer = path.join(base, 'layer');
      await applyLayer(streamOf(await buildTar([file('f', 'a', 0o644), dir('d', 0o755)])), layer, { mode: 'overlay' });
      const parent = path.join(base, 'shared');
      fs.mkdirSync(parent);
      fs.chownSync(parent, 0, 77);
      fs.chmodSync(parent, 0o2775);
      const out = path.join(parent, 'out');
      await checkout(null, [layer], out);
      expect(fs.statSync(path.join(out, 'f')).gid).toBe(0);
      expect(fs.statSync(path.join(out, 'd')).gid).toBe(0);
      expect(fs.statSync(path.join(out, 'd')).mode & 0o7777).toBe(0o755);
    });
  });

  describe('checkout of a bigger tree', () => {
    it('hard-link groups across directories included, equals its layer', async () => {
      const base = scratch();
      const entries: TEntry[] = [];
      for (let d = 0; d < 6; d++) {
        entries.push(dir(`d${d}`));
        for (let f = 0; f < 60; f++) entries.push(file(`d${d}/f${f}`, `${d}/${f} `.repeat(f + 1), f % 7 === 0 ? 0o600 : 0o644, f % 11 === 0 ? { uid: 3, gid: 4 } : {}));
      }
      for (let d = 1; d < 6; d++) entries.push(hardlink('d0/f1', `d${d}/link-to-d0-f1`), hardlink(`d${d}/f2`, `d0/link-to-d${d}-f2`));
      const layer = path.join(base, 'layer');
      await applyLayer(streamOf(await buildTar(entries)), layer, { mode: 'overlay' });
      const out = path.join(base, 'out');
      const res = await checkout(null, [layer], out);
      expect(res.copied).toBe(360);
      expect(await describeTree(out, { owners: isRoot, mtimes: true })).toEqual(await describeTree(layer, { owners: isRoot, mtimes: true }));
      expect(linkGroups(out)).toEqual(linkGroups(layer));
    });

    it('keeps every mode under any umask, for files copied through the buffer and by the kernel alike', async () => {
      const base = scratch();
      const big = 'x'.repeat(SMALL_FILE + 1);
      const modes = [0o644, 0o664, 0o600, 0o755, 0o777, 0o640, 0o444];
      const layer = path.join(base, 'layer');
      await applyLayer(streamOf(await buildTar([
        dir('d', 0o775), dir('e', 0o777),
        ...modes.flatMap((m) => [file(`small-${m.toString(8)}`, 's', m), file(`big-${m.toString(8)}`, big, m)]),
        ...(isRoot ? [file('suid', '#!', 0o4755), file('d/sgid', '#!', 0o2775)] : []),
      ])), layer, { mode: 'overlay' });
      const want = await describeTree(layer, { owners: isRoot, mtimes: true });
      const before = process.umask(0o077);
      try {
        for (const mask of [0o077, 0o022, 0o000, 0o027]) {
          process.umask(mask);
          const out = path.join(base, `out-${mask.toString(8)}`);
          await checkout(null, [layer], out);
          expect(await describeTree(out, { owners: isRoot, mtimes: true }), `umask ${mask.toString(8)}`).toEqual(want);
        }
      } finally {
        process.umask(before);
      }
    });
  });
});

describe('checkout threads started ahead', () => {
  it('serve the next checkout, big or small', async () => {
    await threaded(2);
    try {
      const base = scratch();
      const layers = await layerChain(base);
      prestartCheckoutThreads();
      await checkout(null, [layers[1]!], path.join(base, 'small')); // the lower layer alone
      prestartCheckoutThreads();
      const res = await checkout(null, layers, path.join(base, 'big'));
      setCheckoutThreads(undefined);
      const want = await checkout(null, layers, path.join(base, 'ref'));
      expect(res).toEqual(want);
      expect(await describeTree(path.join(base, 'big'), { owners: isRoot, mtimes: true })).toEqual(await describeTree(path.join(base, 'ref'), { owners: isRoot, mtimes: true }));
    } finally {
      setCheckoutThreads(undefined);
    }
  });
});

describe('copyFile', () => {
  it('a file that outgrew the buffer since its lstat is copied by the kernel, and gets the mode asked for', async () => {
    const base = scratch();
    const data = Buffer.alloc(3 * SMALL_FILE, 7);
    fs.writeFileSync(path.join(base, 'grown'), data, { mode: 0o600 });
    copyFile(path.join(base, 'grown'), path.join(base, 'copy'), { mode: 0o640, atime: 1, mtime: 2 }, Buffer.alloc(SMALL_FILE + 1));
    expect(fs.readFileSync(path.join(base, 'copy')).equals(data)).toBe(true);
    const st = fs.statSync(path.join(base, 'copy'));
    expect(st.mode & 0o7777).toBe(0o640);
    expect(st.mtimeMs).toBe(2000);
  });

  it('never writes over or through what is already at its destination', async () => {
    const base = scratch();
    fs.writeFileSync(path.join(base, 'big'), Buffer.alloc(SMALL_FILE + 1, 1));
    fs.writeFileSync(path.join(base, 'small'), 'new');
    fs.writeFileSync(path.join(base, 'there'), 'keep');
    fs.writeFileSync(path.join(base, 'target'), 'keep too');
    fs.symlinkSync(path.join(base, 'target'), path.join(base, 'planted'));
    for (const [src, mode] of [['big', undefined], ['small', 0o644]] as const) {
      for (const dst of ['there', 'planted']) {
        const copy = (): void => copyFile(path.join(base, src), path.join(base, dst), { mode, atime: 1, mtime: 2 }, Buffer.alloc(SMALL_FILE + 1));
        expect(copy, `${src} onto ${dst}`).toThrow(expect.objectContaining({ code: 'EEXIST' }));
      }
    }
    expect(fs.readFileSync(path.join(base, 'there'), 'utf8')).toBe('keep');
    expect(fs.readFileSync(path.join(base, 'target'), 'utf8')).toBe('keep too');
  });
});
