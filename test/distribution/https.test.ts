import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContentStore } from '../../src/content/index.js';
import { isStowageError } from '../../src/errors/index.js';
import { RegistryClient, isLoopback, nodeTransport } from '../../src/distribution/index.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeTestImage, pushRaw, type TestImage } from '../harness/images.js';
import { skipUnless } from '../harness/skip.js';

// A non-loopback address of this machine: registries there are HTTPS by default, as with docker.
const external = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

describe('HTTPS by default for non-loopback registries', () => {
  const it = skipUnless(!!external, 'this machine has no non-loopback IPv4 address');
  let tlsReg: Registry;
  let plainReg: Registry;
  let img: TestImage;
  beforeAll(async () => {
    if (!external) return;
    [tlsReg, plainReg] = await Promise.all([
      startRegistry({ tls: true, listenHost: external!, auth: 'basic' }),
      startRegistry({ listenHost: external! }),
    ]);
    img = await makeTestImage({ layers: [{ files: { 'tls.txt': 'over https\n' } }] });
    await pushRaw(plainReg.url, 'app', 'v1', img); // the TLS registry is seeded by our own push below
  });
  afterAll(async () => { await Promise.all([tlsReg?.stop(), plainReg?.stop()]); });

  it('speaks HTTPS to a registry on a non-loopback address, trusting a given CA, with Basic auth', async () => {
    expect(isLoopback(tlsReg.host)).toBe(false);
    const creds = { [tlsReg.host]: { username: tlsReg.username, password: tlsReg.password } };
    const client = new RegistryClient({ transport: nodeTransport({ ca: tlsReg.caPem! }), credentials: creds });
    expect(client.repository(`${tlsReg.host}/app`).scheme).toBe('https');
    const from = new RegistryClient({ insecureRegistries: [plainReg.host] });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-'));
    try {
      const store = await openContentStore(dir);
      await from.pull(`${plainReg.host}/app:v1`, store);
      await client.push(`${tlsReg.host}/app:v1`, store, img.manifest);
      expect((await client.resolve(`${tlsReg.host}/app:v1`)).descriptor.digest).toBe(img.manifest.digest);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an untrusted certificate; a plain-HTTP registry needs the insecure option', async () => {
    const untrusted = new RegistryClient({ credentials: {}, retry: { attempts: 1 } });
    const e = await untrusted.resolve(`${tlsReg.host}/app:v1`).catch((x: unknown) => x);
    expect(isStowageError(e, 'Unavailable')).toBe(true);
    expect((e as Error).message).toMatch(/certificate/);
    const secureOnly = new RegistryClient({ credentials: {}, retry: { attempts: 1 } });
    expect(isStowageError(await secureOnly.resolve(`${plainReg.host}/app:v1`).catch((x: unknown) => x), 'Unavailable')).toBe(true);
    const insecure = new RegistryClient({ credentials: {}, insecureRegistries: [plainReg.host] });
    expect((await insecure.resolve(`${plainReg.host}/app:v1`)).descriptor.digest).toBe(img.manifest.digest);
  });
});
