import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import tar from 'tar-stream';
import { applyLayer, checkout, diffDirs, diffTarStream, loadOverrides, OVERRIDE_XATTR, sidecarPath, treeSource } from '../../src/snapshots/index.js';
import { blockData, buildTar, capabilityHex, describeTree, dir, file, hardlink, isRoot, paxRecords, rawHeader, streamOf, symlink, tmpdir, type TEntry } from './helpers.js';
import { fileRecords, readXattrs } from '../../src/snapshots/ownership.js';
import { skipUnless } from '../harness/skip.js';

const roots: string[] = [];
const scratch = (): string => { const d = tmpdir(); roots.push(d); return d; };
afterAll(() => { for (const d of roots) fs.rmSync(d, { recursive: true, force: true }); });

const layer: TEntry[] = [
  dir('etc', 0o755),
  file('etc/shadow', 'secret', 0o640, { gid: 42 }),
  dir('bin', 0o755),
  file('bin/su', 'su', 0o4755),
  file('bin/sg', 'sg', 0o2711, { gid: 5 }),
  dir('home', 0o755),
  dir('home/user', 0o700, { uid: 1000, gid: 1000 }),
  file('home/user/.profile', 'p', 0o600, { uid: 1000, gid: 1000 }),
  symlink('/etc/shadow', 'link'),
  { ...symlink('/x', 'home/user/ulink'), uid: 1000, gid: 1000 },
  file('ro', 'r', 0o400),
  dir('locked', 0o500, { uid: 7, gid: 7 }),
  file('locked/inside', 'i', 0o644, { uid: 7, gid: 7 }),
  hardlink('home/user/.profile', 'profile-link'),
  { name: 'dev-null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 },
];

interface H { type: string; uid: number; gid: number; mode: number; linkname?: string | null }
async function headers(buf: Buffer | NodeJS.ReadableStream): Promise<Record<string, H>> {
  const ex = tar.extract();
  const out: Record<string, H> = {};
  const feed = (async () => { if (Buffer.isBuffer(buf)) ex.end(buf); else { for await (const c of buf) ex.write(c as Buffer); (ex as unknown as NodeJS.WritableStream).end(); } })();
  for await (const e of ex) {
    const h = e.header;
    // a hardlink's own uid/gid/mode fields are meaningless (it shares its target's inode)
    out[h.name.replace(/\/$/, '')] = h.type === 'link'
      ? { type: h.type, uid: 0, gid: 0, mode: 0, linkname: h.linkname }
      : { type: h.type, uid: h.uid, gid: h.gid, mode: h.mode & 0o7777, ...(h.type === 'symlink' ? { linkname: h.linkname } : {}) };
    for await (const _ of e) { /* drain */ }
  }
  await feed;
  return out;
}

describe('rootless ownership overrides (forced unprivileged mode)', () => {
  for (const noXattrs of [false, true]) {
    it(`records intended owner/mode and the diff reproduces them exactly (${noXattrs ? 'sidecar only' : 'xattrs + sidecar'})`, async () => {
      const t = await buildTar(layer);
      const dest = path.join(scratch(), 'fs');
      const r = await applyLayer(streamOf(t), dest, { mode: 'overlay', rootless: true, noXattrs });
      expect(r.skipped.map((s) => s.path)).toEqual(['dev-null']);
      // nothing was chowned: files belong to the (root) caller; modes keep owner access
      expect(fs.statSync(path.join(dest, 'home/user')).uid).toBe(process.geteuid!());
      expect(fs.statSync(path.join(dest, 'locked')).mode & 0o777).toBe(0o700);
      expect(fs.statSync(path.join(dest, 'ro')).mode & 0o777).toBe(0o600);
      const ov = await loadOverrides(dest);
      expect(ov.get('home/user')).toEqual({ uid: 1000, gid: 1000, mode: 0o700 });
      expect(ov.get('home/user/ulink')).toEqual({ uid: 1000, gid: 1000, mode: 0o777 });
      expect(ov.get('ro')).toEqual({ uid: 0, gid: 0, mode: 0o400 });
      expect(ov.get('etc/shadow')).toEqual({ uid: 0, gid: 42, mode: 0o640 });
      const sidecar = JSON.parse(fs.readFileSync(sidecarPath(dest), 'utf8'));
      expect(Object.keys(sidecar.entries)).toContain('home/user/ulink');
      if (!noXattrs) {
        expect(execFileSync('getfattr', ['--only-values', '-n', OVERRIDE_XATTR, path.join(dest, 'home/user')]).toString()).toBe('1000:1000:0700');
        expect(Object.keys(sidecar.entries)).not.toContain('home/user');
      }
      // export: every header but the skipped device matches the original
      const orig = await headers(t);
      delete orig['dev-null'];
      const exported = await headers(diffTarStream(await diffDirs([], dest), await treeSource(dest)));
      expect(exported).toEqual(orig);
      // a rootless checkout carries the overrides along, and exports the same again
      const co = path.join(scratch(), 'co');
      await checkout(null, [dest], co, { rootless: true });
      expect(await headers(diffTarStream(await diffDirs([], co), await treeSource(co)))).toEqual(orig);
    });
  }

  skipUnless(isRoot, 'needs root: a privileged checkout chowns')('a privileged checkout of a rootless layer applies the recorded owners for real', async () => {
    const dest = path.join(scratch(), 'fs');
    await applyLayer(streamOf(await buildTar(layer)), dest, { mode: 'overlay', rootless: true });
    const co = path.join(scratch(), 'co');
    await checkout(null, [dest], co);
    expect(fs.statSync(path.join(co, 'home/user')).uid).toBe(1000);
    expect(fs.statSync(path.join(co, 'locked')).mode & 0o7777).toBe(0o500);
    expect(fs.statSync(path.join(co, 'bin/sg')).mode & 0o7777).toBe(0o2711);
    expect(fs.lstatSync(path.join(co, 'home/user/ulink')).uid).toBe(1000);
    expect(fs.existsSync(sidecarPath(co))).toBe(false);
  });
});

const canDrop = isRoot && spawnSync('setpriv', ['--version']).status === 0 && spawnSync('unshare', ['--mount', 'true']).status === 0;

describe('a real unprivileged process (setpriv --reuid=65534)', () => {
  const it = skipUnless(canDrop, 'needs root, setpriv and unshare to run a process as uid 65534');
  it('applies, keeps overrides and exports the original owners and modes', async () => {
    const base = scratch();
    fs.chmodSync(base, 0o755);
    const work = path.join(base, 'w');
    fs.mkdirSync(work);
    const t = await buildTar(layer);
    fs.writeFileSync(path.join(work, 'layer.tar'), t);
    const script = path.join(work, 'child.mts');
    // The project may sit under a directory the unprivileged user cannot traverse (a CI clone in a
    // 0700 temp dir): bind-mount it into our world-readable scratch dir in a private mount namespace.
    const bound = path.join(base, 'project');
    fs.mkdirSync(bound);
    const src = path.join(bound, 'src/snapshots/index.ts');
    fs.writeFileSync(script, `
      import fs from 'node:fs';
      const m = await import(${JSON.stringify(src)});
      const dest = ${JSON.stringify(path.join(work, 'fs'))};
      const r = await m.applyLayer(fs.createReadStream(${JSON.stringify(path.join(work, 'layer.tar'))}), dest, { mode: 'overlay' });
      const out = fs.createWriteStream(${JSON.stringify(path.join(work, 'out.tar'))});
      await m.writeDiffLayer(await m.diffDirs([], dest), dest, out, { compression: 'none' });
      await new Promise((res) => out.end(res));
      console.log(JSON.stringify({ uid: process.geteuid(), skipped: r.skipped, diffID: r.diffID }));
    `);
    execFileSync('chown', ['-R', '65534:65534', work]);
    const run = 'mount --bind "$1" "$2" && exec setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp "$2/node_modules/.bin/tsx" "$3"';
    const res = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', run, 'sh', process.cwd(), bound, script], { cwd: work, encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout.trim().split('\n').pop()!);
    expect(report.uid).toBe(65534);
    expect(report.skipped.map((s: { path: string }) => s.path)).toEqual(['dev-null']);
    expect(fs.statSync(path.join(work, 'fs/home/user')).uid).toBe(65534);
    const orig = await headers(t);
    delete orig['dev-null'];
    expect(await headers(fs.readFileSync(path.join(work, 'out.tar')))).toEqual(orig);
  }, 60_000);
});

describe('xattrs read back through getfattr', () => {
  it('keeps odd file names and binary values exact, for a tree and for one file', async () => {
    const root = scratch();
    const odd = 'we\\ird\nname é';
    fs.writeFileSync(path.join(root, odd), 'x');
    fs.mkdirSync(path.join(root, 'sub'));
    fs.writeFileSync(path.join(root, 'sub/plain'), 'y');
    execFileSync('setfattr', ['-n', 'user.bin', '-v', '0x00ff0a3d', path.join(root, odd)]);
    execFileSync('setfattr', ['-n', 'user.text', '-v', 'a=b', path.join(root, 'sub/plain')]);
    execFileSync('setfattr', ['-n', OVERRIDE_XATTR, '-v', '0:42:0640', path.join(root, 'sub/plain')]);
    const all = await readXattrs(root, '^user\\.');
    expect(all.get(odd)).toEqual({ 'user.bin': Buffer.from([0x00, 0xff, 0x0a, 0x3d]) });
    expect(all.get('sub/plain')).toEqual({ 'user.text': Buffer.from('a=b'), [OVERRIDE_XATTR]: Buffer.from('0:42:0640') });
    // One file, as a copy-up reads it: the override record apart from the carried xattrs.
    expect(fileRecords(root, 'sub/plain', path.join(root, 'sub/plain'))).toEqual({ override: { uid: 0, gid: 42, mode: 0o640 }, xattrs: { 'user.text': Buffer.from('a=b') } });
    expect(fileRecords(root, odd, path.join(root, odd))).toEqual({ xattrs: { 'user.bin': Buffer.from([0x00, 0xff, 0x0a, 0x3d]) } });
  });
});

// cap_setuid,cap_setgid=ep: a vfs_cap_data value that is not valid UTF-8 (0xc0 0x00).
const CAP = Buffer.from('01000002c0000000000000000000000000000000', 'hex');

describe('binary xattr values (security.capability) survive apply, checkout and diff', () => {
  const it = skipUnless(isRoot, 'needs root: security.* xattrs');
  it('apply keeps the exact bytes of a SCHILY.xattr record', async () => {
    const rec = paxRecords([['SCHILY.xattr.security.capability', CAP]]);
    const t = Buffer.concat([rawHeader({ name: 'PaxHeaders/f', type: 'x', size: rec.length }), blockData(rec), await buildTar([file('f', 'bin', 0o755)])]);
    const l1 = path.join(scratch(), 'fs');
    await applyLayer(streamOf(t), l1, { mode: 'overlay' });
    expect(capabilityHex(path.join(l1, 'f'))).toBe(CAP.toString('hex'));
    // and the layer written from a checkout of it carries the same bytes
    const co = path.join(scratch(), 'co');
    await checkout(null, [l1], co);
    expect(capabilityHex(path.join(co, 'f'))).toBe(CAP.toString('hex'));
    const back = path.join(scratch(), 'back');
    await applyLayer(diffTarStream(await diffDirs([], co), await treeSource(co)), back, { mode: 'merged' });
    expect(capabilityHex(path.join(back, 'f'))).toBe(CAP.toString('hex'));
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
