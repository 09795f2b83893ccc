// The library as an embedder uses it: temporary stores and `await using`, a signal on every operation,
// typed errors, events as an async iterator, images copied between stores and verified on the way in.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AbortedError, FailedPreconditionError, NotFoundError, StowageError, buildImage, buildIndex, isStowageError, openStowage,
  type Descriptor, type EventMessage, type ImageSource,
} from '../../src/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-embedding-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const image = () => buildImage({ platform: 'linux/amd64', layers: [{ files: { '/etc/hello': 'hi\n' } }], labels: { purpose: 'embedding' } });

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => undefined, (e: unknown) => e);
}

describe('opening and closing', () => {
  it('a temporary store lives in a private directory that close removes; closed stores refuse work', async () => {
    const store = await openStowage({ temporary: true, root: path.join(tmp, 'parent') });
    expect(path.dirname(store.root)).toBe(path.join(tmp, 'parent'));
    expect((fs.statSync(store.root).mode & 0o777).toString(8)).toBe('700');
    await store.addImage(await image(), { ref: 'example.test/a:1' });
    await store.close();
    expect(fs.existsSync(store.root)).toBe(false);
    await store.close();
    const err = await failure(store.images());
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as StowageError).code).toBe('FailedPrecondition');
  });

  it('await using closes the store at the end of the block; a store at a path keeps its directory', async () => {
    let temporary = '';
    {
      await using store = await openStowage({ temporary: true });
      temporary = store.root;
      expect(fs.existsSync(temporary)).toBe(true);
    }
    expect(fs.existsSync(temporary)).toBe(false);
    const root = path.join(tmp, 'kept');
    {
      await using store = await openStowage({ root });
      await store.addImage(await image(), { ref: 'example.test/kept:1' });
    }
    await using again = await openStowage({ root });
    expect((await again.images()).map((i) => i.RepoTags)).toEqual([['example.test/kept:1']]);
  });
});

describe('every operation', () => {
  it('fails with Aborted, and changes nothing, when its signal has fired', async () => {
    await using store = await openStowage({ temporary: true });
    const built = await image();
    await store.addImage(built, { ref: 'example.test/s:1' });
    const signal = AbortSignal.abort();
    const dir = path.join(tmp, 'never');
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['pull', () => store.pull('127.0.0.1:1/x:1', { signal })],
      ['push', () => store.push('example.test/s:1', { signal })],
      ['addImage', () => store.addImage(built, { ref: 'example.test/s:2', signal })],
      ['imageSource', () => store.imageSource('example.test/s:1', { signal })],
      ['getImage', () => store.getImage('example.test/s:1', { signal })],
      ['resolveImage', () => store.resolveImage('example.test/s:1', { signal })],
      ['tag', () => store.tag('example.test/s:1', 'example.test/s:3', { signal })],
      ['images', () => store.images({ signal })],
      ['inspect', () => store.inspect('example.test/s:1', { signal })],
      ['history', () => store.history('example.test/s:1', { signal })],
      ['delete', () => store.delete('example.test/s:1', { signal })],
      ['prune', () => store.prune({ signal })],
      ['diskUsage', () => store.diskUsage({ signal })],
      ['children', () => store.children('example.test/s:1', { signal })],
      ['countImages', () => store.countImages({ signal })],
      ['gc', () => store.gc({ signal })],
      ['check', () => store.check({ signal })],
      ['checkout', () => store.checkout('example.test/s:1', dir, { signal })],
      ['createLayer', () => store.createLayer(undefined, 'example.test/s:1', { signal })],
      ['listLayers', () => store.listLayers({ signal })],
      ['events', async () => { for await (const _ of store.events({ signal })) { /* none */ } }],
      ['save', () => store.save(['example.test/s:1'], new PassThrough(), { signal })],
      ['load', () => store.load(Readable.from([Buffer.alloc(512)]), { signal })],
      ['importImage', () => store.importImage(Readable.from([Buffer.alloc(1024)]), { ref: 'example.test/s:4', signal })],
      ['squash', () => store.squash('example.test/s:1', { ref: 'example.test/s:5', signal })],
      ['createImage', () => store.createImage(built.config, { ref: 'example.test/s:6', signal })],
    ];
    for (const [name, call] of calls) {
      const err = await failure(call());
      expect(err, name).toBeInstanceOf(AbortedError);
      expect(isStowageError(err, 'Aborted'), name).toBe(true);
    }
    expect((await store.images()).flatMap((i) => i.RepoTags)).toEqual(['example.test/s:1']);
    expect(fs.existsSync(dir)).toBe(false);
    expect(await store.listLayers()).toEqual([]);
  });
});

describe('progress', () => {
  it('save reports each blob as it goes into the archive', async () => {
    await using store = await openStowage({ temporary: true });
    const built = await image();
    await store.addImage(built, { ref: 'example.test/p:1' });
    const seen: string[] = [];
    const sink = new PassThrough();
    sink.resume();
    await store.save(['example.test/p:1'], sink, { onProgress: (m) => { if (m.status === 'Saved') seen.push(m.id!); } });
    const ids = [built.target.digest, built.manifest.config.digest, built.layers[0]!.digest].map((d) => d.slice(7, 19));
    expect([...seen].sort()).toEqual([...ids].sort());
  });
});

describe('events', () => {
  it('are an async iterator: replayed, and followed until the signal fires', async () => {
    await using store = await openStowage({ temporary: true });
    await store.addImage(await image(), { ref: 'example.test/e:1' });
    const replayed: EventMessage[] = [];
    for await (const e of store.events()) replayed.push(e);
    expect(replayed.map((e) => [e.Type, e.Action, e.Actor.Attributes.name])).toEqual([['image', 'load', 'example.test/e:1']]);
    expect(replayed[0]!.Actor.Attributes.purpose).toBe('embedding');

    const stop = new AbortController();
    const followed: EventMessage[] = [];
    const following = (async () => {
      for await (const e of store.events({ signal: stop.signal })) {
        followed.push(e);
        stop.abort();
      }
    })();
    await store.tag('example.test/e:1', 'example.test/e:2');
    await following;
    expect(followed.map((e) => [e.Action, e.Actor.Attributes.name])).toEqual([['tag', 'example.test/e:2']]);
  });
});

describe('addImage', () => {
  it('copies an image between stores with the same ID, and refuses bytes that do not match their digest', async () => {
    await using a = await openStowage({ temporary: true });
    await using b = await openStowage({ temporary: true });
    const built = await image();
    await a.addImage(built, { ref: 'example.test/copy:1' });
    const copied = await b.addImage(await a.imageSource('example.test/copy:1'), { ref: 'example.test/copy:1' });
    expect(copied.id).toBe(built.target.digest);
    expect((await b.inspect('example.test/copy:1')).RootFS.Layers).toHaveLength(1);

    const layer = built.layers[0]!;
    const lying: ImageSource = {
      target: built.target,
      async open(desc, signal) {
        if (desc.digest !== layer.digest) return built.open(desc, signal);
        return Readable.from([Buffer.alloc(layer.size, 1)]);
      },
    };
    await using c = await openStowage({ temporary: true });
    const err = await failure(c.addImage(lying, { ref: 'example.test/lie:1' }));
    expect(isStowageError(err, 'DigestMismatch')).toBe(true);
    expect(await c.images({ all: true })).toEqual([]);
    expect((await c.check()).ok).toBe(true);
  });

  it('copies the platforms a source holds of an index, and refuses a platform it holds only in part', async () => {
    const amd = await buildImage({ platform: 'linux/amd64', layers: [{ files: { '/arch': 'amd64' } }] });
    const arm = await buildImage({ platform: 'linux/arm64', layers: [{ files: { '/arch': 'arm64' } }] });
    const index = buildIndex([amd, arm]);
    const without = (missing: Descriptor): ImageSource => ({
      target: index.target,
      async open(desc, signal) {
        if (desc.digest === missing.digest) throw new NotFoundError(`content ${desc.digest}: not found`, { digest: desc.digest });
        return index.open(desc, signal);
      },
    });
    await using store = await openStowage({ temporary: true });
    await store.addImage(without(arm.target), { ref: 'example.test/partial:1' });
    expect((await store.inspect('example.test/partial:1', { platform: 'linux/amd64' })).Architecture).toBe('amd64');
    expect(isStowageError(await failure(store.inspect('example.test/partial:1', { platform: 'linux/arm64' })), 'NotFound')).toBe(true);
    const err = await failure(store.addImage(without(arm.layers[0]!), { ref: 'example.test/partial:2' }));
    expect(isStowageError(err, 'NotFound')).toBe(true);
    expect((await store.images()).flatMap((i) => i.RepoTags)).toEqual(['example.test/partial:1']);
  });

  it('keeps an image without a name as a dangling image, removed by prune', async () => {
    await using store = await openStowage({ temporary: true });
    const { id, ref } = await store.addImage(await image());
    expect(ref).toBeUndefined();
    expect((await store.images({ filters: { dangling: ['true'] } })).map((i) => i.Id)).toEqual([id]);
    await store.prune();
    expect(await store.images({ all: true })).toEqual([]);
  });
});
