// A separate process that starts downloading a blob into a content store and kills itself (SIGKILL)
// half way, leaving a partial ingest and a held ref lock behind, as a crashed pull would.
// argv: storeRoot, reference host/repo, descriptor JSON
import { openContentStore } from '../../src/content/index.js';
import { RegistryClient, fetchBlobInto } from '../../src/distribution/index.js';
import type { Descriptor } from '../../src/oci/index.js';

const [root, repoRef, descJson] = process.argv.slice(2) as [string, string, string];
const desc = JSON.parse(descJson) as Descriptor;
const store = await openContentStore(root);
const client = new RegistryClient();
await fetchBlobInto(client, client.repository(repoRef), store, desc, {
  onProgress: (e) => { if (e.phase === 'downloading' && e.current >= desc.size / 2) process.kill(process.pid, 'SIGKILL'); },
});
process.stdout.write('finished without being killed\n');
