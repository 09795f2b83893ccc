// Peer comparison: the same OCI image unpacked by `umoci unpack` and by our snapshotter + checkout
// must give the same tree (paths, types, modes, owners, sizes, contents, link targets, file mtimes,
// hard-link groups).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openMetadata } from '../../src/metadata/index.js';
import { digestOf, type Digest } from '../../src/oci/index.js';
import { applyLayerToSnapshot, checkout, openSnapshotter } from '../../src/snapshots/index.js';
import { buildTar, compressBuf, describeTree, dir, file, hardlink, isRoot, linkGroups, sha256, symlink, tmpdir, whiteout, type TEntry } from './helpers.js';
import { skipUnless } from '../harness/skip.js';

const hasUmoci = spawnSync('umoci', ['--version']).status === 0;
const roots: string[] = [];
afterAll(() => { for (const d of roots) fs.rmSync(d, { recursive: true, force: true }); });

const layers: TEntry[][] = [
  [
    dir('etc'), file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n'), file('etc/shadow', 's', 0o640, { gid: 42 }),
    dir('usr'), dir('usr/bin'), file('usr/bin/tool', '#!/bin/sh\necho hi\n', 0o755), file('usr/bin/su', 'su', 0o4755),
    hardlink('usr/bin/tool', 'usr/bin/tool-alias'), symlink('usr/bin', 'bin'), symlink('/etc/passwd', 'etc/passwd.abs'),
    dir('var'), dir('var/cache'), file('var/cache/a', 'a'), dir('var/cache/sub'), file('var/cache/sub/b', 'b'),
    dir('opt'), file('opt/remove-me', 'x'), dir('tmp', 0o1777), dir('home'), dir('home/user', 0o700, { uid: 1000, gid: 1000 }),
    file('home/user/.bashrc', 'alias ll=ls\n', 0o644, { uid: 1000, gid: 1000 }),
    { name: 'run-fifo', type: 'fifo', mode: 0o600 },
    file('l'.repeat(60) + '/' + 'o'.repeat(70) + '/' + 'ng'.repeat(80), 'long name'),
    file('xattr-file', 'x', 0o644, { pax: { 'SCHILY.xattr.user.comment': 'hello' } }),
  ],
  [
    whiteout('opt/.wh.remove-me'), dir('var'), dir('var/cache'), whiteout('var/cache/.wh..wh..opq'), file('var/cache/fresh', 'f'),
    file('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\n'), dir('etc/new.d', 0o750, { uid: 3, gid: 4 }), file('etc/new.d/conf', 'c'),
    hardlink('usr/bin/su', 'usr/bin/su-link'),
  ],
  [
    whiteout('.wh.home'), dir('home'), file('home/replaced', 'r'), whiteout('usr/bin/.wh.tool-alias'),
    file('usr/bin/tool', 'rewritten\n', 0o700), symlink('../tmp', 'opt/tmp-link'),
  ],
];

async function buildImage(dirPath: string): Promise<{ blobs: Buffer[]; diffIDs: string[] }> {
  const blobsDir = path.join(dirPath, 'blobs/sha256');
  fs.mkdirSync(blobsDir, { recursive: true });
  const put = (b: Buffer): { digest: string; size: number } => {
    const d = digestOf(b);
    fs.writeFileSync(path.join(blobsDir, d.slice(7)), b);
    return { digest: d, size: b.length };
  };
  const blobs: Buffer[] = [];
  const diffIDs: string[] = [];
  const layerDescs = [];
  for (const [i, l] of layers.entries()) {
    const raw = await buildTar(l);
    const blob = compressBuf(raw, i === 1 ? 'zstd' : 'gzip');
    blobs.push(blob);
    diffIDs.push(`sha256:${sha256(raw)}`);
    layerDescs.push({ mediaType: i === 1 ? 'application/vnd.oci.image.layer.v1.tar+zstd' : 'application/vnd.oci.image.layer.v1.tar+gzip', ...put(blob) });
  }
  const config = { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIDs } };
  const cfg = put(Buffer.from(JSON.stringify(config)));
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg }, layers: layerDescs };
  const man = put(Buffer.from(JSON.stringify(manifest)));
  fs.writeFileSync(path.join(dirPath, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(dirPath, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...man, annotations: { 'org.opencontainers.image.ref.name': 'test' } }] }));
  return { blobs, diffIDs };
}

describe('umoci unpack comparison', () => {
  const it = skipUnless(hasUmoci, 'umoci is not installed (scripts/test.sh installs it as root)');
  it('our snapshot chain + checkout equals umoci\'s rootfs', async () => {
    const base = tmpdir('stowage-umoci-');
    roots.push(base);
    const image = path.join(base, 'image');
    const { blobs, diffIDs } = await buildImage(image);
    const bundle = path.join(base, 'bundle');
    // umoci 0.4.7 does not know zstd: give it a gzip copy of the same layer (same diffID).
    const zi = 1;
    const gz = compressBuf(await buildTar(layers[zi]!), 'gzip');
    const idx = JSON.parse(fs.readFileSync(path.join(image, 'index.json'), 'utf8'));
    const manPath = path.join(image, 'blobs/sha256', idx.manifests[0].digest.slice(7));
    const man = JSON.parse(fs.readFileSync(manPath, 'utf8'));
    const gzDigest = digestOf(gz);
    fs.writeFileSync(path.join(image, 'blobs/sha256', gzDigest.slice(7)), gz);
    man.layers[zi] = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: gzDigest, size: gz.length };
    const manBuf = Buffer.from(JSON.stringify(man));
    const manDigest = digestOf(manBuf);
    fs.writeFileSync(path.join(image, 'blobs/sha256', manDigest.slice(7)), manBuf);
    idx.manifests[0] = { ...idx.manifests[0], digest: manDigest, size: manBuf.length };
    fs.writeFileSync(path.join(image, 'index.json'), JSON.stringify(idx));
    const args = ['unpack', ...(isRoot ? [] : ['--rootless']), '--image', `${image}:test`, bundle];
    execFileSync('umoci', args, { stdio: 'pipe' });
    const theirs = path.join(bundle, 'rootfs');

    const root = path.join(base, 'store');
    const md = openMetadata(root);
    const sn = openSnapshotter(root, md.snapshots);
    let parent: Digest | undefined;
    for (const [i, blob] of blobs.entries()) {
      const res = await applyLayerToSnapshot(sn, { parentChainId: parent, layer: fs.createReadStream(writeTmp(base, blob)), expectedDiffID: diffIDs[i] as Digest });
      parent = res.chainID;
    }
    const ours = path.join(base, 'ours');
    await checkout(sn, parent!, ours);
    const a = await describeTree(ours, { mtimes: true });
    const b = await describeTree(theirs, { mtimes: true });
    expect(a).toEqual(b);
    expect(linkGroups(ours)).toEqual(linkGroups(theirs));
    expect(execFileSync('getfattr', ['--only-values', '-n', 'user.comment', path.join(ours, 'xattr-file')]).toString()).toBe('hello');
    (md as unknown as { close?: () => void }).close?.();
  }, 60_000);
});

let tmpN = 0;
function writeTmp(base: string, b: Buffer): string {
  const p = path.join(base, `blob-${tmpN++}`);
  fs.writeFileSync(p, b);
  return p;
}
