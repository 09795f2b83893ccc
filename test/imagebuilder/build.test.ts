// The in-code image builder: real images into a real store, checked out and compared with what the
// file trees say; reproducible digests; base images; directories; random images as a property test.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildImage, buildIndex, mergeLayers, openStowage, randomImageSpec, isStowageError, type Stowage, type FileTree,
} from '../../src/index.js';
import { assertSameTree, checkoutToTemp, compareTrees } from '../../src/testing/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-imagebuilder-'));
let store: Stowage;
beforeAll(async () => { store = await openStowage({ root: path.join(tmp, 'store') }); });
afterAll(async () => { await store.close(); fs.rmSync(tmp, { recursive: true, force: true }); });

const asRoot = process.getuid?.() === 0;

const base: FileTree = {
  '/etc/hello': 'hi\n',
  '/etc/old.conf': 'old\n',
  '/bin/tool': { mode: 0o755, content: '#!/bin/sh\necho tool\n' },
  '/bin/sh': { type: 'symlink', target: 'tool' },
  '/bin/tool2': { type: 'hardlink', target: '/bin/tool' },
  '/srv/data': { type: 'dir', mode: 0o750, uid: 1000, gid: 1000 },
  '/srv/data/a.txt': { content: 'a', uid: 1000, gid: 1000, mode: 0o640 },
  '/var/cache/x': 'cached',
};
const upper: FileTree = {
  '/etc/old.conf': { type: 'delete' },
  '/etc/hello': 'hello again\n',
  '/var/cache': { type: 'dir', opaque: true },
  '/var/cache/y': 'fresh',
  '/usr/bin/ln-up': { type: 'hardlink', target: '/bin/tool' },
};

describe('buildImage', () => {
  it('builds layers from object literals that check out to exactly the tree they describe', async () => {
    const image = await buildImage({ platform: 'linux/amd64', layers: [{ files: base }, { files: upper }], entrypoint: ['/bin/tool'] });
    const added = await store.addImage(image, { ref: 'example.test/literal:1' });
    expect(added.id).toBe(image.target.digest);
    await using co = await checkoutToTemp(store, 'example.test/literal:1');
    assertSameTree(co.dir, [base, upper], { owners: asRoot, directoryModes: true, ignore: [] });
    expect(co.read('/etc/hello')).toBe('hello again\n');
    expect(fs.existsSync(co.path('/etc/old.conf'))).toBe(false);
    expect(fs.readdirSync(co.path('/var/cache'))).toEqual(['y']);
    expect(fs.readlinkSync(co.path('/bin/sh'))).toBe('tool');
    // A hard link to a lower layer's file is a copy of it once unpacked (the file is copied up).
    expect(fs.readFileSync(co.path('/usr/bin/ln-up'), 'utf8')).toBe('#!/bin/sh\necho tool\n');
  });

  it('gives the same digests for the same input, and other digests for other input', async () => {
    const spec = { platform: 'linux/arm64', layers: [{ files: base }], labels: { a: 'b' }, env: { X: '1' } } as const;
    const one = await buildImage(spec);
    // The same tree written in another key order.
    const reordered = Object.fromEntries(Object.entries(base).reverse());
    const two = await buildImage({ ...spec, layers: [{ files: reordered }] });
    expect(two.target.digest).toBe(one.target.digest);
    expect(two.layers).toEqual(one.layers);
    const other = await buildImage({ ...spec, layers: [{ files: { ...base, '/etc/hello': 'hi!\n' } }] });
    expect(other.layers[0]!.digest).not.toBe(one.layers[0]!.digest);
  });

  it('writes the config: entrypoint, cmd, env, labels, platform, user, ports, history', async () => {
    const image = await buildImage({
      platform: 'linux/arm/v7', entrypoint: ['/bin/tool'], cmd: ['--help'], env: { A: '1', PATH: '/bin' }, labels: { 'org.example': 'yes' },
      user: '1000:1000', workingDir: '/srv', exposedPorts: ['8080/tcp'], created: '2024-05-01T00:00:00Z',
      layers: [{ files: base, comment: 'ADD base /' }],
      history: [{ createdBy: 'ADD base /', comment: 'the base' }, { createdBy: 'ENV A=1', emptyLayer: true }],
    });
    await store.addImage(image, { ref: 'example.test/config:1' });
    const info = await store.inspect('example.test/config:1');
    expect(info.Os).toBe('linux');
    expect(info.Architecture).toBe('arm');
    expect(info.Variant).toBe('v7');
    expect(info.Created).toBe('2024-05-01T00:00:00Z');
    expect(info.Config).toMatchObject({ Entrypoint: ['/bin/tool'], Cmd: ['--help'], Env: ['A=1', 'PATH=/bin'], User: '1000:1000', WorkingDir: '/srv', Labels: { 'org.example': 'yes' }, ExposedPorts: { '8080/tcp': {} } });
    const history = await store.history('example.test/config:1', { platform: 'linux/arm/v7' });
    expect(history.map((h) => h.CreatedBy)).toEqual(['ENV A=1', 'ADD base /']);
  });

  it('builds on an image of the store: its layers and config first, deletions in the new layer', async () => {
    const bottom = await buildImage({ platform: 'linux/amd64', layers: [{ files: base }], env: ['A=1', 'B=2'], cmd: ['/bin/sh'], labels: { from: 'base' } });
    await store.addImage(bottom, { ref: 'example.test/base:1' });
    const top = await buildImage({ base: await store.imageSource('example.test/base:1'), layers: [{ files: upper }], env: { B: '3' }, labels: { top: 'yes' } });
    expect(top.layers.slice(0, 1)).toEqual(bottom.layers);
    expect(top.config.config).toMatchObject({ Env: ['A=1', 'B=3'], Cmd: ['/bin/sh'], Labels: { from: 'base', top: 'yes' } });
    expect(top.config.history).toHaveLength(2);
    await store.addImage(top, { ref: 'example.test/top:1' });
    await using co = await checkoutToTemp(store, 'example.test/top:1');
    assertSameTree(co.dir, [base, upper]);
  });

  it('builds a layer from a directory: files, modes, symlinks, hard links; the same tree gives the same digest', async () => {
    const src = path.join(tmp, 'src-dir');
    fs.mkdirSync(path.join(src, 'app', 'lib'), { recursive: true });
    fs.writeFileSync(path.join(src, 'app', 'main.sh'), '#!/bin/sh\necho main\n', { mode: 0o755 });
    fs.writeFileSync(path.join(src, 'app', 'lib', 'data.bin'), Buffer.alloc(70_000, 7));
    fs.linkSync(path.join(src, 'app', 'main.sh'), path.join(src, 'app', 'start.sh'));
    fs.symlinkSync('main.sh', path.join(src, 'app', 'run'));
    fs.chmodSync(path.join(src, 'app', 'lib'), 0o700);
    const one = await buildImage({ platform: 'linux/amd64', layers: [{ directory: src }] });
    fs.utimesSync(path.join(src, 'app', 'main.sh'), new Date(), new Date());
    const two = await buildImage({ platform: 'linux/amd64', layers: [{ directory: src }] });
    expect(two.target.digest).toBe(one.target.digest);
    await store.addImage(one, { ref: 'example.test/dir:1' });
    await using co = await checkoutToTemp(store, 'example.test/dir:1');
    assertSameTree(co.dir, src, { directoryModes: true });
    expect(fs.statSync(co.path('/app/start.sh')).ino).toBe(fs.statSync(co.path('/app/main.sh')).ino);
  });

  it('refuses a directory holding a whiteout name, which would delete files of the layers below', async () => {
    const src = path.join(tmp, 'wh-dir');
    fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(src, 'etc', '.wh.passwd'), '');
    const err = await buildImage({ layers: [{ directory: src }] }).then(() => undefined, (e: unknown) => e);
    expect(isStowageError(err, 'InvalidArgument')).toBe(true);
  });

  it('writes Docker schema 2 and zstd images, and multi-platform indexes', async () => {
    const docker = await buildImage({ platform: 'linux/amd64', format: 'docker', layers: [{ files: { '/a': 'a' } }] });
    expect(docker.target.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(docker.layers[0]!.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
    const zstd = await buildImage({ platform: 'linux/arm64', compression: 'zstd', layers: [{ files: { '/a': 'z' } }] });
    expect(zstd.layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    const index = buildIndex([await buildImage({ platform: 'linux/amd64', layers: [{ files: { '/a': 'amd' } }] }), zstd]);
    await store.addImage(index, { ref: 'example.test/multi:1' });
    await using amd = await checkoutToTemp(store, 'example.test/multi:1', { platform: 'linux/amd64' });
    await using arm = await checkoutToTemp(store, 'example.test/multi:1', { platform: 'linux/arm64' });
    expect([amd.read('/a'), arm.read('/a')]).toEqual(['amd', 'z']);
  });

  it('refuses bad trees with InvalidArgument', async () => {
    const bad: FileTree[] = [
      { '/a/../b': 'x' },
      { '/': 'x' },
      { '/.wh.x': 'x' },
      { '/a': { type: 'hardlink', target: '/d' }, '/d': { type: 'dir' } },
      { '/f': 'file', '/f/g': 'inside a file' },
      { '/m': { content: 'x', mode: 0o10000 } },
    ];
    for (const files of bad) {
      const err = await buildImage({ layers: [{ files }] }).then(() => undefined, (e: unknown) => e);
      expect(isStowageError(err, 'InvalidArgument'), JSON.stringify(Object.keys(files))).toBe(true);
    }
  });

  it('stops when its signal fires', async () => {
    const ac = new AbortController();
    ac.abort();
    const err = await buildImage({ signal: ac.signal, layers: [{ files: { '/a': 'a' } }] }).then(() => undefined, (e: unknown) => e);
    expect(isStowageError(err, 'Aborted')).toBe(true);
    // Fired while a layer is being written (a file of 1 MiB + 1 is streamed, the signal fires on its first read).
    const big = path.join(tmp, 'abort-dir');
    fs.mkdirSync(big, { recursive: true });
    fs.writeFileSync(path.join(big, 'big.bin'), Buffer.alloc((1 << 20) + 1, 1));
    const mid = new AbortController();
    const realOpen = fs.createReadStream;
    const spied = ((...args: Parameters<typeof fs.createReadStream>) => { mid.abort(); return realOpen(...args); }) as typeof fs.createReadStream;
    fs.createReadStream = spied;
    try {
      const err2 = await buildImage({ signal: mid.signal, layers: [{ directory: big }] }).then(() => undefined, (e: unknown) => e);
      expect(isStowageError(err2, 'Aborted'), String(err2)).toBe(true);
    } finally {
      fs.createReadStream = realOpen;
    }
  });
});

describe('random images (property test)', () => {
  it('is the same image for the same seed and shape', async () => {
    const shape = { seed: 'same', layers: 3, filesPerLayer: 10 };
    const [a, b] = [await buildImage(randomImageSpec(shape)), await buildImage(randomImageSpec(shape))];
    expect(a.target.digest).toBe(b.target.digest);
    expect((await buildImage(randomImageSpec({ ...shape, seed: 'other' }))).target.digest).not.toBe(a.target.digest);
  });

  it('unpacks every random image to the tree its layers describe', async () => {
    for (let seed = 1; seed <= 12; seed++) {
      const spec = randomImageSpec({ seed, layers: 1 + (seed % 4), filesPerLayer: 12, fileSize: { min: 0, max: 3000 }, churn: 0.4, owners: true });
      const image = await buildImage(spec);
      expect(image.layers).toHaveLength(spec.layers.length);
      await store.addImage(image, { ref: `example.test/random:${seed}` });
      await using co = await checkoutToTemp(store, `example.test/random:${seed}`);
      const diffs = compareTrees(co.dir, spec.layers.map((l) => l.files), { owners: asRoot });
      expect(diffs.map((d) => d.message), `seed ${seed}`).toEqual([]);
    }
  });

  it('merges layer trees the way unpacking does', () => {
    expect(Object.keys(mergeLayers([base, upper]))).toEqual([
      '/bin', '/bin/sh', '/bin/tool', '/bin/tool2', '/etc', '/etc/hello', '/srv', '/srv/data', '/srv/data/a.txt',
      '/usr', '/usr/bin', '/usr/bin/ln-up', '/var', '/var/cache', '/var/cache/y',
    ]);
  });
});
