/**
 * docker (Debian's dockerd 20.10, private) pulls from the registry server as an insecure registry, and
 * pulls a Docker Hub name through the server as its `registry-mirrors` entry (the server being a mirror
 * of a local docker-registry standing in for Docker Hub). Root only: dockerd needs it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerdAvailable, startDockerd, type Dockerd } from '../harness/dockerd.js';
import { makeTestImage, pushRaw, pushWithSkopeo, writeOciLayout, type TestImage } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { startStowageRegistry, type StowageRegistry } from '../harness/stowage-registry.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

describe.runIf(dockerdAvailable())('dockerd 20.10 as a client', () => {
  let tmp: string;
  let served: StowageRegistry;
  let hub: Registry;
  let mirror: StowageRegistry;
  let dockerd: Dockerd;
  let image: TestImage;
  let hubImage: TestImage;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-dockerd-'));
    served = await startStowageRegistry();
    image = await makeTestImage({ layers: [{ files: { 'etc/hello': 'hello docker\n' } }] });
    await pushWithSkopeo(writeOciLayout(path.join(tmp, 'layout'), image, 'v1'), `docker://${served.host}/fixtures/app:1`, { tag: 'v1' });
    hub = await startRegistry();
    hubImage = await makeTestImage({ format: 'docker', layers: [{ files: { 'etc/hub': 'from the hub\n' } }] });
    await pushRaw(hub.url, 'library/hubimage', 'latest', hubImage);
    mirror = await startStowageRegistry({ mirrorOf: hub.url });
    dockerd = await startDockerd({ insecureRegistries: [served.host], registryMirrors: [mirror.url] });
  }, 120_000);
  afterAll(async () => {
    await dockerd?.stop();
    await mirror?.stop();
    await hub?.stop();
    await served?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('docker pull from the server, with the digest the server holds', async () => {
    const out = (await dockerd.docker(['pull', `${served.host}/fixtures/app:1`])).stdout.toString();
    expect(out).toContain(`Digest: ${image.manifest.digest}`);
    const ids = (await dockerd.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', `${served.host}/fixtures/app:1`])).stdout.toString();
    expect(ids).toContain(image.manifest.digest);
  });

  it('docker pull of a Docker Hub name goes through the server as registry mirror', async () => {
    const out = (await dockerd.docker(['pull', 'hubimage'])).stdout.toString();
    expect(out).toContain(`Digest: ${hubImage.manifest.digest}`);
    expect(mirror.log.some((l) => l.includes('/v2/library/hubimage/manifests/latest'))).toBe(true);
    await mirror.server.settled();
    expect((await mirror.store.resolveImage(`${hub.host}/library/hubimage:latest`)).target.digest).toBe(hubImage.manifest.digest);
  });
});
