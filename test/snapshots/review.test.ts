// Regression tests from a review of src/snapshots: each case failed before its fix.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { applyLayer, checkout, diffDirs, diffTarStream, treeSource, writeDiffLayer } from '../../src/snapshots/index.js';
import { isStowageError } from '../../src/errors/index.js';
import { openContentStore } from '../../src/content/index.js';
import { buildTar, describeTree, dir, file, isRoot, streamOf, symlink, tmpdir, whiteout, type TEntry } from './helpers.js';
import { skipUnless } from '../harness/skip.js';

const roots: string[] = [];
const scratch = (): string => { const d = tmpdir(); roots.push(d); return d; };
afterAll(() => { for (const d of roots) fs.rmSync(d, { recursive: true, force: true }); });

const OLD = new Date('2001-02-03T04:05:06Z');

describe('directory times are never set through a symlink that replaced the directory', () => {
  it('a dir entry later replaced by a symlink to a host file leaves the host file times alone', async () => {
    const base = scratch();
    const host = path.join(base, 'host');
    fs.mkdirSync(host);
    fs.writeFileSync(path.join(host, 'passwd'), 'p');
    fs.utimesSync(path.join(host, 'passwd'), OLD, OLD);
    await applyLayer(streamOf(await buildTar([dir('a'), symlink(path.join(host, 'passwd'), 'a')])), path.join(base, 'root'), { mode: 'merged' });
    expect(fs.statSync(path.join(host, 'passwd')).mtime.toISOString()).toBe(OLD.toISOString());
  });

  it('a nested dir whose ancestor became a symlink to a host dir leaves the host dir times alone', async () => {
    const base = scratch();
    const host = path.join(base, 'host');
    fs.mkdirSync(path.join(host, 'b'), { recursive: true });
    fs.utimesSync(path.join(host, 'b'), OLD, OLD);
    for (const mode of ['merged', 'overlay'] as const) {
      await applyLayer(streamOf(await buildTar([dir('a'), dir('a/b'), symlink(host, 'a')])), path.join(base, `root-${mode}`), { mode });
      expect(fs.statSync(path.join(host, 'b')).mtime.toISOString()).toBe(OLD.toISOString());
    }
  });
});

describe('merged apply keeps what the same layer unpacked under implicit parents (as overlay layout does)', () => {
  async function both(lower: TEntry[], upper: TEntry[]): Promise<{ merged: string; overlay: string }> {
    const base = scratch();
    const merged = path.join(base, 'merged');
    await applyLayer(streamOf(await buildTar(lower)), merged, { mode: 'merged' });
    await applyLayer(streamOf(await buildTar(upper)), merged, { mode: 'merged' });
    const l1 = path.join(base, 'l1'); const l2 = path.join(base, 'l2');
    await applyLayer(streamOf(await buildTar(lower)), l1, { mode: 'overlay' });
    await applyLayer(streamOf(await buildTar(upper)), l2, { mode: 'overlay', lowerDirs: [l1] });
    const overlay = path.join(base, 'overlay');
    await checkout(null, [l2, l1], overlay);
    return { merged, overlay };
  }

  it('opaque marker after a file whose parent dir has no entry of its own', async () => {
    const { merged, overlay } = await both([dir('a'), file('a/old'), dir('a/b'), file('a/b/oldb')], [file('a/b/new', 'n'), whiteout('a/.wh..wh..opq')]);
    expect(fs.readFileSync(path.join(merged, 'a/b/new'), 'utf8')).toBe('n');
    expect(fs.existsSync(path.join(merged, 'a/old'))).toBe(false);
    expect(fs.existsSync(path.join(merged, 'a/b/oldb'))).toBe(false);
    expect(await describeTree(merged)).toEqual(await describeTree(overlay));
  });

  it('whiteout of a directory after a same-layer file under it', async () => {
    const { merged, overlay } = await both([dir('x'), file('x/old')], [file('x/y', 'y'), whiteout('.wh.x')]);
    expect(fs.readFileSync(path.join(merged, 'x/y'), 'utf8')).toBe('y');
    expect(fs.existsSync(path.join(merged, 'x/old'))).toBe(false);
    expect(await describeTree(merged)).toEqual(await describeTree(overlay));
  });
});

/** Rewrites the size field of the header at `off` (12 bytes) and fixes the checksum. */
function patchHeader(t: Buffer, off: number, field: Buffer, at: number): void {
  field.copy(t, off + at);
  t.fill(0x20, off + 148, off + 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += t[off + i]!;
  Buffer.from(sum.toString(8).padStart(6, '0') + '\0 ', 'latin1').copy(t, off + 148);
}

describe('the diffID tap parses the archive exactly as the extractor does', () => {
  it('a size field with leading NULs (read as its value by Go and tar-stream) does not end the archive early', async () => {
    const t = await buildTar([file('zeros', Buffer.alloc(1024)), file('after', 'still here')]);
    patchHeader(t, 0, Buffer.from('\x00'.repeat(6) + '2000\x00', 'latin1'), 124); // 02000 = 1024
    const dest = path.join(scratch(), 'fs');
    const r = await applyLayer(streamOf(t), dest, { mode: 'merged' });
    expect(fs.statSync(path.join(dest, 'zeros')).size).toBe(1024);
    expect(fs.readFileSync(path.join(dest, 'after'), 'utf8')).toBe('still here');
    expect(r.entries).toBe(2);
  });

  it('a PAX value that contains text looking like a size record is not read as one', async () => {
    const t = await buildTar([file('zeros', Buffer.alloc(2048), 0o644, { pax: { comment: 'a\n11 size=0\n' } }), file('after', 'still here')]);
    const dest = path.join(scratch(), 'fs');
    await applyLayer(streamOf(t), dest, { mode: 'merged' });
    expect(fs.readFileSync(path.join(dest, 'after'), 'utf8')).toBe('still here');
  });
});

describe('unknown entry types', () => {
  it('are reported and skipped, never written as regular files', async () => {
    const t = await buildTar([file('sparse', 'not the real content'), file('ok', 'y')]);
    t[156] = 'S'.charCodeAt(0); // GNU sparse: data is a sparse map, not the file
    patchHeader(t, 0, Buffer.alloc(0), 0);
    const dest = path.join(scratch(), 'fs');
    const r = await applyLayer(streamOf(t), dest, { mode: 'merged' });
    expect(fs.existsSync(path.join(dest, 'sparse'))).toBe(false);
    expect(r.skipped.map((s) => s.path)).toEqual(['sparse']);
    expect(fs.readFileSync(path.join(dest, 'ok'), 'utf8')).toBe('y');
  });
});

/** A raw ustar header block (test fixture for records tar-stream cannot write). */
function rawHeader(name: string, flag: string, size: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 'utf8');
  b.write('0000644\0', 100); b.write('0000000\0', 108); b.write('0000000\0', 116);
  b.write(size.toString(8).padStart(11, '0') + '\0', 124); b.write('00000000000\0', 136);
  b.write(flag, 156); b.write('ustar\0', 257, 'latin1'); b.write('00', 263);
  patchHeader(b, 0, Buffer.alloc(0), 0);
  return b;
}
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}
const pad = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);

// cap_setuid,cap_setgid=ep: a vfs_cap_data value that is not valid UTF-8 (0xc0 0x00).
const CAP = Buffer.from('01000002c0000000000000000000000000000000', 'hex');
const getCap = (p: string): string => execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', 'security.capability', p]).toString('hex');

describe('binary xattr values (security.capability) survive apply, checkout and diff', () => {
  const it = skipUnless(isRoot, 'needs root: security.* xattrs');
  it('apply keeps the exact bytes of a SCHILY.xattr record', async () => {
    const rec = paxRecord('SCHILY.xattr.security.capability', CAP);
    const t = Buffer.concat([rawHeader('PaxHeaders/f', 'x', rec.length), pad(rec), await buildTar([file('f', 'bin', 0o755)])]);
    const l1 = path.join(scratch(), 'fs');
    await applyLayer(streamOf(t), l1, { mode: 'overlay' });
    expect(getCap(path.join(l1, 'f'))).toBe(CAP.toString('hex'));
    // and the layer written from a checkout of it carries the same bytes
    const co = path.join(scratch(), 'co');
    await checkout(null, [l1], co);
    expect(getCap(path.join(co, 'f'))).toBe(CAP.toString('hex'));
    const back = path.join(scratch(), 'back');
    await applyLayer(diffTarStream(await diffDirs([], co), await treeSource(co)), back, { mode: 'merged' });
    expect(getCap(path.join(back, 'f'))).toBe(CAP.toString('hex'));
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

describe('hardlinks to files of lower layers (copy-up)', () => {
  for (const noXattrs of [false, true]) {
    it(`keep the target's recorded owner and mode, and its xattrs (${noXattrs ? 'sidecar-only lower layer' : 'xattrs'})`, async () => {
      const base = scratch();
      const l1 = path.join(base, 'l1');
      await applyLayer(streamOf(await buildTar([dir('bin'), file('bin/tool', 'x', 0o4750, { uid: 5, gid: 6, pax: { 'SCHILY.xattr.user.note': 'kept' } })])), l1, { mode: 'overlay', rootless: true, noXattrs });
      const l2 = path.join(base, 'l2');
      await applyLayer(streamOf(await buildTar([{ name: 'bin/tool2', type: 'link', linkname: 'bin/tool' }])), l2, { mode: 'overlay', lowerDirs: [l1], rootless: true });
      const co = path.join(base, 'co');
      await checkout(null, [l2, l1], co, { rootless: true });
      const t = await describeTree(co);
      expect(t['bin/tool']).toMatchObject({ uid: 5, gid: 6, mode: 0o4750 });
      expect(t['bin/tool2']).toMatchObject({ uid: 5, gid: 6, mode: 0o4750 });
      // noXattrs stands for a file system without xattrs: there is nothing to keep then
      if (!noXattrs) expect(execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', 'user.note', path.join(co, 'bin/tool')]).toString()).toBe('kept');
    });
  }
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

describe('overlay layout: only marker files are whiteouts', () => {
  it('a directory named .wh.etc (from the ordinary entry .wh.etc/somefile) does not hide etc', async () => {
    const lower = [dir('etc'), file('etc/passwd', 'p')];
    const upper = [file('.wh.etc/somefile', 's')];
    const base = scratch();
    const l1 = path.join(base, 'l1'); const l2 = path.join(base, 'l2');
    await applyLayer(streamOf(await buildTar(lower)), l1, { mode: 'overlay' });
    await applyLayer(streamOf(await buildTar(upper)), l2, { mode: 'overlay', lowerDirs: [l1] });
    const co = path.join(base, 'co');
    await checkout(null, [l2, l1], co);
    const merged = path.join(base, 'merged');
    await applyLayer(streamOf(await buildTar(lower)), merged, { mode: 'merged' });
    await applyLayer(streamOf(await buildTar(upper)), merged, { mode: 'merged' });
    expect(fs.readFileSync(path.join(co, 'etc/passwd'), 'utf8')).toBe('p');
    expect(fs.readFileSync(path.join(co, '.wh.etc/somefile'), 'utf8')).toBe('s');
    expect(await describeTree(co)).toEqual(await describeTree(merged));
  });
});
