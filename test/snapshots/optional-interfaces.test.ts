// The snapshotter's optional interfaces: the overlay snapshotter has them all, a snapshotter with the
// core interface only is told apart by the type guards, and the GC's directory sweep leaves it out.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openMetadata, type Metadata } from '../../src/metadata/index.js';
import {
  hasDirectorySweep, hasSnapshotLayout, isSnapshotCleaner, openSnapshotter, snapshotGcBackend, type Snapshotter,
} from '../../src/snapshots/index.js';

/** Only the core methods of `sn`, bound: what a snapshotter without the optional interfaces offers. */
function coreOnly(sn: Snapshotter, name: string): Snapshotter {
  return {
    name, root: sn.root,
    stat: (k) => sn.stat(k), update: (i, ...f) => sn.update(i, ...f), usage: (k) => sn.usage(k), mounts: (k) => sn.mounts(k),
    prepare: (k, p, o) => sn.prepare(k, p, o), view: (k, p, o) => sn.view(k, p, o), commit: (n, k, o) => sn.commit(n, k, o),
    remove: (k) => sn.remove(k), walk: (fn, ...f) => sn.walk(fn, ...f), close: () => sn.close(),
  };
}

describe('snapshotter optional interfaces', () => {
  let dir: string;
  let md: Metadata | undefined;
  afterEach(() => { md?.close(); md = undefined; fs.rmSync(dir, { recursive: true, force: true }); });

  it('the overlay snapshotter offers layout, cleaner and directory sweep; a core-only one none of them', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-optional-'));
    md = openMetadata(dir);
    const sn = openSnapshotter(dir, md.snapshots, 'overlay');
    expect([hasSnapshotLayout(sn), isSnapshotCleaner(sn), hasDirectorySweep(sn)]).toEqual([true, true, true]);
    const core = coreOnly(sn, 'core');
    expect([hasSnapshotLayout(core), isSnapshotCleaner(core), hasDirectorySweep(core)]).toEqual([false, false, false]);

    await sn.prepare('a');
    const gc = snapshotGcBackend(sn, core);
    // Only the snapshotter with a directory sweep is scanned for orphan directories.
    expect(gc.snapshotters()).toEqual(['overlay']);
    expect(await gc.listDirectories('overlay')).toEqual(sn.directoryIds());
    expect(sn.directoryIds()).toHaveLength(1);
    expect(await gc.listDirectories('core')).toEqual([]);
  });
});
