/**
 * Conformance suite for an ImageService: docker's observable image behaviour (its containerd image store's
 * where the two backends differ), one `it` per checkable behaviour that applies to the library. Any
 * implementation of the `ImageService` interface can be run through it: give it a factory of fresh stores
 * and a registry that serves the fixture images (see service.test.ts).
 *
 * Not run here, and where it is checked instead:
 *  - the Engine API's transport (ping, version negotiation, JSON error bodies, per-version response
 *    shapes): test/server/engine-api.test.ts and engine-vs-dockerd.test.ts; their library halves are here;
 *  - a *running* container: the library has working containers only (rootless, nothing runs), so only
 *    the stopped-container rules of delete apply;
 *  - save/load (test/archive/), import and commit (test/images/offline.test.ts), and their events;
 *  - push's HTTP status for a reference without a tag: the library throws before any registry traffic;
 *    the "refers to repository" line still comes first on the progress callback.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ImageService, ProgressEvent } from '../../src/images/index.js';
import type { GenImage } from './gen.js';

export interface Fixtures {
  /** app:v1 — 2 layers + 1 empty-layer history entry, labels tier=web, created 2024-01-01. */
  a: GenImage;
  /** app:v2 — 3 layers (first shared with a), labels tier=db, created 2024-02-01. */
  b: GenImage;
  /** other:1 — 1 layer, labels tier=web, created 2024-03-01. */
  c: GenImage;
  /** multi:latest — index of linux/amd64 and linux/arm64 images. */
  multi: GenImage;
  /** amb:x and amb:y — IDs sharing their first 4 hex digits. */
  amb: [GenImage, GenImage];
  /** attest:latest — index of linux/amd64 and linux/arm64 plus one attestation manifest for each. */
  attest: GenImage;
}

export interface SuiteEnv {
  /** Opens a fresh, empty store. */
  open(): Promise<ImageService>;
  /** `127.0.0.1:PORT` of a registry serving the fixtures. */
  host: string;
  fixtures: Fixtures;
  /** Pushes an OCI layout (tag `tag` inside it) to `repo:tag` on the registry. */
  push(layoutDir: string, repoTag: string, opts?: { tag?: string; all?: boolean }): Promise<void>;
  /** A private temp dir, removed after the run. */
  tmp(): string;
}

const ID_PREFIX = (d: string) => d.slice('sha256:'.length, 'sha256:'.length + 12);

export function imageServiceSuite(name: string, getEnv: () => SuiteEnv): void {
  describe(name, () => {
    let env: SuiteEnv;
    let s: ImageService;
    const ref = (n: string) => `${env.host}/${n}`;
    const ids = () => ({
      a: env.fixtures.a.target.digest, b: env.fixtures.b.target.digest, c: env.fixtures.c.target.digest,
      multi: env.fixtures.multi.target.digest,
    });

    beforeEach(async () => {
      env = getEnv();
      s = await env.open();
    });
    afterEach(async () => { await s.close(); });

    describe('names and resolution', () => {
      it('4: docker.io/library/alpine:latest, alpine, alpine:latest and index.docker.io/library/alpine resolve alike', async () => {
        await s.pull(ref('app:v1'));
        await s.tag(ref('app:v1'), 'alpine');
        for (const n of ['docker.io/library/alpine:latest', 'alpine', 'alpine:latest', 'index.docker.io/library/alpine']) {
          expect((await s.inspect(n)).Id, n).toBe(ids().a);
        }
        expect((await s.inspect('alpine')).RepoTags).toContain('alpine:latest');
      });

      it('5: uppercase in the repository path is InvalidArgument "…must be lowercase"', async () => {
        await expect(s.inspect('Foo/Bar')).rejects.toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('must be lowercase') });
        await s.pull(ref('app:v1'));
        await expect(s.tag(ref('app:v1'), 'foo/Bar')).rejects.toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('must be lowercase') });
        // An uppercase first component is a registry host, as docker reads it.
        await s.tag(ref('app:v1'), 'UPPER/case');
        expect((await s.inspect('UPPER/case')).Id).toBe(ids().a);
      });

      it('6: a missing image is NotFound "No such image: foo:latest" (:latest added for tag-less input)', async () => {
        await expect(s.inspect('foo')).rejects.toMatchObject({ code: 'NotFound', message: 'No such image: foo:latest' });
        await expect(s.inspect('foo:1')).rejects.toMatchObject({ code: 'NotFound', message: 'No such image: foo:1' });
        await expect(s.history('docker.io/library/foo')).rejects.toMatchObject({ message: 'No such image: foo:latest' });
        await expect(s.delete('foo')).rejects.toMatchObject({ code: 'NotFound', message: 'No such image: foo:latest' });
        const d = `sha256:${'a'.repeat(64)}`;
        await expect(s.inspect(d)).rejects.toMatchObject({ code: 'NotFound', message: `No such image: ${d}` });
      });

      it('7: a unique 4+ hex prefix of the ID (with or without sha256:) works in inspect, tag, history and rmi', async () => {
        await s.pull(ref('app:v1'));
        const hex = ids().a.slice(7);
        for (const p of [hex.slice(0, 4), hex.slice(0, 12), `sha256:${hex.slice(0, 6)}`, hex]) {
          expect((await s.inspect(p)).Id, p).toBe(ids().a);
          expect((await s.history(p))[0]!.Id).toBe(ids().a);
        }
        await s.tag(hex.slice(0, 5), 'prefixed:1');
        expect((await s.inspect('prefixed:1')).Id).toBe(ids().a);
        // 3 hex digits are a name, not an ID prefix.
        await expect(s.inspect(hex.slice(0, 3))).rejects.toMatchObject({ code: 'NotFound' });
        const out = await s.delete(hex.slice(0, 8), { force: true });
        expect(out).toContainEqual({ Deleted: ids().a });
        await expect(s.inspect(ids().a)).rejects.toMatchObject({ code: 'NotFound' });
      });

      it('8: a prefix matching two image IDs is NotFound "ambiguous reference"', async () => {
        await s.pull(ref('amb:x'));
        await s.pull(ref('amb:y'));
        const [x, y] = env.fixtures.amb.map((g) => g.target.digest);
        expect(x!.slice(0, 11)).toBe(y!.slice(0, 11));
        await expect(s.inspect(x!.slice(7, 11))).rejects.toMatchObject({ code: 'NotFound', message: expect.stringContaining('ambiguous reference') });
        await expect(s.delete(x!.slice(7, 11))).rejects.toMatchObject({ code: 'NotFound' });
        // A longer, unique prefix works.
        let n = 5;
        while (x!.slice(7, 7 + n) === y!.slice(7, 7 + n)) n++;
        expect((await s.inspect(x!.slice(7, 7 + n))).Id).toBe(x);
      });

      it('9: repo@digest does not resolve when that digest is only stored under another repository', async () => {
        await s.pull(ref('app:v1'));
        expect((await s.inspect(`${ref('app')}@${ids().a}`)).Id).toBe(ids().a);
        await expect(s.inspect(`${ref('nothere')}@${ids().a}`)).rejects.toMatchObject({ code: 'NotFound', message: `No such image: ${ref('nothere')}@${ids().a}` });
        // A bare digest resolves whatever the repository.
        expect((await s.inspect(ids().a)).Id).toBe(ids().a);
      });

      it('a name that is also a hex prefix resolves as the name first', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(ref('other:1'));
        const prefix = ids().c.slice(7, 13);
        await s.tag(ref('app:v1'), prefix);
        expect((await s.inspect(prefix)).Id).toBe(ids().a);
      });
    });

    describe('tag', () => {
      it('10–11: tagging adds RepoTags; without a tag it is :latest', async () => {
        await s.pull(ref('app:v1'));
        await s.tag(ids().a, 'foo:bar');
        await s.tag(ids().a, 'foo');
        const [img] = await s.images({ filters: { reference: ['foo'] } });
        expect(img!.RepoTags.sort()).toEqual(['foo:bar', 'foo:latest']);
        expect((await s.inspect('foo:bar')).RepoTags).toContain(ref('app:v1'));
      });

      it('12: moving a tag leaves the previous image dangling with empty RepoTags', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(ref('app:v2'));
        await s.tag(ref('app:v1'), 'moving:1');
        await s.delete(ref('app:v1'));
        await s.tag(ref('app:v2'), 'moving:1');
        const all = await s.images({ all: true });
        const old = all.find((i) => i.Id === ids().a)!;
        expect(old.RepoTags).toEqual([]);
        expect(old.RepoDigests).toEqual([]);
        expect((await s.images({ filters: { dangling: ['true'] } })).map((i) => i.Id)).toEqual([ids().a]);
        // Naming the dangling image again removes its dangling record.
        await s.tag(ids().a, 'back:1');
        expect(await s.images({ filters: { dangling: ['true'] } })).toEqual([]);
      });

      it('13: the repository name sha256 is refused (InvalidArgument); digests cannot be tag targets', async () => {
        await s.pull(ref('app:v1'));
        await expect(s.tag(ids().a, 'sha256:abc')).rejects.toMatchObject({ code: 'InvalidArgument' });
        await expect(s.tag(ids().a, 'sha256')).rejects.toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('ambiguous') });
        await expect(s.tag(ids().a, `foo@${ids().a}`)).rejects.toMatchObject({ code: 'InvalidArgument' });
      });

      it('tag of a missing source is NotFound', async () => {
        await expect(s.tag('nope:1', 'x:1')).rejects.toMatchObject({ code: 'NotFound', message: 'No such image: nope:1' });
      });

      it('39: Metadata.LastTagTime advances after a tag', async () => {
        await s.pull(ref('app:v1'));
        const before = (await s.inspect(ids().a)).Metadata.LastTagTime!;
        await new Promise((r) => setTimeout(r, 15));
        await s.tag(ids().a, 'later:1');
        const after = (await s.inspect(ids().a)).Metadata.LastTagTime!;
        expect(Date.parse(after)).toBeGreaterThan(Date.parse(before));
      });
    });

    describe('delete', () => {
      it('14: removing one of two tags untags only, with exactly one Untagged entry', async () => {
        await s.pull(ref('app:v1'));
        await s.tag(ref('app:v1'), 'second:1');
        expect(await s.delete('second:1')).toEqual([{ Untagged: 'second:1' }]);
        expect((await s.inspect(ids().a)).RepoTags).toEqual([ref('app:v1')]);
      });

      it('15: removing the only tag of an unused image gives Untagged then Deleted (= image ID); it leaves the list', async () => {
        await s.pull(ref('app:v1'));
        expect(await s.delete(ref('app:v1'))).toEqual([{ Untagged: ref('app:v1') }, { Deleted: ids().a }]);
        expect((await s.images({ all: true })).map((i) => i.Id)).not.toContain(ids().a);
        expect(await s.countImages()).toBe(0);
      });

      it('16: removing by ID an image tagged in two repositories needs force ("referenced in multiple repositories")', async () => {
        await s.pull(ref('app:v1'));
        await s.tag(ids().a, 'foo:1');
        await expect(s.delete(ids().a)).rejects.toMatchObject({
          code: 'Conflict',
          message: `conflict: unable to delete ${ID_PREFIX(ids().a)} (must be forced) - image is referenced in multiple repositories`,
        });
        const out = await s.delete(ids().a, { force: true });
        expect(out.filter((o) => o.Untagged).map((o) => o.Untagged).sort()).toEqual([ref('app:v1'), 'foo:1'].sort());
        expect(out[out.length - 1]).toEqual({ Deleted: ids().a });
        expect(out).toHaveLength(3);
      });

      it('17: removing by ID an image with one tag plus digest refs of the same repository needs no force', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(`${ref('app')}@${ids().a}`);
        const out = await s.delete(ids().a);
        expect(out.map((o) => o.Untagged ?? o.Deleted)).toEqual(expect.arrayContaining([ref('app:v1'), `${ref('app')}@${ids().a}`, ids().a]));
      });

      it('18: an image used by a (stopped) working container: 409 without force; force by name untags and keeps it dangling', async () => {
        await s.pull(ref('app:v1'));
        const c = await s.createLayer(undefined, ref('app:v1'));
        await expect(s.delete(ref('app:v1'))).rejects.toMatchObject({
          code: 'Conflict',
          message: `conflict: unable to delete ${ref('app:v1')} (must be forced) - container ${c.id.slice(0, 12)} is using its referenced image ${ID_PREFIX(ids().a)}`,
        });
        await expect(s.delete(ids().a)).rejects.toMatchObject({ code: 'Conflict' });
        expect(await s.delete(ref('app:v1'), { force: true })).toEqual([{ Untagged: ref('app:v1') }]);
        const dangling = await s.images({ filters: { dangling: ['true'] } });
        expect(dangling.map((i) => i.Id)).toEqual([ids().a]);
        expect(dangling[0]!.Containers).toBe(1);
        // The container still works on it, and prune leaves it alone.
        expect((await s.layerSize(c.id)).rootfs).toBeGreaterThan(0);
        expect(await s.prune()).toEqual({ ImagesDeleted: null, SpaceReclaimed: 0 });
        expect(await s.prune({ filters: { dangling: ['false'] } })).toEqual({ ImagesDeleted: null, SpaceReclaimed: 0 });
        await s.releaseLayer(c.id);
        expect((await s.prune()).ImagesDeleted).toEqual([{ Untagged: ids().a }, { Deleted: ids().a }]);
      });

      it('20: a blank name is InvalidArgument "image name cannot be blank"', async () => {
        await expect(s.delete(' ')).rejects.toMatchObject({ code: 'InvalidArgument', message: 'image name cannot be blank' });
      });

      it('21: removing repo:t1 whose only other reference is repo@digest removes both, then deletes', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(`${ref('app')}@${ids().a}`);
        expect(await s.delete(ref('app:v1'))).toEqual([
          { Untagged: ref('app:v1') }, { Untagged: `${ref('app')}@${ids().a}` }, { Deleted: ids().a },
        ]);
      });

      it('a digest ref given to rmi removes that repository\'s records of the digest', async () => {
        await s.pull(ref('app:v1'));
        await s.tag(ref('app:v1'), 'keep:1');
        const out = await s.delete(`${ref('app')}@${ids().a}`);
        expect(out).toEqual([{ Untagged: ref('app:v1') }]);
        expect((await s.inspect('keep:1')).Id).toBe(ids().a);
      });

      it('platform-specific delete needs force', async () => {
        await s.pull(ref('multi:latest'), { all: true });
        await expect(s.delete(ref('multi:latest'), { platforms: ['linux/arm64'] })).rejects.toMatchObject({ code: 'InvalidArgument' });
        const out = await s.delete(ref('multi:latest'), { platforms: ['linux/arm64'], force: true });
        const arm = env.fixtures.multi.manifests.find((m) => m.platform.architecture === 'arm64')!;
        expect(out).toEqual([{ Deleted: arm.manifest.digest }]);
        await expect(s.inspect(ref('multi:latest'), { platform: 'linux/arm64' })).rejects.toMatchObject({ code: 'NotFound' });
        expect((await s.inspect(ref('multi:latest'), { platform: 'linux/amd64' })).Architecture).toBe('amd64');
        expect((await s.check()).ok).toBe(true);
      });
    });

    describe('list', () => {
      it('22: a dangling image has RepoTags [] and RepoDigests [] (never null)', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(ref('app:v2'));
        await s.tag(ref('app:v2'), ref('app:v1'));
        const d = (await s.images()).find((i) => i.Id === ids().a)!;
        expect(d.RepoTags).toEqual([]);
        expect(d.RepoDigests).toEqual([]);
      });

      it('23: sorted by Created, newest first', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(ref('other:1'));
        await s.pull(ref('app:v2'));
        const list = await s.images();
        expect(list.map((i) => i.Id)).toEqual([ids().c, ids().b, ids().a]);
        expect(list.map((i) => i.Created)).toEqual([...list.map((i) => i.Created)].sort((x, y) => y - x));
        expect(list[2]!.Created).toBe(Date.parse('2024-01-01T00:00:00Z') / 1000);
      });

      it('24: SharedSize is -1 unless asked; then shared bytes of layers used by other images', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(ref('app:v2'));
        await s.pull(ref('other:1'));
        for (const i of await s.images()) expect(i.SharedSize).toBe(-1);
        const shared = await s.images({ sharedSize: true });
        const a = shared.find((i) => i.Id === ids().a)!;
        const b = shared.find((i) => i.Id === ids().b)!;
        const c = shared.find((i) => i.Id === ids().c)!;
        expect(a.SharedSize).toBeGreaterThan(0);
        expect(a.SharedSize).toBe(b.SharedSize);
        expect(a.SharedSize).toBeLessThan(a.Size);
        expect(c.SharedSize).toBe(0);
        for (const i of shared) expect(i.Containers).toBe(0);
      });

      it('25: dangling=true lists only dangling images; true and false together is InvalidArgument', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(ref('app:v2'));
        await s.tag(ref('app:v2'), ref('app:v1'));
        expect((await s.images({ filters: { dangling: { true: true } } })).map((i) => i.Id)).toEqual([ids().a]);
        expect((await s.images({ filters: { dangling: ['false'] } })).map((i) => i.Id)).toEqual([ids().b]);
        await expect(s.images({ filters: { dangling: { true: true, false: true } } })).rejects.toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining("invalid filter 'dangling=") });
        await expect(s.images({ filters: { dangling: ['maybe'] } })).rejects.toMatchObject({ code: 'InvalidArgument' });
      });

      it('26: reference=alp* matches alpine:latest; other names are dropped from RepoTags', async () => {
        await s.pull(ref('app:v1'));
        await s.tag(ids().a, 'alpine:3');
        await s.tag(ids().a, 'foo:1');
        await s.pull(ref('other:1'));
        await s.tag(ids().c, 'alpine:latest');
        const list = await s.images({ filters: { reference: { 'alp*': true } } });
        expect(list.map((i) => i.Id).sort()).toEqual([ids().a, ids().c].sort());
        expect(list.find((i) => i.Id === ids().a)!.RepoTags).toEqual(['alpine:3']);
        expect(list.find((i) => i.Id === ids().c)!.RepoTags).toEqual(['alpine:latest']);
        expect((await s.images({ filters: { reference: ['alpine:3'] } })).map((i) => i.Id)).toEqual([ids().a]);
        expect((await s.images({ filters: { reference: ['nothing*'] } }))).toEqual([]);
      });

      it('27: reference=docker.io/library/alpine matches the same images as reference=alpine', async () => {
        await s.pull(ref('app:v1'));
        await s.tag(ids().a, 'alpine:3');
        await s.pull(ref('other:1'));
        const short = (await s.images({ filters: { reference: ['alpine'] } })).map((i) => i.Id);
        const long = (await s.images({ filters: { reference: ['docker.io/library/alpine'] } })).map((i) => i.Id);
        expect(short).toEqual([ids().a]);
        expect(long).toEqual(short);
        // `*` does not cross `/`: it matches `alpine:3` but none of the registry-qualified names.
        expect((await s.images({ filters: { reference: ['*'] } })).map((i) => i.Id)).toEqual([ids().a]);
        expect((await s.images({ filters: { reference: [`${env.host}/*`] } })).map((i) => i.Id).sort()).toEqual([ids().a, ids().c].sort());
      });

      it('28: label=k=v keeps matching images; label!=; an unknown filter key is InvalidArgument', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(ref('app:v2'));
        await s.pull(ref('other:1'));
        expect((await s.images({ filters: { label: ['tier=web'] } })).map((i) => i.Id)).toEqual([ids().c, ids().a]);
        expect((await s.images({ filters: { label: ['tier'] } }))).toHaveLength(3);
        expect((await s.images({ filters: { label: ['tier=web', 'com.example.version=1'] } })).map((i) => i.Id)).toEqual([ids().a]);
        expect((await s.images({ filters: { 'label!': ['tier=web'] } })).map((i) => i.Id)).toEqual([ids().b]);
        await expect(s.images({ filters: { colour: ['red'] } })).rejects.toMatchObject({ code: 'InvalidArgument', message: "invalid filter 'colour'" });
      });

      it('29: before=<missing> is NotFound; since=X and before=X exclude X', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(ref('app:v2'));
        await s.pull(ref('other:1'));
        await expect(s.images({ filters: { before: ['missing:1'] } })).rejects.toMatchObject({ code: 'NotFound' });
        expect((await s.images({ filters: { since: [ref('app:v2')] } })).map((i) => i.Id)).toEqual([ids().c]);
        expect((await s.images({ filters: { before: [ref('app:v2')] } })).map((i) => i.Id)).toEqual([ids().a]);
        expect((await s.images({ filters: { since: [ids().a.slice(7, 15)] } })).map((i) => i.Id)).toEqual([ids().c, ids().b]);
      });

      it('30: until=10m is accepted; until=garbage is InvalidArgument "invalid value for \'until\' filter…"', async () => {
        await s.pull(ref('app:v1'));
        expect(await s.images({ filters: { until: ['10m'] } })).toEqual([]);
        expect((await s.images({ filters: { until: [String(Math.floor(Date.now() / 1000) + 60)] } })).map((i) => i.Id)).toEqual([ids().a]);
        expect((await s.images({ filters: { until: ['2999-01-01T00:00:00Z'] } }))).toHaveLength(1);
        await expect(s.images({ filters: { until: ['garbage'] } })).rejects.toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining("invalid value for 'until' filter") });
      });

      it('Manifests[] describes each platform (Kind, Available, Size, ImageData)', async () => {
        await s.pull(ref('multi:latest'), { platform: 'linux/arm64' });
        const [img] = await s.images({ manifests: true });
        expect(img!.Id).toBe(ids().multi);
        const byArch = new Map(img!.Manifests!.map((m) => [m.ImageData?.Platform.architecture, m]));
        expect(byArch.get('arm64')).toMatchObject({ Available: true, Kind: 'image' });
        expect(byArch.get('arm64')!.Size.Content).toBeGreaterThan(0);
        expect(byArch.get('arm64')!.ImageData!.Size.Unpacked).toBeGreaterThan(0);
        expect(byArch.get('amd64')).toMatchObject({ Available: false, Size: { Content: 0, Total: 0 } });
        expect(img!.Size).toBe(img!.Manifests!.reduce((n, m) => n + m.Size.Total, 0) + env.fixtures.multi.target.size);
      });

      it('hides nothing by default except intermediates; all=true shows the rest', async () => {
        await s.pull(ref('app:v1'));
        expect(await s.images()).toHaveLength(1);
        expect(await s.images({ all: true })).toHaveLength(1);
      });
    });

    describe('prune', () => {
      it('31: prune without filters deletes only dangling images', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(ref('app:v2'));
        await s.pull(ref('other:1'));
        await s.tag(ref('app:v2'), ref('app:v1'));
        const r = await s.prune();
        expect(r.ImagesDeleted).toEqual([{ Untagged: ids().a }, { Deleted: ids().a }]);
        expect(r.SpaceReclaimed).toBeGreaterThan(0);
        expect((await s.images({ all: true })).map((i) => i.Id).sort()).toEqual([ids().b, ids().c].sort());
        // The shared base layer survived for app:v2.
        const dir = env.tmp();
        await s.checkout(ref('app:v2'), path.join(dir, 'co'));
        expect(fs.existsSync(path.join(dir, 'co', 'd-base'))).toBe(true);
      });

      it('32: dangling=false prunes every unused image and keeps one used by a container', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(ref('other:1'));
        await s.createLayer('c1', ref('other:1'));
        const r = await s.prune({ filters: { dangling: ['false'] } });
        expect(r.ImagesDeleted).toContainEqual({ Untagged: ref('app:v1') });
        expect(r.ImagesDeleted).toContainEqual({ Deleted: ids().a });
        expect((await s.images()).map((i) => i.Id)).toEqual([ids().c]);
        await s.releaseLayer('c1');
        const r2 = await s.prune({ filters: { dangling: ['false'] } });
        expect(r2.ImagesDeleted).toContainEqual({ Untagged: ref('other:1') });
        expect(await s.images({ all: true })).toEqual([]);
      });

      it('33: nothing to prune gives ImagesDeleted null and SpaceReclaimed 0', async () => {
        await s.pull(ref('app:v1'));
        expect(await s.prune()).toEqual({ ImagesDeleted: null, SpaceReclaimed: 0 });
      });

      it('34: a second concurrent prune is Conflict "a prune operation is already running"', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(ref('app:v2'));
        await s.tag(ref('app:v2'), ref('app:v1'));
        const first = s.prune();
        await expect(s.prune()).rejects.toMatchObject({ code: 'Conflict', message: 'a prune operation is already running' });
        await first;
        expect(await s.prune()).toEqual({ ImagesDeleted: null, SpaceReclaimed: 0 });
      });

      it('prune filters: until and label; unknown keys refused', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(ref('other:1'));
        expect((await s.prune({ filters: { dangling: ['false'], until: ['1h'] } })).ImagesDeleted).toBeNull();
        const r = await s.prune({ filters: { dangling: ['false'], label: ['tier=web'], 'label!': ['com.example.version'] } });
        expect(r.ImagesDeleted).toContainEqual({ Untagged: ref('other:1') });
        expect((await s.images()).map((i) => i.Id)).toEqual([ids().a]);
        await expect(s.prune({ filters: { reference: ['x'] } })).rejects.toMatchObject({ code: 'InvalidArgument', message: "invalid filter 'reference'" });
      });
    });

    describe('history and inspect', () => {
      it('35–36: history is newest first, empty layers 0 bytes, only the top row has the ID and Tags', async () => {
        await s.pull(ref('app:v1'));
        const h = await s.history(ref('app:v1'));
        expect(h).toHaveLength(3);
        expect(h.map((r) => r.CreatedBy)).toEqual(['/bin/sh -c #(nop) ADD layer 1', '/bin/sh -c #(nop) ENV E0=1', '/bin/sh -c #(nop) ADD layer 0']);
        expect(h[0]).toMatchObject({ Id: ids().a, Tags: [ref('app:v1')] });
        expect(h[0]!.Size).toBeGreaterThan(0);
        expect(h[1]).toMatchObject({ Id: '<missing>', Tags: null, Size: 0 });
        expect(h[2]).toMatchObject({ Id: '<missing>', Tags: null, Comment: 'base' });
        expect(h[2]!.Size).toBeGreaterThan(0);
        expect(h[2]!.Created).toBe(Date.parse('2024-01-01T00:00:00Z') / 1000);
      });

      it('37: inspect RootFS.Layers equals the config diff_ids; Os/Architecture from the config', async () => {
        await s.pull(ref('app:v1'));
        const i = await s.inspect(ref('app:v1'));
        expect(i.RootFS).toEqual({ Type: 'layers', Layers: env.fixtures.a.manifests[0]!.diffIds });
        expect(i).toMatchObject({ Os: 'linux', Architecture: 'amd64', Id: ids().a, Author: 'stowage-tests', Created: '2024-01-01T00:00:00Z' });
        expect(i.RepoDigests).toEqual([`${ref('app')}@${ids().a}`]);
        expect(i.Config.Labels).toEqual({ tier: 'web', 'com.example.version': '1' });
        expect(i.Size).toBeGreaterThan(0);
        expect(i.Descriptor?.digest).toBe(ids().a);
      });

      it('38: manifests together with platform is InvalidArgument; a platform the image lacks is NotFound', async () => {
        await s.pull(ref('app:v1'));
        await expect(s.inspect(ref('app:v1'), { manifests: true, platform: 'linux/amd64' })).rejects.toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('conflicting options') });
        await expect(s.inspect(ref('app:v1'), { platform: 'linux/s390x' })).rejects.toMatchObject({
          code: 'NotFound', message: expect.stringContaining('does not provide the specified platform (linux/s390x)'),
        });
        await expect(s.inspect(ref('app:v1'), { platform: { os: 'linux', architecture: '' } })).rejects.toMatchObject({ code: 'InvalidArgument' });
        const withManifests = await s.inspect(ref('app:v1'), { manifests: true });
        expect(withManifests.Manifests).toHaveLength(1);
      });

      it('inspect with a platform gives that platform\'s manifest as Id', async () => {
        await s.pull(ref('multi:latest'), { all: true });
        const arm = env.fixtures.multi.manifests.find((m) => m.platform.architecture === 'arm64')!;
        const i = await s.inspect(ref('multi:latest'), { platform: { os: 'linux', architecture: 'arm64' } });
        expect(i).toMatchObject({ Id: arm.manifest.digest, Architecture: 'arm64' });
        expect((await s.inspect(ref('multi:latest'))).Id).toBe(ids().multi);
      });
    });

    describe('pull', () => {
      const collect = () => {
        const events: ProgressEvent[] = [];
        return { events, onProgress: (e: ProgressEvent) => { events.push(e); } };
      };

      it('40: the stream starts with "Pulling from" (id = tag) and ends with Digest + "Downloaded newer image"', async () => {
        const p = collect();
        const r = await s.pull(ref('app:v1'), { onProgress: p.onProgress });
        expect(p.events[0]).toEqual({ status: 'Pulling from app', id: 'v1' });
        expect(p.events.slice(-2)).toEqual([
          { status: `Digest: ${ids().a}` },
          { status: `Status: Downloaded newer image for ${ref('app:v1')}` },
        ]);
        expect(r).toMatchObject({ id: ids().a, ref: ref('app:v1'), updated: true });
      });

      it('41: pulling again is "Image is up to date" with no layer lines', async () => {
        await s.pull(ref('app:v1'));
        const p = collect();
        const r = await s.pull(ref('app:v1'), { onProgress: p.onProgress });
        expect(p.events.filter((e) => e.id && e.id !== 'v1')).toEqual([]);
        expect(p.events[p.events.length - 1]).toEqual({ status: `Status: Image is up to date for ${ref('app:v1')}` });
        expect(r.updated).toBe(false);
      });

      it('42: per-layer lines use 12-hex ids: Pulling fs layer, Downloading {current,total}, Download complete, Pull complete', async () => {
        const p = collect();
        await s.pull(ref('app:v2'), { onProgress: p.onProgress });
        const layers = env.fixtures.b.manifests[0]!.layers;
        for (const l of layers) {
          const id = l.digest.slice(7, 19);
          const mine = p.events.filter((e) => e.id === id).map((e) => e.status);
          expect(mine[0]).toBe('Pulling fs layer');
          expect(mine).toEqual(expect.arrayContaining(['Downloading', 'Download complete', 'Extracting', 'Pull complete']));
          expect(mine[mine.length - 1]).toBe('Pull complete');
          const dl = p.events.filter((e) => e.id === id && e.status === 'Downloading');
          expect(dl[dl.length - 1]!.progressDetail).toEqual({ current: l.size, total: l.size });
        }
        for (const e of p.events) if (e.id && e.id !== 'v2') expect(e.id).toMatch(/^[0-9a-f]{12}$/);
      });

      it('42b: a layer already present shows "Already exists"', async () => {
        await s.pull(ref('app:v1'));
        const p = collect();
        await s.pull(ref('app:v2'), { onProgress: p.onProgress });
        const base = env.fixtures.b.manifests[0]!.layers[0]!.digest.slice(7, 19);
        expect(p.events.filter((e) => e.id === base).map((e) => e.status)).toEqual(['Already exists']);
      });

      it('43: a nonexistent repository is NotFound "pull access denied … may require \'docker login\'"', async () => {
        const p = collect();
        await expect(s.pull(ref('does-not-exist:1'), { onProgress: p.onProgress })).rejects.toMatchObject({
          code: 'NotFound', message: `pull access denied for ${ref('does-not-exist')}, repository does not exist or may require 'docker login'`,
        });
        // Failing before any output is what lets the Engine API answer 404 instead of an in-stream error.
        expect(p.events).toEqual([]);
        await expect(s.pull(ref('app:nosuchtag'))).rejects.toMatchObject({ code: 'NotFound' });
      });

      it('44: scratch is Forbidden; a digest reference pulls by digest', async () => {
        await expect(s.pull('scratch')).rejects.toMatchObject({ code: 'Forbidden', message: "'scratch' is a reserved name" });
        const p = collect();
        const r = await s.pull(`${ref('app')}@${ids().a}`, { onProgress: p.onProgress });
        expect(r.id).toBe(ids().a);
        expect(p.events[0]).toMatchObject({ status: 'Pulling from app', id: `${ref('app')}@${ids().a}` });
        const i = await s.inspect(ids().a);
        expect(i.RepoTags).toEqual([`${ref('app')}@${ids().a}`]);
        expect(i.RepoDigests).toEqual([`${ref('app')}@${ids().a}`]);
      });

      it('45: a multi-arch index is stored as the image ID; RepoDigests has repo@<index digest>', async () => {
        await s.pull(ref('multi:latest'), { platform: 'linux/arm64' });
        const i = await s.inspect(ref('multi:latest'));
        expect(i.Id).toBe(ids().multi);
        expect(i.RepoDigests).toEqual([`${ref('multi')}@${ids().multi}`]);
        expect(i.Architecture).toBe('arm64');
        // Only the requested platform was fetched.
        await expect(s.inspect(ref('multi:latest'), { platform: 'linux/amd64' })).rejects.toMatchObject({ code: 'NotFound' });
      });

      it('pulling a platform the index lacks is NotFound "no matching manifest for …"', async () => {
        await expect(s.pull(ref('multi:latest'), { platform: 'linux/s390x' })).rejects.toMatchObject({
          code: 'NotFound', message: expect.stringContaining('no matching manifest for linux/s390x'),
        });
      });

      it('a re-pull to a new digest leaves the old image dangling', async () => {
        const dir = env.tmp();
        await env.push(env.fixtures.a.dir, ref('moving:1'), { tag: 'v1' });
        await s.pull(ref('moving:1'));
        await env.push(env.fixtures.b.dir, ref('moving:1'), { tag: 'v2' });
        const r = await s.pull(ref('moving:1'));
        expect(r).toMatchObject({ id: ids().b, updated: true });
        const dangling = await s.images({ filters: { dangling: ['true'] } });
        expect(dangling.map((i) => i.Id)).toEqual([ids().a]);
        void dir;
      });

      it('an aborted pull is Aborted and leaves no image; the next pull completes', async () => {
        const ctrl = new AbortController();
        const p = s.pull(ref('app:v2'), { signal: ctrl.signal, onProgress: (e) => { if (e.status === 'Pulling fs layer') ctrl.abort(); } });
        await expect(p).rejects.toMatchObject({ code: 'Aborted' });
        await expect(s.inspect(ref('app:v2'))).rejects.toMatchObject({ code: 'NotFound' });
        expect((await s.pull(ref('app:v2'))).id).toBe(ids().b);
        expect((await s.inspect(ref('app:v2'))).Id).toBe(ids().b);
      });
    });

    describe('attestations and the ImageManifest helpers (moby\'s IsAttestation, IsPseudoImage)', () => {
      it('attestation manifests are listed as Kind attestation and never chosen as the image', async () => {
        await s.pull(ref('attest:latest'), { all: true });
        const [img] = await s.images({ manifests: true });
        const kinds = img!.Manifests!.map((m) => m.Kind).sort();
        expect(kinds).toEqual(['attestation', 'attestation', 'image', 'image']);
        const imageDigests = env.fixtures.attest.manifests.map((m) => m.manifest.digest).sort();
        const fors = img!.Manifests!.filter((m) => m.Kind === 'attestation').map((m) => m.AttestationData!.For).sort();
        expect(fors).toEqual(imageDigests);
        for (const m of img!.Manifests!.filter((x) => x.Kind === 'attestation')) expect(m.ImageData).toBeUndefined();
        const i = await s.inspect(ref('attest:latest'));
        expect(['amd64', 'arm64']).toContain(i.Architecture);
        expect(i.Os).toBe('linux');
      });

      it('getImage exposes the helpers: platform, content available, pseudo image, sizes, config, snapshot usage', async () => {
        await s.pull(ref('attest:latest'), { platform: 'linux/arm64' });
        const img = await s.getImage(ref('attest:latest'), { platform: 'linux/arm64' });
        expect(img.id).toBe(env.fixtures.attest.target.digest);
        const m = img.manifest!;
        expect(await m.platform()).toMatchObject({ os: 'linux', architecture: 'arm64' });
        expect(await m.contentAvailable()).toBe(true);
        expect(m.isAttestation()).toBe(false);
        expect(await m.isPseudoImage()).toBe(false);
        expect(await m.isUnpacked()).toBe(true);
        expect(await m.presentContentSize()).toBe(
          m.descriptor.size + env.fixtures.attest.manifests[1]!.config.size + env.fixtures.attest.manifests[1]!.layers.reduce((n, l) => n + l.size, 0),
        );
        expect((await m.readConfig()).architecture).toBe('arm64');
        expect(await m.snapshotUsage()).toBeGreaterThan(0);
        expect(await m.chainIds()).toEqual([env.fixtures.attest.manifests[1]!.diffIds[0]]);
        // The amd64 platform was not pulled: strict platform lookup fails.
        await expect(s.getImage(ref('attest:latest'), { platform: 'linux/amd64' })).rejects.toMatchObject({ code: 'NotFound' });
        const raw = await s.resolveImage(ref('attest:latest'));
        expect(raw).toMatchObject({ name: `${env.host}/attest:latest`, target: { digest: env.fixtures.attest.target.digest } });
      });
    });

    describe('push', () => {
      const collect = () => {
        const events: ProgressEvent[] = [];
        return { events, onProgress: (e: ProgressEvent) => { events.push(e); } };
      };

      it('46: a tag that does not exist locally: first "The push refers to repository […]", then NotFound "tag does not exist"', async () => {
        const p = collect();
        await expect(s.push(ref('nothere:tag'), { onProgress: p.onProgress })).rejects.toMatchObject({
          code: 'NotFound', message: `tag does not exist: ${ref('nothere:tag')}`,
        });
        expect(p.events[0]).toEqual({ status: `The push refers to repository [${ref('nothere')}]` });
        await expect(s.push(ref('nothere'))).rejects.toMatchObject({ code: 'NotFound', message: `An image does not exist locally with the tag: ${ref('nothere')}` });
        await expect(s.push(`${ref('app')}@${ids().a}`)).rejects.toMatchObject({ code: 'InvalidArgument' });
      });

      it('47: a push ends with "<tag>: digest: … size: N" and logs a push event; the registry serves the same image', async () => {
        await s.pull(ref('app:v1'));
        const target = `pushed-${Date.now().toString(36)}`;
        await s.tag(ref('app:v1'), ref(`${target}:t1`));
        const t0 = new Date(Date.now() - 1000);
        const p = collect();
        const r = await s.push(ref(`${target}:t1`), { onProgress: p.onProgress });
        expect(r).toEqual([{ ref: ref(`${target}:t1`), digest: ids().a, size: env.fixtures.a.target.size }]);
        const statuses = p.events.filter((e) => e.status).map((e) => e.status);
        expect(statuses[statuses.length - 1]).toBe(`t1: digest: ${ids().a} size: ${env.fixtures.a.target.size}`);
        // Every blob came from app on the same registry: mounted, not uploaded.
        expect(statuses.filter((x) => x?.startsWith('Mounted from app')).length).toBeGreaterThan(0);
        const events = [];
        for await (const e of s.events({ since: t0, until: new Date(Date.now() + 1000), filters: { event: ['push'] } })) events.push(e);
        expect(events.map((e) => [e.Actor.ID, e.Actor.Attributes.name])).toEqual([[ref(`${target}:t1`), ref(target)]]);
        // Pull it back into a fresh store: same ID.
        const s2 = await env.open();
        try {
          expect((await s2.pull(ref(`${target}:t1`))).id).toBe(ids().a);
        } finally { await s2.close(); }
        // Pushing again: everything already there.
        const again = collect();
        await s.push(ref(`${target}:t1`), { onProgress: again.onProgress });
        expect(again.events.some((e) => e.status === 'Layer already exists')).toBe(true);
        expect(again.events.some((e) => e.status === 'Pushing')).toBe(false);
      });

      it('a tag-less push sends every tag of the repository', async () => {
        await s.pull(ref('other:1'));
        const target = `alltags-${Date.now().toString(36)}`;
        await s.tag(ref('other:1'), ref(`${target}:a`));
        await s.tag(ref('other:1'), ref(`${target}:b`));
        const r = await s.push(ref(target));
        expect(r.map((x) => x.ref)).toEqual([ref(`${target}:a`), ref(`${target}:b`)]);
      });

      it('an index with one platform present pushes that platform manifest; with all platforms, the index', async () => {
        await s.pull(ref('multi:latest'), { platform: 'linux/arm64' });
        const target = `multi-${Date.now().toString(36)}`;
        await s.tag(ref('multi:latest'), ref(`${target}:one`));
        const p = collect();
        const [one] = await s.push(ref(`${target}:one`), { onProgress: p.onProgress });
        const arm = env.fixtures.multi.manifests.find((m) => m.platform.architecture === 'arm64')!;
        expect(one!.digest).toBe(arm.manifest.digest);
        expect(p.events.some((e) => e.aux?.ManifestPushedInsteadOfIndex === true)).toBe(true);
        await s.pull(ref('multi:latest'), { all: true });
        await s.tag(ref('multi:latest'), ref(`${target}:all`));
        const [all] = await s.push(ref(`${target}:all`));
        expect(all!.digest).toBe(ids().multi);
        const [amd] = await s.push(ref(`${target}:all`), { platform: 'linux/amd64' });
        expect(amd!.digest).toBe(env.fixtures.multi.manifests.find((m) => m.platform.architecture === 'amd64')!.manifest.digest);
      });
    });

    describe('events', () => {
      it('pull, tag, untag and delete are logged in docker\'s shape', async () => {
        const t0 = new Date(Date.now() - 1000);
        await s.pull(ref('app:v1'));
        await s.tag(ref('app:v1'), 'evt:1');
        await s.delete('evt:1');
        await s.delete(ref('app:v1'));
        const got = [];
        for await (const e of s.events({ since: t0, until: new Date(Date.now() + 1000) })) got.push(e);
        expect(got.map((e) => [e.Action, e.Actor.ID, e.Actor.Attributes.name])).toEqual([
          ['pull', ref('app:v1'), ref('app')],
          ['tag', ids().a, 'evt:1'],
          ['untag', ids().a, 'evt:1'],
          ['untag', ids().a, ref('app:v1')],
          ['delete', ids().a, ids().a],
        ]);
        for (const e of got) {
          expect(e).toMatchObject({ Type: 'image', scope: 'local' });
          expect(e.timeNano).toBeGreaterThanOrEqual(e.time * 1e9);
        }
        expect(got[0]!.Actor.Attributes.tier).toBe('web');
        const onlyTags = [];
        for await (const e of s.events({ since: t0, until: new Date(Date.now() + 1000), filters: { event: ['tag'] } })) onlyTags.push(e);
        expect(onlyTags).toHaveLength(1);
        const byImage = [];
        for await (const e of s.events({ since: t0, until: new Date(Date.now() + 1000), filters: { image: ['evt'] } })) byImage.push(e.Action);
        expect(byImage).toEqual(['tag', 'untag']);
      });

      it('follows new events until the signal fires', async () => {
        const ctrl = new AbortController();
        const seen: string[] = [];
        const done = (async () => {
          for await (const e of s.events({ signal: ctrl.signal })) {
            seen.push(e.Action);
            if (seen.length === 2) ctrl.abort();
          }
        })();
        await new Promise((r) => setTimeout(r, 50));
        await s.pull(ref('other:1'));
        await s.tag(ref('other:1'), 'follow:1');
        await done;
        expect(seen).toEqual(['pull', 'tag']);
      });
    });

    describe('disk usage, count, children', () => {
      it('63: TotalCount = list length, ActiveCount = images with containers, sizes consistent', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(ref('app:v2'));
        await s.pull(ref('other:1'));
        await s.createLayer(undefined, ref('other:1'));
        const du = await s.diskUsage();
        expect(du.TotalCount).toBe((await s.images({ all: true })).length);
        expect(du.ActiveCount).toBe(1);
        const sum = du.Items.reduce((n, i) => n + i.Size, 0);
        const shared = du.Items.find((i) => i.Id === ids().a)!.SharedSize;
        // Shared bytes are counted once in the total.
        expect(du.TotalSize).toBe(sum - shared);
        expect(du.Reclaimable).toBe(du.Items.filter((i) => i.Containers === 0).reduce((n, i) => n + i.Size - i.SharedSize, 0));
      });

      it('64: countImages counts distinct image IDs', async () => {
        await s.pull(ref('app:v1'));
        await s.tag(ref('app:v1'), 'again:1');
        await s.pull(ref('other:1'));
        expect(await s.countImages()).toBe(2);
        expect(await s.children(ref('app:v1'))).toEqual([]);
      });
    });

    describe('working containers', () => {
      it('create, find, path, mounts, changes, size, release', async () => {
        await s.pull(ref('app:v1'));
        const c = await s.createLayer(undefined, ref('app:v1'), { name: 'work' });
        expect(c.id).toMatch(/^[0-9a-f]{64}$/);
        expect(c.imageId).toBe(ids().a);
        expect((await s.getLayer('work')).id).toBe(c.id);
        expect((await s.getLayer(c.id.slice(0, 8))).id).toBe(c.id);
        await expect(s.createLayer(undefined, ref('app:v1'), { name: 'work' })).rejects.toMatchObject({ code: 'Conflict' });
        const upper = await s.layerPath(c.id);
        const mounts = await s.mounts(c.id);
        expect(mounts[0]!.type).toBe('overlay');
        expect(mounts[0]!.options.some((o) => o === `upperdir=${upper}`)).toBe(true);
        expect((await s.changes(c.id))).toEqual([]);
        fs.writeFileSync(path.join(upper, 'new.txt'), 'hello');
        fs.mkdirSync(path.join(upper, 'd-a'));
        fs.writeFileSync(path.join(upper, 'd-a', 'f0.txt'), 'changed');
        fs.writeFileSync(path.join(upper, 'd-a', '.wh.f1.txt'), '');
        const changes = await s.changes(c.id);
        expect(changes).toEqual(expect.arrayContaining([
          { Kind: 1, Path: '/new.txt' }, { Kind: 0, Path: '/d-a' }, { Kind: 0, Path: '/d-a/f0.txt' }, { Kind: 2, Path: '/d-a/f1.txt' },
        ]));
        const size = await s.layerSize(c.id);
        expect(size.rw).toBeGreaterThan(0);
        expect(size.rootfs).toBeGreaterThan(size.rw);
        expect((await s.listLayers()).map((l) => l.id)).toEqual([c.id]);
        expect((await s.images())[0]!.Containers).toBe(1);
        await s.releaseLayer('work');
        await expect(s.getLayer(c.id)).rejects.toMatchObject({ code: 'NotFound', message: `No such container: ${c.id}` });
        expect(await s.delete(ref('app:v1'))).toContainEqual({ Deleted: ids().a });
      });

      it('a working container survives GC after its image is force-untagged', async () => {
        await s.pull(ref('app:v1'));
        const c = await s.createLayer('keep', ref('app:v1'));
        await s.delete(ids().a, { force: true });
        await s.gc();
        const dir = path.join(env.tmp(), 'merged');
        const mounts = await s.mounts(c.id);
        const lower = mounts[0]!.options.find((o) => o.startsWith('lowerdir='))!.slice('lowerdir='.length).split(':');
        for (const l of lower) expect(fs.existsSync(l)).toBe(true);
        void dir;
      });
    });

    describe('checkout, gc and check', () => {
      it('checkout materialises the merged tree of the chosen platform', async () => {
        await s.pull(ref('multi:latest'), { all: true });
        const dir = env.tmp();
        await s.checkout(ref('multi:latest'), path.join(dir, 'arm'), { platform: 'linux/arm64' });
        await s.checkout(ref('multi:latest'), path.join(dir, 'amd'), { platform: 'linux/amd64' });
        expect(fs.readFileSync(path.join(dir, 'arm', 'arch.txt'), 'utf8')).toBe('arm64\n');
        expect(fs.readFileSync(path.join(dir, 'amd', 'arch.txt'), 'utf8')).toBe('amd64\n');
        await expect(s.checkout(ref('multi:latest'), path.join(dir, 'x'), { platform: 'linux/s390x' })).rejects.toMatchObject({ code: 'NotFound' });
      });

      it('gc keeps everything an image needs and removes what a deleted image left', async () => {
        await s.pull(ref('app:v1'));
        await s.pull(ref('app:v2'));
        const first = await s.gc();
        expect(first.blobsRemoved).toBe(0);
        expect(first.snapshotsRemoved).toBe(0);
        const before = (await s.diskUsage()).TotalSize;
        await s.delete(ref('app:v2'));
        await s.gc();
        expect((await s.diskUsage()).TotalSize).toBeLessThan(before);
        const dir = env.tmp();
        await s.checkout(ref('app:v1'), path.join(dir, 'co'));
        expect(fs.readdirSync(path.join(dir, 'co')).sort()).toEqual(['d-a', 'd-base']);
        expect((await s.check()).ok).toBe(true);
      });
    });
  });
}
