import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStowage, type ImageSource, type Stowage } from '../images/index.js';
import { startRegistryServer, type RegistryServer } from '../server/index.js';

export interface TestRegistryOptions {
  /** Images to serve, by `repository:tag` (`'team/app:1'`): built images, or sources from another store. */
  images?: Record<string, ImageSource>;
  /** Refuse pushes (default false: tests may push to it). */
  readOnly?: boolean;
  /** Require HTTP Basic credentials: pull with `{ credentials: { username, password } }`. */
  auth?: { username: string; password: string };
  /** Parent directory of the registry's private store (default the system's temp dir). */
  tmpdir?: string;
}

/** A throwaway registry: Stowage's registry server on a free loopback port, over a temporary store. */
export interface TestRegistry extends AsyncDisposable {
  /** `127.0.0.1:PORT`, the registry part of image references. */
  readonly address: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The store behind it: add images later with `store.addImage(image, { ref: registry.ref('x:1') })`. */
  readonly store: Stowage;
  /** The full reference of `repository:tag` on this registry (`127.0.0.1:PORT/team/app:1`). */
  ref(repositoryAndTag: string): string;
  /** Stops the server and removes its store. */
  close(): Promise<void>;
}

/**
 * Starts a registry on 127.0.0.1 (a free port, plain HTTP, no auth) serving the given images, with no
 * daemon and no network beyond loopback. Close it with `close()` or `await using`.
 *
 * ```ts
 * await using registry = await startTestRegistry({ images: { 'team/app:1': image } });
 * await store.pull(registry.ref('team/app:1'));
 * ```
 */
export async function startTestRegistry(opts: TestRegistryOptions = {}): Promise<TestRegistry> {
  const store = await openStowage({ temporary: true, ...(opts.tmpdir ? { root: opts.tmpdir } : {}) });
  let server: RegistryServer | undefined;
  let authDir: string | undefined;
  try {
    let htpasswd: string | undefined;
    if (opts.auth) {
      // `{SHA}` entries: the registry reads them as htpasswd does, and they cost nothing to make.
      authDir = fs.mkdtempSync(path.join(opts.tmpdir ?? os.tmpdir(), 'stowage-registry-auth-'));
      htpasswd = path.join(authDir, 'htpasswd');
      fs.writeFileSync(htpasswd, `${opts.auth.username}:{SHA}${createHash('sha1').update(opts.auth.password).digest('base64')}\n`, { mode: 0o600 });
    }
    server = await startRegistryServer(store, {
      listen: '127.0.0.1:0', ...(opts.readOnly ? { readOnly: true } : {}), ...(htpasswd ? { htpasswd } : {}),
    });
    const address = server.address;
    const ref = (name: string): string => `${address}/${name}`;
    for (const [name, image] of Object.entries(opts.images ?? {})) await store.addImage(image, { ref: ref(name) });
    const running = server;
    let closed: Promise<void> | undefined;
    const close = (): Promise<void> => (closed ??= (async () => {
      try { await running.close(); } finally {
        await store.close();
        if (authDir) fs.rmSync(authDir, { recursive: true, force: true });
      }
    })());
    return { address, url: server.url, store, ref, close, [Symbol.asyncDispose]: close };
  } catch (e) {
    await server?.close().catch(() => undefined);
    await store.close();
    if (authDir) fs.rmSync(authDir, { recursive: true, force: true });
    throw e;
  }
}
