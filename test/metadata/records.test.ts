import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import path from 'node:path';
import { isStowageError } from '../../src/errors/index.js';
import { openMetadata, labelStoreFor, type Metadata, SCHEMA_VERSION } from '../../src/metadata/index.js';
import { dg, target, tempRoot, MANIFEST } from './helpers.js';
import { codeOfCall } from '../harness/expect.js';

let root: string; let cleanup: () => void; let md: Metadata;
beforeEach(() => { ({ root, cleanup } = tempRoot()); md = openMetadata(root); });
afterEach(() => { md.close(); cleanup(); });

describe('database file', () => {
  it('uses WAL, foreign keys, a busy timeout and the newest schema', () => {
    const db = new Database(path.join(root, 'metadata.db'), { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect((db.prepare('SELECT version FROM schema_version').get() as { version: number }).version).toBe(SCHEMA_VERSION);
    } finally { db.close(); }
  });
  it('a full disk is ResourceExhausted (typed), not Unknown, and the database stays usable', () => {
    const raw = (md as unknown as { db: { db: Database.Database } }).db.db;
    const pages = raw.pragma('page_count', { simple: true }) as number;
    raw.pragma(`max_page_count = ${pages + 2}`); // SQLite's own "database or disk is full"
    let failure = 'none';
    for (let i = 0; i < 2000 && failure === 'none'; i++) {
      const c = codeOfCall(() => md.images.create({ name: `fill-${i}`, target: target(`fill-${i}`), labels: { pad: 'x'.repeat(2000) } }));
      if (c !== 'ok') failure = c;
    }
    expect(failure).toBe('ResourceExhausted');
    raw.pragma('max_page_count = 1073741823');
    md.images.create({ name: 'after-full', target: target('after-full') });
    expect(md.images.get('after-full').name).toBe('after-full');
  });
  it('reopens with the data intact', () => {
    md.images.create({ name: 'a', target: target('a') });
    md.close();
    md = openMetadata(root);
    expect(md.images.get('a').target.digest).toBe(dg('a'));
  });
  it('bumps the generation on writes but not on reads or events', () => {
    const g0 = md.generation();
    md.images.create({ name: 'a', target: target('a') });
    const g1 = md.generation();
    expect(g1).toBeGreaterThan(g0);
    md.images.list();
    md.events.append({ type: 'image', action: 'pull', id: 'x', attributes: {} });
    expect(md.generation()).toBe(g1);
  });
});

describe('batch', () => {
  it('commits everything or nothing', () => {
    md.batch(() => {
      md.images.create({ name: 'one', target: target('1') });
      md.images.create({ name: 'two', target: target('2') });
    });
    expect(md.images.list()).toHaveLength(2);
    expect(codeOfCall(() => md.batch(() => {
      md.images.create({ name: 'three', target: target('3') });
      md.images.create({ name: 'one', target: target('1') }); // AlreadyExists: the whole batch rolls back
    }))).toBe('AlreadyExists');
    expect(md.images.list().map((i) => i.name)).toEqual(['one', 'two']);
    expect(codeOfCall(() => md.batch(async () => 1))).toBe('InvalidArgument');
    // Durable operations (snapshot removal) work inside a batch too.
    md.snapshots.create('native', 'k', 'active', undefined, {});
    md.batch(() => { md.snapshots.remove('native', 'k'); md.images.delete('two'); });
    expect(md.snapshots.walk('native')).toEqual([]);
  });
});

describe('images', () => {
  it('validates like containerd', () => {
    expect(codeOfCall(() => md.images.create({ name: '', target: target('x') }))).toBe('InvalidArgument');
    expect(codeOfCall(() => md.images.create({ name: 'n', target: { mediaType: MANIFEST, digest: 'sha256:nope' as never, size: 1 } }))).toBe('InvalidArgument');
    expect(codeOfCall(() => md.images.create({ name: 'n', target: { ...target('x'), size: 0 } }))).toBe('InvalidArgument');
    expect(codeOfCall(() => md.images.create({ name: 'n', target: { ...target('x'), mediaType: '' } }))).toBe('InvalidArgument');
    expect(codeOfCall(() => md.images.create({ name: 'n', target: target('x'), labels: { k: 'v'.repeat(4096) } }))).toBe('InvalidArgument');
    expect(codeOfCall(() => md.images.create({ name: 'n', target: target('x'), labels: { k: 'v'.repeat(4095) } }))).toBe('ok');
    expect(codeOfCall(() => md.images.create({ name: 'n', target: target('y') }))).toBe('AlreadyExists');
    expect(codeOfCall(() => md.images.get('missing'))).toBe('NotFound');
  });

  it('creates, updates by fieldpath and deletes', async () => {
    const created = md.images.create({
      name: 'docker.io/library/a:1', labels: { one: '1', two: '2' },
      target: { ...target('a'), annotations: { x: '1', y: '2' }, platform: { os: 'linux', architecture: 'amd64' } },
    });
    expect(created.createdAt.getTime()).toBe(created.updatedAt.getTime());
    expect(created.target.platform?.architecture).toBe('amd64');
    await new Promise((r) => setTimeout(r, 5));

    let u = md.images.update({ name: created.name, labels: { two: '', three: '3' } }, 'labels.two', 'labels.three');
    expect(u.labels).toEqual({ one: '1', three: '3' });
    expect(u.updatedAt.getTime()).toBeGreaterThan(created.updatedAt.getTime());
    expect(u.createdAt.getTime()).toBe(created.createdAt.getTime());

    u = md.images.update({ name: created.name, labels: { only: 'this' } }, 'labels');
    expect(u.labels).toEqual({ only: 'this' });

    u = md.images.update({ name: created.name, target: { ...target('a'), annotations: { y: '9', z: '3' } } }, 'annotations.y', 'annotations.x');
    expect(u.target.annotations).toEqual({ y: '9' });
    u = md.images.update({ name: created.name, target: { ...target('a'), annotations: { z: '3' } } }, 'annotations');
    expect(u.target.annotations).toEqual({ z: '3' });
    expect(u.target.digest).toBe(dg('a'));

    u = md.images.update({ name: created.name, target: target('b', 7) }, 'target');
    expect(u.target).toEqual(target('b', 7));
    expect(u.labels).toEqual({ only: 'this' });

    // No fieldpaths: replace all but createdAt.
    u = md.images.update({ name: created.name, target: target('c'), labels: { fresh: 'y' } });
    expect(u.target.digest).toBe(dg('c'));
    expect(u.labels).toEqual({ fresh: 'y' });
    expect(u.createdAt.getTime()).toBe(created.createdAt.getTime());

    expect(codeOfCall(() => md.images.update({ name: created.name, labels: {} }, 'name'))).toBe('InvalidArgument');
    expect(codeOfCall(() => md.images.update({ name: created.name, target: { ...target('c'), size: 0 } }, 'target'))).toBe('InvalidArgument');
    expect(codeOfCall(() => md.images.update({ name: '' }, 'labels'))).toBe('InvalidArgument');
    expect(codeOfCall(() => md.images.update({ name: 'nope', labels: {} }, 'labels'))).toBe('NotFound');

    // Compare-and-delete.
    expect(codeOfCall(() => md.images.delete(created.name, { target: dg('other') }))).toBe('NotFound');
    md.images.delete(created.name, { target: dg('c') });
    expect(codeOfCall(() => md.images.get(created.name))).toBe('NotFound');
    expect(codeOfCall(() => md.images.delete(created.name))).toBe('NotFound');
  });

  it('lists with filters', () => {
    md.images.create({ name: 'docker.io/library/alpine:3', target: target('alpine'), labels: { 'containerd.io/gc.root': 'x', tier: 'base' } });
    md.images.create({ name: 'docker.io/library/busybox:1', target: target('busybox'), labels: { tier: 'tool' } });
    md.images.create({ name: 'ghcr.io/x/y:latest', target: { ...target('y'), mediaType: 'application/vnd.oci.image.index.v1+json' } });
    const names = (...f: string[]) => md.images.list(...f).map((i) => i.name);
    expect(names()).toHaveLength(3);
    expect(names('name==docker.io/library/alpine:3')).toEqual(['docker.io/library/alpine:3']);
    expect(names('name~=^docker\\.io/')).toEqual(['docker.io/library/alpine:3', 'docker.io/library/busybox:1']);
    expect(names(`target.digest==${dg('busybox')}`)).toEqual(['docker.io/library/busybox:1']);
    expect(names('target.mediatype==application/vnd.oci.image.index.v1+json')).toEqual(['ghcr.io/x/y:latest']);
    expect(names('labels.tier')).toHaveLength(2);
    expect(names('labels.tier!=base')).toEqual(['docker.io/library/busybox:1', 'ghcr.io/x/y:latest']);
    expect(names('labels."containerd.io/gc.root"')).toEqual(['docker.io/library/alpine:3']);
    expect(names('labels.tier==base', 'labels.tier==tool')).toHaveLength(2);        // OR across strings
    expect(names('labels.tier==base,name~=busybox')).toEqual([]);                   // AND inside one
    expect(names('name=="ghcr.io/x/y:latest"')).toEqual(['ghcr.io/x/y:latest']);
    expect(codeOfCall(() => md.images.list('labels.tier=='.concat('"unterminated')))).toBe('InvalidArgument');
    expect(codeOfCall(() => md.images.list('name~=('))).toBe('InvalidArgument');
  });
});

describe('leases', () => {
  it('creates, lists, deletes; ids and duplicates', () => {
    const l = md.leases.create({ id: 'pull-1', labels: { who: 'me' }, expiresInMs: 60_000 });
    expect(Date.parse(l.labels['containerd.io/gc.expire']!)).toBeGreaterThan(Date.now());
    expect(codeOfCall(() => md.leases.create({ id: 'pull-1' }))).toBe('AlreadyExists');
    expect(codeOfCall(() => md.leases.create({ id: 'bad id' }))).toBe('InvalidArgument');
    const r = md.leases.create();
    expect(r.id).toMatch(/^[a-z0-9]+-[0-9a-f]{16}$/);
    expect(md.leases.list().map((x) => x.id).sort()).toEqual(['pull-1', r.id].sort());
    expect(md.leases.list('id==pull-1').map((x) => x.id)).toEqual(['pull-1']);
    expect(md.leases.list('labels.who==me').map((x) => x.id)).toEqual(['pull-1']);
    md.leases.delete('pull-1');
    expect(codeOfCall(() => md.leases.delete('pull-1'))).toBe('NotFound');
  });

  it('holds resources of the four types, with shape checks', () => {
    md.leases.create({ id: 'l' });
    md.leases.addResource('l', { type: 'content', id: dg('a') });
    md.leases.addResource('l', { type: 'content', id: dg('a') }); // idempotent
    md.leases.addResource('l', { type: 'ingests', id: 'ref-1' });
    md.leases.addResource('l', { type: 'images', id: 'docker.io/x:1' });
    md.leases.addResource('l', { type: 'snapshots/native', id: 'sha256:chain' });
    expect(codeOfCall(() => md.leases.addResource('l', { type: 'content', id: 'not-a-digest' }))).toBe('InvalidArgument');
    expect(codeOfCall(() => md.leases.addResource('l', { type: 'snapshots' as never, id: 'x' }))).toBe('InvalidArgument');
    expect(codeOfCall(() => md.leases.addResource('l', { type: 'snapshots/a/b', id: 'x' }))).toBe('InvalidArgument');
    expect(codeOfCall(() => md.leases.addResource('l', { type: 'containers' as never, id: 'x' }))).toBe('NotImplemented');
    expect(codeOfCall(() => md.leases.addResource('nope', { type: 'ingests', id: 'x' }))).toBe('NotFound');
    expect(md.leases.listResources('l')).toEqual([
      { type: 'content', id: dg('a') }, { type: 'images', id: 'docker.io/x:1' },
      { type: 'ingests', id: 'ref-1' }, { type: 'snapshots/native', id: 'sha256:chain' },
    ]);
    md.leases.deleteResource('l', { type: 'ingests', id: 'ref-1' });
    expect(md.leases.listResources('l')).toHaveLength(3);
    md.leases.delete('l');
    expect(codeOfCall(() => md.leases.listResources('l'))).toBe('NotFound');
  });

  it('a lease option on a create attaches the resource, and a missing lease is NotFound', () => {
    md.leases.create({ id: 'l' });
    md.content.recordBlob(dg('blob'), 3, { lease: 'l' });
    md.images.create({ name: 'plain', target: target('p') }, { lease: 'l' });
    md.images.create({ name: 'temp', target: target('t'), labels: { 'containerd.io/gc.expire': new Date(Date.now() + 1000).toISOString() } }, { lease: 'l' });
    md.snapshots.create('native', 'k1', 'active', undefined, {}, { lease: 'l' });
    expect(md.leases.listResources('l')).toEqual([
      { type: 'content', id: dg('blob') }, { type: 'images', id: 'temp' }, { type: 'snapshots/native', id: 'k1' },
    ]);
    let err: unknown;
    try { md.content.recordBlob(dg('x'), 1, { lease: 'gone' }); } catch (e) { err = e; }
    expect(isStowageError(err, 'NotFound')).toBe(true);
    expect((err as Error).message).toContain('lease does not exist');
    expect(md.content.labels(dg('x'))).toEqual({});
    expect(codeOfCall(() => md.images.create({ name: 'n', target: target('n') }, { lease: 'gone' }))).toBe('NotFound');
    expect(codeOfCall(() => md.images.get('n'))).toBe('NotFound'); // the failed create left nothing
    expect(codeOfCall(() => md.snapshots.create('native', 'k2', 'active', undefined, {}, { lease: 'gone' }))).toBe('NotFound');
    // Commit moves lease protection from the key to the name; remove drops it.
    md.snapshots.commit('native', 'k1', 'c1', undefined);
    expect(md.leases.listResources('l')).toContainEqual({ type: 'snapshots/native', id: 'c1' });
    md.snapshots.remove('native', 'c1');
    md.images.delete('temp');
    md.content.forget(dg('blob'));
    expect(md.leases.listResources('l')).toEqual([]);
  });
});

describe('content records', () => {
  it('labels through the LabelStore adapter, with the size limit', () => {
    const ls = labelStoreFor(md);
    const d = dg('layer');
    expect(ls.get(d)).toEqual({});
    ls.set(d, { 'containerd.io/uncompressed': dg('diff'), a: '1' });
    ls.update(d, 'b', '2');
    ls.update(d, 'a', '');
    expect(ls.get(d)).toEqual({ 'containerd.io/uncompressed': dg('diff'), b: '2' });
    expect(codeOfCall(() => ls.update(d, 'k', 'x'.repeat(5000)))).toBe('InvalidArgument');
    expect(codeOfCall(() => ls.set('nope' as never, {}))).toBe('InvalidArgument');
    md.content.recordBlob(d, 42, { labels: { c: '3' } });
    expect(ls.get(d)).toEqual({ 'containerd.io/uncompressed': dg('diff'), b: '2', c: '3' });
    ls.delete(d);
    expect(ls.get(d)).toEqual({});
  });
});

describe('snapshot records', () => {
  it('enforces parents, commit rules and children', () => {
    const s = md.snapshots;
    const a = s.create('native', 'a-key', 'active', undefined, { x: '1' });
    expect(a.kind).toBe('active');
    expect(codeOfCall(() => s.create('native', 'a-key', 'active', undefined, {}))).toBe('AlreadyExists');
    expect(codeOfCall(() => s.create('native', 'b', 'active', 'missing', {}))).toBe('NotFound');
    expect(codeOfCall(() => s.create('native', 'b', 'active', 'a-key', {}))).toBe('InvalidArgument'); // parent not committed (containerd's class)
    const c = s.commit('native', 'a-key', 'layer-1', undefined);
    expect(c).toMatchObject({ id: a.id, key: 'layer-1', kind: 'committed', labels: { x: '1' } });
    expect(codeOfCall(() => s.get('native', 'a-key'))).toBe('NotFound');
    expect(codeOfCall(() => s.commit('native', 'layer-1', 'again', undefined))).toBe('FailedPrecondition');
    const v = s.create('native', 'view-1', 'view', 'layer-1', {});
    expect(codeOfCall(() => s.commit('native', 'view-1', 'v', undefined))).toBe('FailedPrecondition');
    const b = s.create('native', 'b', 'active', 'layer-1', {});
    expect(b.parent).toBe('layer-1');
    expect(b.id).toBeGreaterThan(a.id);
    expect(codeOfCall(() => s.commit('native', 'b', 'layer-1', undefined))).toBe('AlreadyExists');
    s.commit('native', 'b', 'layer-2', { y: '2' });
    expect(s.get('native', 'layer-2')).toMatchObject({ parent: 'layer-1', labels: { y: '2' } });
    // Same key in another snapshotter is independent.
    s.create('overlay', 'layer-1', 'active', undefined, {});

    expect(codeOfCall(() => s.remove('native', 'layer-1'))).toBe('FailedPrecondition');
    expect(s.walk('native').map((r) => r.key)).toEqual(['layer-1', 'view-1', 'layer-2']);
    expect(s.walk('native', 'kind==committed').map((r) => r.key)).toEqual(['layer-1', 'layer-2']);
    expect(s.walk('native', 'parent==layer-1').map((r) => r.key)).toEqual(['view-1', 'layer-2']);
    expect(s.walk('native', 'labels.y==2').map((r) => r.key)).toEqual(['layer-2']);
    expect([...s.ids('native')].sort()).toEqual([a.id, v.id, b.id].sort());

    const u = s.update('native', 'layer-2', { z: '3', y: '' }, 'labels.z', 'labels.y');
    expect(u.labels).toEqual({ z: '3' });
    expect(s.update('native', 'layer-2', { w: '4' }).labels).toEqual({ w: '4' });
    expect(codeOfCall(() => s.update('native', 'layer-2', {}, 'parent'))).toBe('InvalidArgument');

    expect(s.remove('native', 'view-1').id).toBe(v.id);
    expect(s.remove('native', 'layer-2').id).toBe(b.id);
    expect(s.remove('native', 'layer-1').id).toBe(a.id);
    expect(s.ids('native').size).toBe(0);
    // Ids are never reused: they name directories that may still be on disk.
    expect(s.create('native', 'n', 'active', undefined, {}).id).toBeGreaterThan(b.id + 1);
  });
});

describe('containers', () => {
  it('CRUD', () => {
    md.containers.create({ id: 'c1', image: 'alpine', snapshotter: 'native', snapshotKey: 'c1-rw', labels: { a: 'b' } });
    expect(codeOfCall(() => md.containers.create({ id: 'c1', image: 'alpine', snapshotter: 'native', snapshotKey: 'x', labels: {} }))).toBe('AlreadyExists');
    expect(md.containers.get('c1')).toMatchObject({ snapshotKey: 'c1-rw', labels: { a: 'b' } });
    expect(md.containers.list()).toHaveLength(1);
    md.containers.delete('c1');
    expect(codeOfCall(() => md.containers.get('c1'))).toBe('NotFound');
    expect(codeOfCall(() => md.containers.delete('c1'))).toBe('NotFound');
  });
});

describe('events', () => {
  it('appends, lists by seq and time, follows', async () => {
    const e1 = md.events.append({ type: 'image', action: 'pull', id: 'sha256:1', attributes: { name: 'a' } });
    const e2 = md.events.append({ type: 'image', action: 'tag', id: 'sha256:1', attributes: { name: 'b' }, time: new Date(Date.now() + 60_000) });
    expect(e2.seq).toBeGreaterThan(e1.seq);
    expect(md.events.list().map((e) => e.action)).toEqual(['pull', 'tag']);
    expect(md.events.list({ after: e1.seq }).map((e) => e.seq)).toEqual([e2.seq]);
    expect(md.events.list({ until: new Date(Date.now() + 1000) }).map((e) => e.seq)).toEqual([e1.seq]);
    expect(md.events.list({ since: new Date(Date.now() + 30_000) }).map((e) => e.seq)).toEqual([e2.seq]);
    expect(codeOfCall(() => md.events.append({ type: 'image', action: 'explode' as never, id: 'x', attributes: {} }))).toBe('InvalidArgument');

    const ac = new AbortController();
    const seen: string[] = [];
    const other = openMetadata(root); // a second connection, as another process would have
    const done = (async () => {
      for await (const e of md.events.follow({ after: e2.seq, signal: ac.signal, pollMs: 10 })) {
        seen.push(e.attributes.name!);
        if (seen.length === 2) ac.abort();
      }
    })();
    other.events.append({ type: 'image', action: 'delete', id: 'x', attributes: { name: 'c' } });
    await new Promise((r) => setTimeout(r, 30));
    other.events.append({ type: 'container', action: 'create', id: 'y', attributes: { name: 'd' } });
    await done;
    other.close();
    expect(seen).toEqual(['c', 'd']);
  });
});
