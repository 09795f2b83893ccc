// containerd's TestBreakouts (pkg/archive/tar_test.go), plus the CVE cases it and other unpackers fixed
// (CVE-2021-32760, CVE-2025-47290 and symlink swaps: see 'CVE cases' below).
// Absolute symlink targets point at a real "host" directory outside the root (never the machine's /etc),
// so a broken guard would show up as a write there, and no test can damage the machine.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { applyLayer } from '../../src/snapshots/index.js';
import { isStowageError } from '../../src/errors/index.js';
import { buildTar, dir, file, hardlink, streamOf, symlink, tmpdir, whiteout, type TEntry } from './helpers.js';

const base = tmpdir('stowage-breakout-');
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

let n = 0;
let root: string;
let host: string;
/** host directory (outside the root), holding files a breakout would change. */
beforeEach(() => {
  const d = path.join(base, String(n++));
  root = path.join(d, 'root');
  host = path.join(d, 'host');
  fs.mkdirSync(host, { recursive: true });
  fs.writeFileSync(path.join(host, 'passwd'), 'host-passwd');
  fs.chmodSync(path.join(host, 'passwd'), 0o600);
});

function hostUntouched(): void {
  expect(fs.readdirSync(host)).toEqual(['passwd']);
  expect(fs.readFileSync(path.join(host, 'passwd'), 'utf8')).toBe('host-passwd');
  expect(fs.statSync(path.join(host, 'passwd')).mode & 0o7777).toBe(0o600);
  expect(execFileSync('getfattr', ['-d', '-m', '-', path.join(host, 'passwd')]).toString()).toBe('');
}

async function apply(entries: TEntry[], mode: 'merged' | 'overlay' = 'merged'): Promise<void> {
  await applyLayer(streamOf(await buildTar(entries)), root, { mode });
}

async function expectBreakout(entries: TEntry[], reason = 'breakout'): Promise<void> {
  const pre = fs.existsSync(root) ? fs.readdirSync(root).sort() : null;
  const err = await apply(entries).catch((e) => e);
  expect(isStowageError(err, 'InvalidArgument'), String(err)).toBe(true);
  expect(err.data.reason).toBe(reason);
  // a fresh root is staged: nothing is left behind
  if (pre === null) expect(fs.existsSync(root)).toBe(false);
  expect(fs.readdirSync(path.dirname(root)).filter((x) => x.startsWith('.stowage'))).toEqual([]);
  hostUntouched();
}

const inRoot = (p: string): string => path.join(root, p);
const sameInode = (a: string, b: string): boolean => fs.lstatSync(inRoot(a)).ino === fs.lstatSync(inRoot(b)).ino;

describe('TestBreakouts: symlink escapes (writes land inside the root)', () => {
  it('SymlinkAbsolute', async () => {
    await apply([dir('etc'), symlink(host, 'localetc'), file('/localetc/unbroken', 'going to /etc')]);
    expect(fs.readFileSync(inRoot(path.join(host, 'unbroken')), 'utf8')).toBe('going to /etc');
    hostUntouched();
  });
  it('SymlinkUpAndOut', async () => {
    await apply([dir('etc'), dir('dummy'), symlink('/dummy/../../../../../../../..' + host, 'localetc'), file('/localetc/unbroken', 'x')]);
    expect(fs.existsSync(inRoot(path.join(host, 'unbroken')))).toBe(true);
    hostUntouched();
  });
  it('SymlinkMultipleAbsolute', async () => {
    await apply([dir('etc'), dir('dummy'), symlink(host, '/dummy/etc'), symlink('/dummy/etc', 'localetc'), file('/dummy/etc/unbroken', 'x'), file('localetc/unbroken2', 'y')]);
    expect(fs.readFileSync(inRoot(path.join(host, 'unbroken')), 'utf8')).toBe('x');
    expect(fs.readFileSync(inRoot(path.join(host, 'unbroken2')), 'utf8')).toBe('y');
    hostUntouched();
  });
  it('SymlinkMultipleRelative', async () => {
    await apply([dir('etc'), dir('dummy'), symlink('../../../../../../..' + host, '/dummy/etc'), symlink('../dummy/etc', 'localetc'), file('/dummy/etc/unbroken', 'x'), file('localetc/u2', 'y')]);
    expect(fs.existsSync(inRoot(path.join(host, 'unbroken')))).toBe(true);
    expect(fs.existsSync(inRoot(path.join(host, 'u2')))).toBe(true);
    hostUntouched();
  });
  it('SymlinkEmptyFile', async () => {
    await apply([dir('etc'), file('etc/emptied', 'not-empty'), symlink('/etc', 'localetc'), file('/localetc/emptied', ''), symlink(host, 'h'), file('h/passwd', '')]);
    expect(fs.readFileSync(inRoot('etc/emptied'), 'utf8')).toBe('');
    hostUntouched();
  });
});

describe('TestBreakouts: hardlink escapes', () => {
  const base = (): TEntry[] => [dir('etc'), file('etc/passwd', 'inside'), dir('dummy')];
  it('HardlinkRelative: refused (climbs out of the root)', async () => {
    await expectBreakout([...base(), hardlink('../../../../../etc/passwd', 'localpasswd')]);
  });
  it('HardlinkDownAndOut: refused', async () => {
    await expectBreakout([...base(), hardlink('/dummy/../../../../etc/passwd', 'localpasswd')]);
  });
  it('HardlinkAbsolute: resolved against the root', async () => {
    await apply([...base(), hardlink('/etc/passwd', 'localpasswd')]);
    expect(sameInode('localpasswd', 'etc/passwd')).toBe(true);
    hostUntouched();
  });
  it('HardlinkRelativeLong: refused', async () => {
    await expectBreakout([...base(), hardlink('../../../../../../../../../../../../../etc/passwd', 'localpasswd')]);
  });
  it('HardlinkRelativeUpAndOut: refused', async () => {
    await expectBreakout([...base(), hardlink('/dummy/../../../etc/passwd', 'localpasswd')]);
  });
  it('HardlinkDirectRelative', async () => {
    await apply([...base(), hardlink('etc/passwd', 'localpasswd')]);
    expect(sameInode('localpasswd', 'etc/passwd')).toBe(true);
  });
  it('HardlinkDirectAbsolute', async () => {
    await apply([...base(), hardlink('/etc/passwd', 'localpasswd')]);
    expect(sameInode('localpasswd', 'etc/passwd')).toBe(true);
  });
  it('hardlink through a symlinked parent pointing outside stays inside', async () => {
    await apply([dir('etc'), symlink(host, 'hostdir'), file(path.join(host, 'passwd').slice(1), 'rooted'), hardlink('hostdir/passwd', 'lp')]);
    expect(fs.readFileSync(inRoot('lp'), 'utf8')).toBe('rooted');
    hostUntouched();
  });
  it('hardlink to a missing target or a directory is an invalid archive', async () => {
    await expectBreakout([dir('etc'), hardlink('etc/nothing', 'x')], 'invalid-archive');
    await expectBreakout([dir('etc'), hardlink('etc', 'x')], 'invalid-archive');
  });
});

describe('TestBreakouts: odd symlink names', () => {
  it('SymlinkParentDirectory: an entry named .. is refused', async () => {
    await expectBreakout([dir('etc'), symlink('/', '..')]);
  });
  it('SymlinkParentDirectory: localetc/.. is the root and is skipped', async () => {
    await apply([dir('etc'), symlink(host, 'localetc/..')]);
    expect(fs.lstatSync(root).isDirectory()).toBe(true);
    hostUntouched();
  });
  it('SymlinkEmptyFilename', async () => {
    await apply([dir('etc'), symlink(host, '')]);
    expect(fs.lstatSync(root).isDirectory()).toBe(true);
  });
  it('SymlinkParentRelative', async () => {
    await apply([dir('etc'), symlink(host, 'localetc/sub/..')]);
    expect(fs.readlinkSync(inRoot('localetc'))).toBe(host);
    expect(fs.lstatSync(inRoot('localetc/sub'), { throwIfNoEntry: false })).toBeUndefined();
  });
  it('SymlinkSlashEnded', async () => {
    await apply([dir('etc'), symlink(host, 'localetc/')]);
    expect(fs.readlinkSync(inRoot('localetc'))).toBe(host);
  });
});

describe('TestBreakouts: swapping directories and symlinks', () => {
  it('SymlinkOverrideDirectory', async () => {
    await apply([dir('etc'), dir('localetc'), file('localetc/x', '1'), symlink(host, 'localetc'), file('localetc/passwd', 'overwritten')]);
    expect(fs.lstatSync(inRoot('localetc')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(inRoot(path.join(host, 'passwd')), 'utf8')).toBe('overwritten');
    hostUntouched();
  });
  it('SymlinkOverrideDirectoryRelative', async () => {
    await apply([dir('etc'), dir('localetc'), symlink('../../../../../..' + host, 'localetc'), file('localetc/passwd', 'o')]);
    hostUntouched();
  });
  it('DirectoryOverrideSymlink', async () => {
    await apply([dir('etc'), symlink(host, 'localetc'), dir('localetc'), file('localetc/passwd', 'in')]);
    expect(fs.lstatSync(inRoot('localetc')).isDirectory()).toBe(true);
    expect(fs.readFileSync(inRoot('localetc/passwd'), 'utf8')).toBe('in');
    hostUntouched();
  });
  it('DirectoryOverrideSymlinkAndHardlink', async () => {
    await apply([dir('etc'), file('etc/passwd', 'p'), symlink(host, 'localetc'), dir('localetc'), hardlink('etc/passwd', 'localetc/passwd')]);
    expect(sameInode('localetc/passwd', 'etc/passwd')).toBe(true);
    hostUntouched();
  });
  it('SymlinkOverridePath: dir, symlink to /, dir again', async () => {
    await apply([dir('localetc'), symlink('/', 'localetc'), dir('localetc'), file('localetc' + host + '/passwd', 'x'), symlink('/', 'again'), file('again' + host + '/passwd', 'y')]);
    expect(fs.lstatSync(inRoot('localetc')).isDirectory()).toBe(true);
    expect(fs.readFileSync(inRoot(host + '/passwd'), 'utf8')).toBe('y');
    hostUntouched();
  });
  it('a pre-existing symlink in the target tree (merged apply) is re-rooted too', async () => {
    fs.mkdirSync(root);
    fs.writeFileSync(inRoot('keep'), 'k');
    fs.symlinkSync(host, inRoot('usr'));
    await apply([file('usr/passwd', 'nope'), file('usr/new', 'n')]);
    expect(fs.readFileSync(inRoot(host + '/new'), 'utf8')).toBe('n');
    hostUntouched();
  });
});

describe('TestBreakouts: whiteouts', () => {
  it('WhiteoutRootParent (.wh...)', async () => { await expectBreakout([dir('etc'), whiteout('.wh...')]); });
  it('WhiteoutParent (etc/.wh...)', async () => { await expectBreakout([dir('etc'), whiteout('etc/.wh...')]); });
  it('WhiteoutRoot (.wh..)', async () => { await expectBreakout([dir('etc'), whiteout('.wh..')]); });
  it('WhiteoutCurrentDirectory (etc/.wh..)', async () => { await expectBreakout([dir('etc'), whiteout('etc/.wh..')]); });
  it('bare .wh. is invalid', async () => { await expectBreakout([dir('etc'), whiteout('etc/.wh.')]); });
  it('WhiteoutSymlink removes the link, not its target', async () => {
    await apply([dir('etc'), file('etc/passwd', 'p'), symlink(host, 'localetc'), symlink('/etc', 'etclink')]);
    await apply([whiteout('.wh.localetc'), whiteout('.wh.etclink')]);
    expect(fs.existsSync(inRoot('localetc'))).toBe(false);
    expect(fs.existsSync(inRoot('etclink'))).toBe(false);
    expect(fs.readFileSync(inRoot('etc/passwd'), 'utf8')).toBe('p');
    hostUntouched();
  });
  it('WhiteoutSymlinkPath stays in the root', async () => {
    await apply([dir('etc'), file('etc/passwd', 'p'), symlink(host, 'localetc'), file(host.slice(1) + '/passwd', 'rooted')]);
    await apply([whiteout('localetc/.wh.passwd')]);
    expect(fs.existsSync(inRoot(host + '/passwd'))).toBe(false);
    hostUntouched();
  });
  it('WhiteoutDirectoryName: .wh.etc/somefile is an ordinary path', async () => {
    await apply([dir('etc'), file('.wh.etc/somefile', 's')]);
    expect(fs.readFileSync(inRoot('.wh.etc/somefile'), 'utf8')).toBe('s');
    expect(fs.existsSync(inRoot('etc'))).toBe(true);
  });
  it('WhiteoutDeadSymlinkParent is a no-op', async () => {
    await apply([dir('etc'), symlink('/dne', 'localetc')]);
    await apply([whiteout('localetc/.wh.etc')]);
    expect(fs.existsSync(inRoot('etc'))).toBe(true);
    expect(fs.readlinkSync(inRoot('localetc'))).toBe('/dne');
  });
  it('WhiteoutRelativePath: dne/../.wh.etc removes etc', async () => {
    await apply([dir('etc'), file('etc/x')]);
    await apply([whiteout('dne/../.wh.etc')]);
    expect(fs.existsSync(inRoot('etc'))).toBe(false);
  });
  it('opaque marker under a symlink pointing outside clears the in-root target only', async () => {
    await apply([symlink(host, 'h'), file(host.slice(1) + '/passwd', 'r')]);
    await apply([whiteout('h/.wh..wh..opq')]);
    expect(fs.readdirSync(inRoot(host))).toEqual([]);
    hostUntouched();
  });
});

describe('TestBreakouts: hardlinked symlinks', () => {
  it('HardlinkSymlinkBeforeCreateTarget', async () => {
    await apply([dir('etc'), symlink('/etc/passwd', 'localpasswd'), hardlink('localpasswd', 'localpasswd-dup'), file('/etc/passwd', 'after')]);
    expect(fs.lstatSync(inRoot('localpasswd-dup')).isSymbolicLink()).toBe(true);
    expect(sameInode('localpasswd-dup', 'localpasswd')).toBe(true);
  });
  it('HardlinkSymlinkRelative', async () => {
    await apply([dir('etc'), symlink('../../../../../..' + host + '/passwd', 'passwdlink'), hardlink('/passwdlink', 'localpasswd')]);
    expect(fs.lstatSync(inRoot('localpasswd')).isSymbolicLink()).toBe(true);
    hostUntouched();
  });
  it('HardlinkSymlinkAbsolute', async () => {
    await apply([dir('etc'), symlink(host + '/passwd', 'passwdlink'), hardlink('/passwdlink', 'localpasswd')]);
    expect(sameInode('localpasswd', 'passwdlink')).toBe(true);
    hostUntouched();
  });
  it('HardlinkSymlinkChmod: a mode on a hardlinked symlink never reaches the target', async () => {
    await apply([symlink(host + '/passwd', 'passwdlink'), { ...hardlink('passwdlink', 'localpasswd'), mode: 0o777 }, { ...symlink(host + '/passwd', 'again'), mode: 0o4777 }]);
    hostUntouched();
  });
});

describe('CVE cases', () => {
  it('CVE-2021-32760: chmod/chown/utimes never follow a symlink', async () => {
    await apply([{ ...symlink(host + '/passwd', 'link'), mode: 0o777, uid: 12, gid: 12 }, { ...symlink('../../../..' + host + '/passwd', 'link2'), mode: 0o4777 }]);
    expect(fs.lstatSync(path.join(host, 'passwd')).uid).toBe(process.geteuid?.() ?? 0);
    hostUntouched();
  });
  it('a file entry replacing a symlink to the host writes a new file, not through the link', async () => {
    await apply([symlink(host + '/passwd', 'f'), file('f', 'replaced', 0o777)]);
    expect(fs.lstatSync(inRoot('f')).isFile()).toBe(true);
    hostUntouched();
  });
  it('xattrs and override records never land on a symlink target that replaced the file', async () => {
    await applyLayer(streamOf(await buildTar([file('a', 'x', 0o644, { uid: 7, pax: { 'SCHILY.xattr.user.evil': '1' } }), symlink(host + '/passwd', 'a')])), root, { mode: 'merged', rootless: true });
    hostUntouched();
  });
  it('CVE-2025-47290 (unpack TOCTOU): a symlink swapped in by an earlier entry of the same layer is re-resolved', async () => {
    // The dir cache must be invalidated when a checked directory is replaced by a symlink.
    await apply([dir('a'), file('a/one', '1'), symlink(host, 'a'), file('a/passwd', 'x'), dir('a'), file('a/two', '2')]);
    expect(fs.readFileSync(inRoot(host + '/passwd'), 'utf8')).toBe('x');
    expect(fs.readdirSync(inRoot('a'))).toEqual(['two']);
    hostUntouched();
  });
  it('entries climbing out with .. are refused and leave nothing behind', async () => {
    await expectBreakout([dir('etc'), file('../escape', 'x')]);
    await expectBreakout([dir('etc'), file('etc/../../escape', 'x')]);
    expect(fs.existsSync(path.join(path.dirname(root), 'escape'))).toBe(false);
  });
  it('an overlay-mode apply refuses the same breakouts', async () => {
    const err = await applyLayer(streamOf(await buildTar([file('../../x')])), root, { mode: 'overlay' }).catch((e) => e);
    expect(err.data.reason).toBe('breakout');
    expect(fs.existsSync(root)).toBe(false);
  });
});
