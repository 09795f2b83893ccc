import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openContentStore } from '../../src/content/index.js';
import {
  applyLayer, checkout, diffDirs, diffTarStream, layerChanges, toApiChanges, treeSource, writeDiffLayer,
} from '../../src/snapshots/index.js';
import { isStowageError } from '../../src/errors/index.js';
import { buildTar, describeTree, dir, file, hardlink, isRoot, linkGroups, sha256, streamOf, symlink, tmpdir, whiteout } from './helpers.js';
import { skipUnless } from '../harness/skip.js';

const roots: string[] = [];
const scratch = (): string => { const d = tmpdir(); roots.push(d); return d; };
afterAll(() => { for (const d of roots) fs.rmSync(d, { recursive: true, force: true }); });

async function streamToBuffer(s: NodeJS.ReadableStream): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out);
}

/** Lists a tar's entries as "type name[ -> link]" lines. */
function listTar(file: string): string[] {
  return execFileSync('tar', ['--numeric-owner', '-tvf', file]).toString().trim().split('\n').filter(Boolean);
}

const baseLayer = [
  dir('etc'), file('etc/hosts', 'h'), file('etc/passwd', 'root:x:0:0'), dir('usr'), dir('usr/bin'), file('usr/bin/a', 'aaaa', 0o755),
  hardlink('usr/bin/a', 'usr/bin/a2'), dir('var'), dir('var/lib'), file('var/lib/x'), dir('var/lib/deep'), file('var/lib/deep/y'),
  symlink('/etc/hosts', 'hostlink'), dir('opt'), file('opt/o'), file('same', '12345'),
];

async function parentLayer(): Promise<string> {
  const d = path.join(scratch(), 'l1');
  await applyLayer(streamOf(await buildTar(baseLayer)), d, { mode: 'overlay' });
  return d;
}

describe('diffDirs', () => {
  it('reports adds, modifies and deletes (one per removed tree) in path order, and the API form', async () => {
    const l1 = await parentLayer();
    const up = path.join(scratch(), 'up');
    await checkout(null, [l1], up);
    fs.writeFileSync(path.join(up, 'etc/hosts'), 'changed');
    fs.rmSync(path.join(up, 'var/lib'), { recursive: true });
    fs.writeFileSync(path.join(up, 'new'), 'n');
    fs.mkdirSync(path.join(up, 'etc/new.d'));
    fs.writeFileSync(path.join(up, 'etc/new.d/f'), '');
    fs.chmodSync(path.join(up, 'opt/o'), 0o600);
    const ch = await diffDirs([l1], up);
    expect(ch).toEqual([
      { kind: 'C', path: 'etc/hosts' }, { kind: 'A', path: 'etc/new.d' }, { kind: 'A', path: 'etc/new.d/f' },
      { kind: 'A', path: 'new' }, { kind: 'C', path: 'opt/o' }, { kind: 'D', path: 'var/lib' },
    ]);
    expect(toApiChanges(ch).slice(0, 2)).toEqual([{ Kind: 0, Path: '/etc/hosts' }, { Kind: 1, Path: '/etc/new.d' }]);
    expect(await diffDirs([l1], await treeSource(up)).then((c) => c.length)).toBe(6);
  });

  it('empty lower: everything is an add', async () => {
    const l1 = await parentLayer();
    const ch = await diffDirs([], l1);
    expect(ch.every((c) => c.kind === 'A')).toBe(true);
    expect(ch.map((c) => c.path)).toContain('usr/bin/a2');
  });

  it('LayerFileupdate: same size, same whole-second mtime, new content is a modification', async () => {
    const l1 = await parentLayer();
    const up = path.join(scratch(), 'up');
    await checkout(null, [l1], up);
    const p = path.join(up, 'same');
    const st = fs.statSync(p);
    fs.writeFileSync(p, '54321');
    fs.utimesSync(p, st.atime, st.mtime);
    expect(await diffDirs([l1], up)).toEqual([{ kind: 'C', path: 'same' }]);
  });

  it('orders a/b before a.b (separator lowest)', async () => {
    const up = path.join(scratch(), 'up');
    fs.mkdirSync(path.join(up, 'a'), { recursive: true });
    fs.writeFileSync(path.join(up, 'a/b'), '');
    fs.writeFileSync(path.join(up, 'a.b'), '');
    expect((await diffDirs([], up)).map((c) => c.path)).toEqual(['a', 'a/b', 'a.b']);
  });
});

describe('writeDiffLayer / diffTarStream', () => {
  it('writes whiteouts at the epoch, includes parents once, pairs hardlinks, and is deterministic', async () => {
    const l1 = await parentLayer();
    const up = path.join(scratch(), 'up');
    await checkout(null, [l1], up);
    fs.rmSync(path.join(up, 'var/lib/deep'), { recursive: true });
    fs.writeFileSync(path.join(up, 'usr/bin/a'), 'rewritten!');
    const ch = await diffDirs([l1], up);
    expect(ch).toEqual([{ kind: 'C', path: 'usr/bin/a' }, { kind: 'C', path: 'usr/bin/a2' }, { kind: 'D', path: 'var/lib/deep' }]);
    const t1 = await streamToBuffer(diffTarStream(ch, await treeSource(up)));
    const t2 = await streamToBuffer(diffTarStream(ch, await treeSource(up)));
    expect(sha256(t1)).toBe(sha256(t2));
    const tf = path.join(scratch(), 'l.tar');
    fs.writeFileSync(tf, t1);
    const lines = listTar(tf);
    expect(lines.map((l) => l.replace(/^(\S+)\s+\S+\s+\d+\s+\S+\s+\S+\s+/, '$1 '))).toEqual([
      'drwxr-xr-x usr/', 'drwxr-xr-x usr/bin/', '-rwxr-xr-x usr/bin/a', 'hrwxr-xr-x usr/bin/a2 link to usr/bin/a',
      'drwxr-xr-x var/', 'drwxr-xr-x var/lib/', '-rw-r--r-- var/lib/.wh.deep',
    ]);
    expect(lines[6]).toContain('1970-01-01 00:00');
  });

  it('commits into the content store with digest, diffID, size, media type and the uncompressed label', async () => {
    const cs = await openContentStore(path.join(scratch(), 'content'));
    const l1 = await parentLayer();
    for (const compression of ['gzip', 'zstd', 'none'] as const) {
      const w = await cs.writer({ ref: `diff-${compression}` });
      const res = await writeDiffLayer(await diffDirs([], l1), l1, w, { compression });
      const info = await cs.info(res.digest);
      expect(info.size).toBe(res.size);
      expect(info.labels['containerd.io/uncompressed']).toBe(res.diffID);
      expect(res.mediaType).toBe(compression === 'none' ? 'application/vnd.oci.image.layer.v1.tar' : `application/vnd.oci.image.layer.v1.tar+${compression}`);
      // the blob applies and reproduces the diffID
      const ra = await cs.readerAt({ digest: res.digest });
      const back = await applyLayer(ra.stream(), path.join(scratch(), 'fs'), { mode: 'merged' });
      await ra.close();
      expect(back.diffID).toBe(res.diffID);
      expect(back.compression).toBe(compression);
    }
  });
});

/** Every kind of change a user can make to a checked-out tree. */
function mutate(up: string): void {
  const p = (x: string): string => path.join(up, x);
  fs.writeFileSync(p('etc/hosts'), 'new hosts content');
  fs.rmSync(p('var/lib'), { recursive: true });
  fs.mkdirSync(p('var/lib'));
  fs.writeFileSync(p('var/lib/fresh'), 'fresh');
  fs.rmSync(p('opt'), { recursive: true });
  fs.writeFileSync(p('opt'), 'opt is a file now');
  fs.rmSync(p('hostlink'));
  fs.mkdirSync(p('hostlink'));
  fs.symlinkSync('../etc/passwd', p('etc/pw'));
  fs.linkSync(p('etc/passwd'), p('etc/passwd.hard'));
  fs.chmodSync(p('usr/bin'), 0o711);
  const deep = p('long/' + 'n'.repeat(150) + '/' + 'm'.repeat(200));
  fs.mkdirSync(path.dirname(deep), { recursive: true });
  fs.writeFileSync(deep, 'deep');
  fs.writeFileSync(p('big'), Buffer.alloc(2 * 1024 * 1024 + 3, 9));
  execFileSync('mkfifo', [p('fifo')]);
  fs.writeFileSync(p('suid'), '#!');
  fs.chmodSync(p('suid'), 0o4755);
  if (isRoot) {
    fs.chownSync(p('etc/hosts'), 1, 1);
    fs.mkdirSync(p('owned'));
    fs.chownSync(p('owned'), 33, 44);
  }
  fs.rmSync(p('same'));
}

describe('round trip: apply(diff(tree)) onto the parent reproduces the tree', () => {
  for (const compression of ['gzip', 'zstd'] as const) {
    it(`generated tree with every file type (${compression})`, async () => {
      const l1 = await parentLayer();
      const up = path.join(scratch(), 'up');
      await checkout(null, [l1], up);
      mutate(up);
      const ch = await diffDirs([l1], up);
      const layerFile = path.join(scratch(), 'layer');
      const res = await writeDiffLayer(ch, up, fs.createWriteStream(layerFile), { compression });
      // overlay-layout apply on top of the parent, then checkout of the chain
      const l2 = path.join(scratch(), 'l2');
      const applied = await applyLayer(fs.createReadStream(layerFile), l2, { mode: 'overlay', lowerDirs: [l1] });
      expect(applied.diffID).toBe(res.diffID);
      const merged = path.join(scratch(), 'merged');
      await checkout(null, [l2, l1], merged);
      expect(await describeTree(merged, { mtimes: true })).toEqual(await describeTree(up, { mtimes: true }));
      expect(linkGroups(merged)).toEqual(linkGroups(up));
      // plain-tree apply onto a checkout of the parent gives the same tree
      const plain = path.join(scratch(), 'plain');
      await checkout(null, [l1], plain);
      await applyLayer(fs.createReadStream(layerFile), plain, { mode: 'merged' });
      expect(await describeTree(plain, { mtimes: true })).toEqual(await describeTree(up, { mtimes: true }));
      // and the upper-dir fast path sees the same set of paths
      const fast = layerChanges([l1], l2).map((c) => `${c.kind === 'D' ? 'D' : 'X'} ${c.path}`);
      for (const c of ch.filter((c) => c.kind === 'D')) expect(fast).toContain(`D ${c.path}`);
    });
  }

  it('a real tree (/etc) from scratch and modified on top', async () => {
    const real = path.join(scratch(), 'etc');
    execFileSync('cp', ['-a', '/etc', real]);
    const t1 = path.join(scratch(), 't1');
    const r1 = await writeDiffLayer(await diffDirs([], real), real, fs.createWriteStream(t1), { compression: 'gzip' });
    const l1 = path.join(scratch(), 'l1');
    expect((await applyLayer(fs.createReadStream(t1), l1, { mode: 'overlay' })).diffID).toBe(r1.diffID);
    const co = path.join(scratch(), 'co');
    await checkout(null, [l1], co);
    expect(await describeTree(co, { mtimes: true })).toEqual(await describeTree(real, { mtimes: true }));
    // modify some real files and round-trip the second layer
    const names = fs.readdirSync(co).sort();
    fs.rmSync(path.join(co, names[0]!), { recursive: true });
    fs.writeFileSync(path.join(co, names[3]!, 'added'), 'a', { flag: 'w' });
    const ch = await diffDirs([l1], co);
    expect(ch.length).toBeGreaterThanOrEqual(2);
    const t2 = path.join(scratch(), 't2');
    await writeDiffLayer(ch, co, fs.createWriteStream(t2), { compression: 'none' });
    const l2 = path.join(scratch(), 'l2');
    await applyLayer(fs.createReadStream(t2), l2, { mode: 'overlay', lowerDirs: [l1] });
    const co2 = path.join(scratch(), 'co2');
    await checkout(null, [l2, l1], co2);
    expect(await describeTree(co2, { mtimes: true })).toEqual(await describeTree(co, { mtimes: true }));
  });

  it('an overlay layer dir with whiteouts and opaque dirs re-exports to an equivalent layer', async () => {
    const l1 = await parentLayer();
    const l2 = path.join(scratch(), 'l2');
    await applyLayer(streamOf(await buildTar([whiteout('etc/.wh.hosts'), dir('var'), whiteout('var/.wh..wh..opq'), file('var/only'), whiteout('.wh.opt'), dir('opt'), file('opt/new')])), l2, { mode: 'overlay', lowerDirs: [l1] });
    const ch = layerChanges([l1], l2);
    expect(ch.find((c) => c.path === 'var')?.opaque).toBe(true);
    expect(ch.find((c) => c.path === 'opt')?.opaque).toBe(true);
    const t = path.join(scratch(), 't');
    await writeDiffLayer(ch, l2, fs.createWriteStream(t), { compression: 'none' });
    const again = path.join(scratch(), 'again');
    await applyLayer(fs.createReadStream(t), again, { mode: 'overlay', lowerDirs: [l1] });
    const a = path.join(scratch(), 'a'); const b = path.join(scratch(), 'b');
    await checkout(null, [l2, l1], a);
    await checkout(null, [again, l1], b);
    expect(await describeTree(b)).toEqual(await describeTree(a));
    expect(fs.readdirSync(path.join(a, 'var'))).toEqual(['only']);
    expect(fs.readdirSync(path.join(a, 'opt'))).toEqual(['new']);
    expect(fs.existsSync(path.join(a, 'etc/hosts'))).toBe(false);
  });
});

describe('xattrs across apply, checkout and diff', () => {
  it('user.* xattrs survive apply → checkout → diff as SCHILY.xattr records', async () => {
    const l1 = path.join(scratch(), 'l1');
    await applyLayer(streamOf(await buildTar([file('x', 'v', 0o644, { pax: { 'SCHILY.xattr.user.comment': 'hello' } }), file('plain', 'p')])), l1, { mode: 'overlay' });
    const co = path.join(scratch(), 'co');
    await checkout(null, [l1], co);
    expect(execFileSync('getfattr', ['--only-values', '-n', 'user.comment', path.join(co, 'x')]).toString()).toBe('hello');
    const tf = path.join(scratch(), 'x.tar');
    fs.writeFileSync(tf, await streamToBuffer(diffTarStream(await diffDirs([], co), await treeSource(co))));
    const back = path.join(scratch(), 'back');
    await applyLayer(fs.createReadStream(tf), back, { mode: 'merged' });
    expect(execFileSync('getfattr', ['--only-values', '-n', 'user.comment', path.join(back, 'x')]).toString()).toBe('hello');
    expect(execFileSync('getfattr', ['-d', path.join(back, 'plain')]).toString()).toBe('');
  });

  it('xattrs added by hand are exported when asked to scan', async () => {
    const up = path.join(scratch(), 'up');
    fs.mkdirSync(up);
    fs.writeFileSync(path.join(up, 'f'), 'f');
    execFileSync('setfattr', ['-n', 'user.k', '-v', 'val', path.join(up, 'f')]);
    const without = await streamToBuffer(diffTarStream(await diffDirs([], up), await treeSource(up)));
    const withX = await streamToBuffer(diffTarStream(await diffDirs([], up), await treeSource(up, { scanXattrs: true })));
    expect(without.includes('SCHILY.xattr.user.k')).toBe(false);
    expect(withX.includes('SCHILY.xattr.user.k=val')).toBe(true);
  });
});

describe('diff of names that a layer cannot represent', () => {
  it('a real file named .wh.<x> is refused (it would apply as the deletion of <x>), dotfiles are fine', async () => {
    const up = path.join(scratch(), 'up');
    fs.mkdirSync(up);
    fs.writeFileSync(path.join(up, 'foo'), 'keep me');
    fs.writeFileSync(path.join(up, '.hidden'), 'dot');
    const ok = path.join(scratch(), 'ok');
    await applyLayer(diffTarStream(await diffDirs([], up), await treeSource(up)), ok, { mode: 'merged' });
    expect(fs.readFileSync(path.join(ok, '.hidden'), 'utf8')).toBe('dot');
    fs.writeFileSync(path.join(up, '.wh.foo'), '');
    const err = await writeDiffLayer(await diffDirs([], up), up, fs.createWriteStream(path.join(scratch(), 't')), { compression: 'none' }).catch((e) => e);
    expect(isStowageError(err, 'InvalidArgument'), String(err)).toBe(true);
  });
});

describe('diff compares security.capability (continuity sameFile step 3)', () => {
  const it = skipUnless(isRoot, 'needs root: security.* xattrs');
  it('a capability removed from an otherwise unchanged file is a modification', async () => {
    const cap = '\x01\x00\x00\x02\x00\x20\x00\x00' + '\x00'.repeat(12); // cap_net_raw=ep (valid UTF-8)
    const l1 = path.join(scratch(), 'l1');
    await applyLayer(streamOf(await buildTar([file('ping', 'p', 0o755, { pax: { 'SCHILY.xattr.security.capability': cap } }), file('other', 'o')])), l1, { mode: 'overlay' });
    const co = path.join(scratch(), 'co');
    await checkout(null, [l1], co);
    expect(await diffDirs([l1], co)).toEqual([]);
    execFileSync('setfattr', ['-x', 'security.capability', path.join(co, 'ping')]);
    expect(await diffDirs([l1], await treeSource(co, { scanXattrs: true }))).toEqual([{ kind: 'C', path: 'ping' }]);
  });
});

describe('writeDiffLayer into a content Writer', () => {
  it('releases the writer when the layer cannot be written (as commit does on success)', async () => {
    const cs = await openContentStore(path.join(scratch(), 'content'));
    const up = path.join(scratch(), 'up');
    fs.mkdirSync(up);
    fs.writeFileSync(path.join(up, '.wh.bad'), '');
    const w = await cs.writer({ ref: 'diff-fail' });
    const err = await writeDiffLayer(await diffDirs([], up), up, w).catch((e) => e);
    expect(isStowageError(err, 'InvalidArgument'), String(err)).toBe(true);
    const again = await cs.writer({ ref: 'diff-fail' }).catch((e) => e);
    expect(isStowageError(again), String(again)).toBe(false);
    await again.close();
  });
});
