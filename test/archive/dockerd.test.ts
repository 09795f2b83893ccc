/**
 * Interop with dockerd 20.10 (Debian's docker.io, the legacy archive format): what `stowage save`
 * writes, `docker load` takes (same diff IDs, labels, and `docker export` of a container gives our
 * checkout's tree); what `docker save` writes (per-layer dirs, `manifest.json`, `repositories`),
 * `stowage load` takes with its names, also gzip-compressed through the real binary's stdin.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage, type Stowage } from '../../src/index.js';
import { BIN, ensureBuilt } from '../cli/binary.js';
import { dockerdAvailable, startDockerd, type Dockerd } from '../harness/dockerd.js';
import { writeOciLayout } from '../images/gen.js';
import { describeTree, type Node } from '../snapshots/helpers.js';

let work: string;
let dockerd: Dockerd;
let store: Stowage;
const APP = 'example.com/dk/app:1';
const TOOL = 'example.com/dk/tool:2';
let n = 0;
const tmp = (name: string) => path.join(work, `${name}-${n++}`);

async function ourTree(s: Stowage, ref: string): Promise<Record<string, Node>> {
  const dir = tmp('co');
  await s.checkout(ref, dir);
  return describeTree(dir);
}

/** The tree docker gives for the image: `docker create` + `docker export`, without the files docker adds. */
async function dockerTree(image: string): Promise<Record<string, Node>> {
  const id = (await dockerd.docker(['create', image, '/none'])).stdout.toString().trim();
  const tarFile = tmp('export') + '.tar';
  fs.writeFileSync(tarFile, (await dockerd.docker(['export', id])).stdout);
  await dockerd.docker(['rm', id]);
  const dir = tmp('export');
  fs.mkdirSync(dir);
  execFileSync('tar', ['--numeric-owner', '-xpf', tarFile, '-C', dir]);
  const t = await describeTree(dir);
  for (const k of Object.keys(t)) {
    if (/^(\.dockerenv|dev|proc|sys|etc\/(hostname|hosts|resolv\.conf|mtab))(\/|$)/.test(k)) delete t[k];
  }
  // docker export creates /etc for the files it bind-mounts there: drop it when the image had none.
  if (t.etc && !Object.keys(t).some((k) => k.startsWith('etc/'))) delete t.etc;
  return t;
}

beforeAll(async () => {
  if (!dockerdAvailable()) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-dockerd-'));
  const [d] = await Promise.all([startDockerd(), ensureBuilt()]);
  dockerd = d;
  store = await openStowage({ root: tmp('store') });
  const app = await writeOciLayout(tmp('app'), [{
    layers: [
      [{ path: 'etc/' }, { path: 'etc/os-release', content: 'ID=dk\n' }, { path: 'etc/old', content: 'old\n' }, { path: 'usr/' }, { path: 'usr/bin/' }, { path: 'usr/bin/run', content: '#!/bin/sh\n', mode: 0o755 }],
      [{ path: 'etc/' }, { path: 'etc/.wh.old', content: '' }, { path: 'bin', type: 'symlink', linkname: 'usr/bin' }, { path: 'srv/' }, { path: 'srv/data', content: 'x'.repeat(5000) }],
    ],
    labels: { from: 'stowage' },
  }], APP);
  const tool = await writeOciLayout(tmp('tool'), [{ layers: [[{ path: 'opt/' }, { path: 'opt/tool', content: 'tool\n' }]] }], TOOL);
  for (const dir of [app.dir, tool.dir]) {
    const t = tmp('layout') + '.tar';
    execFileSync('tar', ['-C', dir, '-cf', t, '.']);
    await store.load(fs.createReadStream(t));
  }
}, 120_000);

afterAll(async () => {
  await store?.close();
  await dockerd?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!dockerdAvailable())('dockerd 20.10', () => {
  it('docker load takes what stowage save writes: names, diff IDs, labels, the tree', async () => {
    const file = tmp('ours') + '.tar';
    await store.save([APP, TOOL], fs.createWriteStream(file));
    const out = (await dockerd.docker(['load', '-i', file])).stdout.toString();
    expect(out).toContain(`Loaded image: ${APP}`);
    expect(out).toContain(`Loaded image: ${TOOL}`);
    const [ins] = JSON.parse((await dockerd.docker(['image', 'inspect', APP])).stdout.toString());
    const ours = await store.inspect(APP);
    expect(ins.RootFS.Layers).toEqual(ours.RootFS.Layers);
    expect(ins.Config.Labels).toEqual({ from: 'stowage' });
    expect(await dockerTree(APP)).toEqual(await ourTree(store, APP));
  });

  it('stowage load takes what docker save writes (legacy format): names, diff IDs, the tree', async () => {
    const file = tmp('theirs') + '.tar';
    fs.writeFileSync(file, (await dockerd.docker(['save', APP, TOOL])).stdout);
    const members = execFileSync('tar', ['-tf', file]).toString().split('\n');
    expect(members).toContain('manifest.json');
    expect(members).toContain('repositories');
    expect(members.some((m) => m.endsWith('/layer.tar'))).toBe(true);
    expect(members).not.toContain('index.json');
    const fresh = await openStowage({ root: tmp('fresh') });
    const r = await fresh.load(fs.createReadStream(file));
    expect(r.images.map((i) => i.name).sort()).toEqual([APP, TOOL].sort());
    const ins = await fresh.inspect(APP);
    expect(ins.RootFS.Layers).toEqual((await store.inspect(APP)).RootFS.Layers);
    expect(ins.Config.Labels).toEqual({ from: 'stowage' });
    expect(await ourTree(fresh, APP)).toEqual(await ourTree(store, APP));
    // Loading the same archive again changes nothing but the record times.
    const again = await fresh.load(Readable.from([fs.readFileSync(file)]));
    expect(again.images.map((i) => i.id).sort()).toEqual(r.images.map((i) => i.id).sort());
    expect((await fresh.check()).ok).toBe(true);
    await fresh.close();
  });

  it('the binary loads `docker save | gzip` from stdin and saves to stdout for docker load', async () => {
    const root = tmp('cli');
    const sock = `unix://${dockerd.socket}`;
    const loaded = execFileSync('sh', ['-c', `docker -H ${sock} save ${TOOL} | gzip | node ${BIN} --root ${root} load`]).toString();
    expect(loaded).toBe(`Loaded image: ${TOOL}\n`);
    await dockerd.docker(['rmi', TOOL]);
    const back = execFileSync('sh', ['-c', `node ${BIN} --root ${root} save ${TOOL} | docker -H ${sock} load`]).toString();
    expect(back).toContain(`Loaded image: ${TOOL}`);
    expect(await dockerTree(TOOL)).toEqual(await ourTree(store, TOOL));
  });
});
