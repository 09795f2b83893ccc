// Built images written out as an OCI layout and as an archive, read back by the peers (umoci, skopeo)
// and by the store's own load: the layers are standard, not just readable by Stowage.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { buildImage, openStowage, randomImageSpec, writeImageArchive, writeOciLayout, isStowageError } from '../../src/index.js';
import { compareTrees } from '../../src/testing/index.js';

const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-imagebuilder-peers-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('built images and the peers', () => {
  it('umoci unpacks the OCI layout of a random image to the tree its layers describe; skopeo sees the same digest', async () => {
    const spec = randomImageSpec({ seed: 'umoci', layers: 4, filesPerLayer: 15, churn: 0.4 });
    const image = await buildImage(spec);
    const layout = path.join(tmp, 'layout');
    await writeOciLayout(image, layout, { ref: 'example.test/random:v1' });
    const { stdout } = await run('skopeo', ['inspect', '--raw', `oci:${layout}:v1`]);
    expect(JSON.parse(stdout)).toEqual(image.manifest);
    const bundle = path.join(tmp, 'bundle');
    await run('umoci', ['unpack', '--rootless', '--image', `${layout}:v1`, bundle]);
    const diffs = compareTrees(path.join(bundle, 'rootfs'), spec.layers.map((l) => l.files));
    expect(diffs.map((d) => d.message)).toEqual([]);
  });

  it('refuses to write a layout into a directory that is not empty', async () => {
    const image = await buildImage({ layers: [{ files: { '/a': 'a' } }] });
    const dir = path.join(tmp, 'full');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'x'), 'x');
    const err = await writeOciLayout(image, dir).then(() => undefined, (e: unknown) => e);
    expect(isStowageError(err, 'AlreadyExists')).toBe(true);
  });

  it('writes an archive that skopeo reads as a docker-archive and a store loads back with the same ID', async () => {
    const image = await buildImage({ platform: 'linux/amd64', layers: [{ files: { '/etc/motd': 'archived\n' } }], cmd: ['/bin/true'] });
    const file = path.join(tmp, 'image.tar');
    await writeImageArchive(image, fs.createWriteStream(file), { ref: 'example.test/archived:2' });
    const { stdout } = await run('skopeo', ['inspect', '--config', '--raw', `docker-archive:${file}`]);
    expect(JSON.parse(stdout)).toEqual(image.config);
    await using store = await openStowage({ temporary: true });
    const loaded = await store.load(fs.createReadStream(file));
    expect(loaded.images.map((i) => i.id)).toContain(image.target.digest);
    expect((await store.resolveImage('example.test/archived:2')).target.digest).toBe(image.target.digest);
  });
});
