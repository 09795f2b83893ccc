// A server process for tests that need their own environment (DOCKER_CONFIG): serve-child.ts ROOT HOST.
import { openStowage } from '../../src/images/index.js';
import { startEngineServer } from '../../src/server/index.js';

const store = await openStowage({ root: process.argv[2]! });
const server = await startEngineServer(store, { host: process.argv[3]! });
process.stdout.write(`${server.address}\n`);
process.once('SIGTERM', () => { void server.close().then(() => store.close()).then(() => process.exit(0)); });
