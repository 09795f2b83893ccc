// Leases that record their holder: a live holder's work in progress, a dead holder's leftovers
// (adopted by the next pull, released by gc after DEAD_LEASE_GRACE_MS), ownerless leases as containerd.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { checkStore, collectGarbage, DEAD_LEASE_GRACE_MS, openMetadata, type Metadata } from '../../src/metadata/index.js';
import { currentProcess, ownerState, pidExists, type ProcessOwner } from '../../src/owners/index.js';
import type { ContentStore } from '../../src/content/index.js';
import { contentFor, putBlob } from './backends.js';
import { dg, tempRoot } from './helpers.js';

let root: string; let cleanup: () => void; let md: Metadata; let cs: ContentStore;
beforeEach(async () => { ({ root, cleanup } = tempRoot()); md = openMetadata(root); cs = await contentFor(md); });
afterEach(() => { md.close(); cleanup(); });

/** A process that ran and exited: its pid is free (or reused by a process started later). */
function deadProcess(): ProcessOwner {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(require("fs").readFileSync("/proc/self/stat","utf8"))'], { encoding: 'utf8' });
  const stat = r.stdout;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pid: Number(stat.split(' ')[0]), start: fields[19]!, host: os.hostname() };
}

it('tells a live holder from a dead one, through pid reuse, and never judges another host', () => {
  const me = currentProcess();
  expect(ownerState(me)).toBe('alive');
  expect(ownerState(deadProcess())).toBe('dead');
  // Same pid, another start time: the pid was reused, the holder is gone.
  expect(ownerState({ ...me, start: `${Number(me.start) - 1}` })).toBe('dead');
  expect(ownerState({ ...me, host: `${me.host}-elsewhere` })).toBe('unknown');
  expect(pidExists(me.pid)).toBe(true);
  expect(pidExists(1)).toBe(true); // init: someone else's (EPERM) when not root, still alive
});

it('records the owner with the lease and lists it back; ownerless leases have none', () => {
  const me = currentProcess();
  md.leases.create({ id: 'owned', owner: me });
  md.leases.create({ id: 'plain' });
  const byId = Object.fromEntries(md.leases.list().map((l) => [l.id, l]));
  expect(byId.owned!.owner).toEqual(me);
  expect(byId.plain!.owner).toBeUndefined();
});

it('check: a dead holder\'s lease is reclaimable, a live one\'s missing resources are in progress, neither is damage', async () => {
  const purpose = { 'io.stowage.purpose': 'pull example.com/a:1' };
  md.leases.create({ id: 'dead', owner: deadProcess(), labels: purpose });
  md.leases.addResource('dead', { type: 'ingests', id: 'layer-never-started' });
  md.leases.addResource('dead', { type: 'content', id: dg('not fetched yet') });
  md.leases.create({ id: 'live', owner: currentProcess() });
  md.leases.addResource('live', { type: 'content', id: dg('being fetched') });
  md.leases.create({ id: 'plain' });
  md.leases.addResource('plain', { type: 'images', id: 'made-later' });

  const r = await checkStore(md, cs);
  const by = r.problems.map((p) => `${p.class} ${p.kind} ${p.subject}`).sort();
  expect(by).toEqual([
    `in-progress lease-resource-dangling live/content/${dg('being fetched')}`,
    'in-progress lease-resource-dangling plain/images/made-later',
    'reclaimable lease-holder-dead dead',
    `reclaimable lease-resource-dangling dead/content/${dg('not fetched yet')}`,
    'reclaimable lease-resource-dangling dead/ingests/layer-never-started',
  ]);
  expect(r.problems.some((p) => p.class === 'damage')).toBe(false);
});

it('adoptDead moves a dead holder\'s resources into the new lease and deletes it; live and other-purpose leases stay', async () => {
  const purpose = { 'io.stowage.purpose': 'pull example.com/a:1' };
  const blob = await putBlob(cs, 'layer fetched before the kill');
  md.leases.create({ id: 'dead', owner: deadProcess(), labels: purpose });
  md.content.recordBlob(blob.digest, blob.size, { lease: 'dead' });
  md.leases.addResource('dead', { type: 'ingests', id: 'layer-half' });
  md.leases.create({ id: 'dead-other', owner: deadProcess(), labels: { 'io.stowage.purpose': 'pull example.com/b:1' } });
  md.leases.create({ id: 'alive', owner: currentProcess(), labels: purpose });
  md.leases.create({ id: 'next', owner: currentProcess(), labels: purpose });

  expect(md.leases.adoptDead('next', purpose)).toEqual(['dead']);
  expect(md.leases.list().map((l) => l.id).sort()).toEqual(['alive', 'dead-other', 'next']);
  expect(md.leases.listResources('next')).toEqual([{ type: 'content', id: blob.digest }, { type: 'ingests', id: 'layer-half' }]);
  expect(md.leases.adoptDead('next', purpose)).toEqual([]);
});

it('gc keeps a dead holder\'s work through the grace period, then releases it; live and ownerless leases keep theirs', async () => {
  expect(DEAD_LEASE_GRACE_MS).toBe(3_600_000);
  const put = async (lease: string, s: string) => { const b = await putBlob(cs, s); md.content.recordBlob(b.digest, b.size, { lease }); return b.digest; };
  md.leases.create({ id: 'dead', owner: deadProcess() });
  md.leases.create({ id: 'live', owner: currentProcess() });
  md.leases.create({ id: 'plain', expiresInMs: 3_600_000 });
  const d = await put('dead', 'dead work');
  const l = await put('live', 'live work');
  const p = await put('plain', 'plain work');
  const backends = { content: cs };

  // Young: the next pull may still adopt it.
  let r = await collectGarbage(md, backends, { gracePeriodMs: 0 });
  expect(r.removed.leases).toBe(0);
  expect(r.removed.blobs).toBe(0);
  // Past the grace period (0 here): the dead holder's lease and what only it held go.
  r = await collectGarbage(md, backends, { gracePeriodMs: 0, deadLeaseGraceMs: 0 });
  expect(r.candidates.leases).toEqual(['dead']);
  expect(r.candidates.blobs).toEqual([d]);
  expect(md.leases.list().map((x) => x.id).sort()).toEqual(['live', 'plain']);
  expect(await cs.info(l)).toMatchObject({ digest: l });
  expect(await cs.info(p)).toMatchObject({ digest: p });
});
