// stowage/testing as a test author uses it: the throwaway registry (read by skopeo too, pushed to,
// read-only, with Basic auth, gone once closed), temporary checkouts, and the tree diff's wording.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { buildImage, isStowageError, openStowage } from '../../src/index.js';
import { assertSameTree, checkoutToTemp, compareTrees, formatTreeDiff, startTestRegistry } from '../../src/testing/index.js';

const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-testing-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const image = () => buildImage({ platform: 'linux/amd64', layers: [{ files: { '/etc/id': 'one\n' } }] });

describe('startTestRegistry', () => {
  it('serves its images to skopeo and stores, takes pushes, and is gone once closed', async () => {
    const built = await image();
    const registry = await startTestRegistry({ images: { 'team/app:1': built } });
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.ref('team/app:1')}`]);
    expect(JSON.parse(stdout)).toEqual(built.manifest);
    await using store = await openStowage({ temporary: true });
    await store.pull(registry.ref('team/app:1'));
    await store.tag(registry.ref('team/app:1'), registry.ref('team/app:2'));
    await store.push(registry.ref('team/app:2'));
    expect((await registry.store.resolveImage(registry.ref('team/app:2'))).target.digest).toBe(built.target.digest);
    await registry.close();
    expect(fs.existsSync(registry.store.root)).toBe(false);
    expect(isStowageError(await registry.store.images().then(() => undefined, (e: unknown) => e), 'FailedPrecondition')).toBe(true);
  });

  it('read-only: refuses pushes', async () => {
    await using registry = await startTestRegistry({ images: { 'ro/app:1': await image() }, readOnly: true });
    await using store = await openStowage({ temporary: true });
    await store.pull(registry.ref('ro/app:1'));
    await store.tag(registry.ref('ro/app:1'), registry.ref('ro/app:2'));
    const err = await store.push(registry.ref('ro/app:2')).then(() => undefined, (e: unknown) => e);
    expect(isStowageError(err)).toBe(true);
  });

  it('with auth: pulls need the credentials', async () => {
    const auth = { username: 'tester', password: 'pw-123' };
    await using registry = await startTestRegistry({ images: { 'private/app:1': await image() }, auth });
    await using store = await openStowage({ temporary: true });
    const denied = await store.pull(registry.ref('private/app:1')).then(() => undefined, (e: unknown) => e);
    // docker's wording and class for an anonymous pull that the registry refuses.
    expect(isStowageError(denied, 'NotFound')).toBe(true);
    expect((denied as Error).message).toMatch(/pull access denied .* may require 'docker login'/);
    expect((await store.pull(registry.ref('private/app:1'), { credentials: auth })).updated).toBe(true);
  });
});

describe('checkoutToTemp', () => {
  it('gives a private directory removed on dispose, and leaves nothing behind when the checkout fails', async () => {
    await using store = await openStowage({ temporary: true });
    await store.addImage(await image(), { ref: 'example.test/co:1' });
    const parent = path.join(tmp, 'checkouts');
    fs.mkdirSync(parent);
    let dir = '';
    {
      await using co = await checkoutToTemp(store, 'example.test/co:1', { tmpdir: parent });
      dir = co.dir;
      expect(co.read('/etc/id')).toBe('one\n');
      expect(co.path('/etc/../etc/id')).toBe(path.join(co.dir, 'etc', 'id'));
    }
    expect(fs.existsSync(dir)).toBe(false);
    const err = await checkoutToTemp(store, 'example.test/missing:1', { tmpdir: parent }).then(() => undefined, (e: unknown) => e);
    expect(isStowageError(err, 'NotFound')).toBe(true);
    expect(fs.readdirSync(parent)).toEqual([]);
  });
});

describe('compareTrees', () => {
  it('says what differs, one line per difference, sorted by path', () => {
    const a = { '/bin/tool': { content: '#!/bin/sh\n', mode: 0o755 }, '/etc/hello': 'hi\n', '/etc/gone': 'x', '/lib/link': { type: 'symlink', target: 'a' }, '/srv': { type: 'dir', uid: 1 } } as const;
    const b = { '/bin/tool': { content: '#!/bin/sh\n', mode: 0o700 }, '/etc/hello': 'hello\n', '/etc/new': { type: 'dir' }, '/lib/link': { type: 'symlink', target: 'b' }, '/srv': 'now a file' } as const;
    expect(formatTreeDiff(compareTrees(a, b)).split('\n')).toEqual([
      '~ /bin/tool: mode 0755 in a, 0700 in b',
      '- /etc/gone (1 bytes "x") is only in a',
      '~ /etc/hello: content differs: a has 3 bytes "hi\\n", b has 6 bytes "hello\\n"',
      '+ /etc/new (dir) is only in b',
      '~ /lib/link: symlink to "a" in a, to "b" in b',
      '~ /srv: a dir in a, a file in b',
    ]);
    expect(compareTrees(a, b, { modes: false, ignore: ['/etc', '/lib', '/srv'] })).toEqual([]);
    expect(compareTrees({ '/f': { content: 'x', uid: 5 } }, { '/f': 'x' }).length).toBe(0);
    expect(formatTreeDiff(compareTrees({ '/f': { content: 'x', uid: 5 } }, { '/f': 'x' }, { owners: true }))).toBe('~ /f: owner 5:0 in a, 0:0 in b');
    expect(() => assertSameTree(a, b)).toThrow(/^trees differ in 6 places:\n~ \/bin\/tool/);
  });
});
