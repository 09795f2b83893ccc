import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isStowageError } from '../../src/errors/index.js';
import { openMetadata } from '../../src/metadata/index.js';
import { digestOf, type Digest } from '../../src/oci/index.js';
import { applyLayer, applyLayerToSnapshot, chainID, checkout, exportSnapshotLayer, openSnapshotter } from '../../src/snapshots/index.js';
import { buildTar, compressBuf, describeTree, dir, file, hardlink, sha256, streamOf, tmpdir, whiteout } from './helpers.js';

const roots: string[] = [];
afterAll(() => { for (const d of roots) fs.rmSync(d, { recursive: true, force: true }); });
function store() {
  const root = tmpdir('stowage-unpack-');
  roots.push(root);
  const md = openMetadata(root);
  return { root, md, sn: openSnapshotter(root, md.snapshots) };
}

describe('applyLayerToSnapshot', () => {
  it('commits each layer under its chainID, skips existing ones, and verifies diffIDs', async () => {
    const { sn } = store();
    const t1 = await buildTar([dir('a'), file('a/x', '1'), file('gone', 'g')]);
    const t2 = await buildTar([file('a/y', '2'), whiteout('.wh.gone'), hardlink('a/x', 'a/x-link')]);
    const d1 = `sha256:${sha256(t1)}` as Digest;
    const d2 = `sha256:${sha256(t2)}` as Digest;
    const r1 = await applyLayerToSnapshot(sn, { layer: streamOf(compressBuf(t1, 'gzip')), expectedDiffID: d1 });
    expect(r1.chainID).toBe(d1);
    const r2 = await applyLayerToSnapshot(sn, { parentChainId: r1.chainID, layer: streamOf(compressBuf(t2, 'zstd')) });
    expect(r2.chainID).toBe(digestOf(`${d1} ${d2}`));
    expect(r2.chainID).toBe(chainID(d1, d2));
    expect(await sn.stat(r2.chainID)).toMatchObject({ kind: 'committed', parent: d1 });
    // already there: AlreadyExists before reading the stream
    const again = await applyLayerToSnapshot(sn, { parentChainId: r1.chainID, layer: streamOf(Buffer.alloc(0)), expectedDiffID: d2 }).catch((e) => e);
    expect(isStowageError(again, 'AlreadyExists')).toBe(true);
    // wrong diffID: DigestMismatch and no snapshot left behind
    const before: string[] = [];
    await sn.walk((i) => { before.push(i.name); });
    const bad = await applyLayerToSnapshot(sn, { parentChainId: r2.chainID, layer: streamOf(t1), expectedDiffID: d2.replace(/.$/, '0') as Digest }).catch((e) => e);
    expect(isStowageError(bad, 'DigestMismatch')).toBe(true);
    const after: string[] = [];
    await sn.walk((i) => { after.push(i.name); });
    expect(after.sort()).toEqual(before.sort());
    await sn.cleanup();
    expect(fs.readdirSync(path.join(sn.root, 'snapshots'))).toHaveLength(2);
    // the merged tree
    const co = path.join(tmpdir(), 'co');
    roots.push(path.dirname(co));
    await checkout(sn, r2.chainID, co);
    expect(Object.keys(await describeTree(co)).sort()).toEqual(['a', 'a/x', 'a/x-link', 'a/y']);
    // hardlink checkout shares inodes with the store
    const hl = path.join(path.dirname(co), 'hl');
    const res = await checkout(sn, r2.chainID, hl, { link: 'hardlink' });
    expect(res.linked).toBe(3); // every regular file's name is a link to the store's inode
    expect(fs.statSync(path.join(hl, 'a/y')).ino).toBe(fs.statSync(path.join(sn.layerDir(r2.chainID), 'a/y')).ino);
    // a/x-link shares a/x's inode in the layer, and so in the checkout
    expect(fs.statSync(path.join(hl, 'a/x-link')).ino).toBe(fs.statSync(path.join(hl, 'a/x')).ino);
    await expect(checkout(sn, r2.chainID, co)).rejects.toMatchObject({ code: 'InvalidArgument' });
  });

  it('a breakout archive leaves no snapshot and no directory', async () => {
    const { sn } = store();
    const err = await applyLayerToSnapshot(sn, { layer: streamOf(await buildTar([file('../../evil', 'x')])) }).catch((e) => e);
    expect(err.data.reason).toBe('breakout');
    const names: string[] = [];
    await sn.walk((i) => { names.push(i.name); });
    expect(names).toEqual([]);
    expect(fs.readdirSync(path.join(sn.root, 'snapshots'))).toEqual([]);
  });

  it('exportSnapshotLayer re-creates an equivalent layer from the snapshot directory', async () => {
    const { sn } = store();
    const t1 = await buildTar([dir('etc'), file('etc/a', 'a'), file('etc/b', 'b'), dir('var'), file('var/x')]);
    const t2 = await buildTar([whiteout('etc/.wh.a'), dir('var'), whiteout('var/.wh..wh..opq'), file('var/new', 'n', 0o600, { uid: 5 })]);
    const r1 = await applyLayerToSnapshot(sn, { layer: streamOf(t1) });
    const r2 = await applyLayerToSnapshot(sn, { parentChainId: r1.chainID, layer: streamOf(t2) });
    const out = path.join(tmpdir(), 'layer.tar.gz');
    roots.push(path.dirname(out));
    const layer = await exportSnapshotLayer(sn, r2.chainID, fs.createWriteStream(out));
    expect(layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const flat = path.join(path.dirname(out), 'flat');
    await applyLayer(streamOf(t1), flat, { mode: 'merged' });
    await applyLayer(fs.createReadStream(out), flat, { mode: 'merged' });
    const co = path.join(path.dirname(out), 'co');
    await checkout(sn, r2.chainID, co);
    expect(await describeTree(flat)).toEqual(await describeTree(co));
    expect(fs.readdirSync(path.join(co, 'var'))).toEqual(['new']);
  });
});
