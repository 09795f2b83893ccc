/**
 * A stowage registry server over a fresh private store, in this process, for tests and benches:
 *
 *   const reg = await startStowageRegistry();          // reg.host '127.0.0.1:PORT', reg.url, reg.store
 *   ...
 *   await reg.stop();                                   // graceful stop, store closed, directory removed
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStowage, type Stowage } from '../../src/images/index.js';
import { startRegistryServer, type RegistryServer, type RegistryServerOptions } from '../../src/server/index.js';

export interface StowageRegistry {
  host: string;
  url: string;
  server: RegistryServer;
  store: Stowage;
  root: string;
  /** Request log lines so far. */
  log: string[];
  stop(): Promise<void>;
}

export async function startStowageRegistry(opts: RegistryServerOptions & { root?: string } = {}): Promise<StowageRegistry> {
  const dir = opts.root ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-served-'));
  const root = opts.root ?? path.join(dir!, 'store');
  const store = await openStowage({ root });
  const log: string[] = [];
  const { root: _root, ...serverOpts } = opts;
  const server = await startRegistryServer(store, { ...serverOpts, log: (l) => { log.push(l); opts.log?.(l); } });
  return {
    host: server.address, url: server.url, server, store, root, log,
    async stop() {
      await server.close();
      await store.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
