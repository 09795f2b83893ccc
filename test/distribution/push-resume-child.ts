// A separate process that pushes an image with upload sessions saved under a state directory, for the
// parent test to SIGKILL part way through (as a killed `stowage push` would be).
// argv: storeRoot, uploadStateDir, reference, root descriptor JSON, chunkSize, monolithicThreshold
import { openContentStore } from '../../src/content/index.js';
import { RegistryClient } from '../../src/distribution/index.js';
import type { Descriptor } from '../../src/oci/index.js';

const [root, stateDir, reference, descJson, chunk, threshold] = process.argv.slice(2) as [string, string, string, string, string, string];
const store = await openContentStore(root);
const client = new RegistryClient({ chunkSize: Number(chunk), monolithicThreshold: Number(threshold), credentials: {} });
await client.push(reference, store, JSON.parse(descJson) as Descriptor, { uploadStateDir: stateDir });
process.stdout.write('finished without being killed\n');
