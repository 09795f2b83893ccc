import { openMetadata } from '../../src/metadata/index.js';
import { openSnapshotter } from '../../src/snapshots/index.js';
import { snapshotterSuite } from './suite.js';

snapshotterSuite('overlay (directory layout, metadata records)', async (root) => {
  const md = openMetadata(root);
  const sn = openSnapshotter(root, md.snapshots, 'overlay');
  return { sn, root, close: async () => { await sn.close(); (md as unknown as { close?: () => void }).close?.(); } };
});
