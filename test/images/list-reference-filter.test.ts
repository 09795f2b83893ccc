// `images` with a reference filter, as docker's containerd image store lists them: an image named in two
// repositories keeps only the matching RepoTags and RepoDigests, and `stowage images REPO` shows no row of
// the other repository. Pulled from a real docker-registry.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStowage } from '../../src/index.js';
import { pushWithSkopeo } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { filesFor, writeOciLayout, type GenImage } from './gen.js';
import { runCli } from '../cli/in-process.js';

let registry: Registry;
let work: string;
let two: GenImage;

const ref = (name: string): string => `${registry.host}/${name}`;
const id12 = (digest: string): string => digest.slice(7, 19);
const tmp = (): string => fs.mkdtempSync(path.join(work, 't-'));
const cli = (argv: string[]) => runCli(argv);

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-list-filter-'));
  registry = await startRegistry();
  two = await writeOciLayout(path.join(work, 'two'), [{ layers: [filesFor('filter-base'), filesFor('filter-top')], created: '2024-05-01T00:00:00Z' }], '1');
  const push = (name: string) => pushWithSkopeo(two.dir, `docker://${registry.host}/${name}`, { tag: name.split(':')[1]! });
  await Promise.all([push('zzz/app:1'), push('aaa-other:1')]);
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('images with a reference filter', () => {
  it('an image also named in another repository lists only the matching RepoTags and RepoDigests; `stowage images REPO` shows no other-repo row', async () => {
    const root = path.join(tmp(), 'store');
    const s = await openStowage({ root });
    const id = two.target.digest;
    try {
      // Records sort by name: the other repository comes first, so it would be the one RepoDigests is derived from.
      await s.pull(`${ref('aaa-other')}@${id}`);
      await s.pull(ref('zzz/app:1'));
      await s.tag(ref('zzz/app:1'), ref('aaa-other:1'));

      const all = await s.images();
      expect(all).toHaveLength(1);
      expect(all[0]!.RepoTags).toEqual(expect.arrayContaining([ref('zzz/app:1'), ref('aaa-other:1'), `${ref('aaa-other')}@${id}`]));

      for (const pattern of [ref('zzz/app'), ref('zzz/*'), ref('zzz/app:1')]) {
        const list = await s.images({ filters: { reference: [pattern] } });
        expect(list.map((i) => i.Id), pattern).toEqual([id]);
        expect(list[0]!.RepoTags, pattern).toEqual([ref('zzz/app:1')]);
        expect(list[0]!.RepoDigests, pattern).toEqual([`${ref('zzz/app')}@${id}`]);
      }
      // The digest-only name of the other repository matches its own filter, alone.
      const other = await s.images({ filters: { reference: { [ref('aaa-other')]: true } } });
      expect(other[0]!.RepoTags.every((t) => t.startsWith(ref('aaa-other')))).toBe(true);
      expect(other[0]!.RepoDigests).toEqual([`${ref('aaa-other')}@${id}`]);
      // Untagged images never match a reference filter.
      expect(await s.images({ filters: { reference: ['nothing-like-this'] } })).toEqual([]);
    } finally { await s.close(); }

    const r = await cli(['--root', root, 'images', ref('zzz/app')]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const rows = r.out.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    expect(rows.slice(1).map((l) => l.split(/\s+/).slice(0, 3))).toEqual([[ref('zzz/app'), '1', id12(id)]]);
    const d = await cli(['--root', root, 'images', '--digests', ref('zzz/app')]);
    expect(d.out.trimEnd().split('\n').slice(1).map((l) => l.split(/\s+/).slice(0, 3))).toEqual([[ref('zzz/app'), '1', id]]);
  });
});
