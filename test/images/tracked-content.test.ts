// The content conformance suite through the metadata-tracked content store (the store the image service
// writes through: labels in the database, every commit recorded, ingests and blobs held by the operation's
// lease), with and without a lease, as containerd runs its content suite on the local store and on the
// metadata-wrapped one. After each case the records must agree with the blobs and ingests on disk, and
// the store must check clean.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { openContentStore, type Info } from '../../src/content/index.js';
import { DB_FILE, checkStore, labelStoreFor, openMetadata, type Problem } from '../../src/metadata/index.js';
import { TrackedContent } from '../../src/images/tracked-content.js';
import { contentSuite, type StoreUnderTest } from '../content/suite.js';

async function trackedStore(withLease: boolean): Promise<StoreUnderTest> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-tracked-'));
  const md = openMetadata(root);
  const inner = await openContentStore(root, { labels: labelStoreFor(md) });
  const lease = withLease ? md.leases.create({ expiresInMs: 3_600_000 }).id : undefined;
  const store = new TrackedContent(inner, md, lease);
  return {
    store,
    async cleanup() {
      try {
        // Every blob on disk has its record (GC would otherwise see it as unreferenced garbage at once),
        // and, written under a lease, is held by it.
        const blobs: Info[] = [];
        await inner.walk((info) => { blobs.push(info); });
        const db = new Database(path.join(root, DB_FILE), { readonly: true });
        const recorded = new Set((db.prepare('SELECT digest FROM blobs').all() as { digest: string }[]).map((r) => r.digest));
        db.close();
        const held = lease === undefined ? [] : md.leases.listResources(lease);
        for (const b of blobs) {
          expect(recorded.has(b.digest), `record of ${b.digest}`).toBe(true);
          if (lease !== undefined) expect(held, `lease holds ${b.digest}`).toContainEqual({ type: 'content', id: b.digest });
        }
        // The lease holds the ingests that are still open, and only those: a committed or aborted
        // ingest leaves it (as containerd's metadata store removes its ingest lease reference), so
        // check finds nothing dangling.
        if (lease !== undefined) {
          const open = (await inner.listStatuses()).map((st) => st.ref).sort();
          expect(held.filter((r) => r.type === 'ingests').map((r) => r.id).sort(), 'ingests held by the lease').toEqual(open);
        }
        // A writer given the expected digest protects it under the lease before its bytes arrive (so GC
        // cannot take an old copy between 'already exists' and the record); a failed write leaves that
        // protection until the operation's lease ends. check calls it work in progress; nothing else may show.
        const pending = (p: Problem) => p.kind === 'lease-resource-dangling' && p.class === 'in-progress' && p.subject.includes('/content/');
        expect((await checkStore(md, inner)).problems.filter((p) => !pending(p))).toEqual([]);
      } finally {
        md.close();
        fs.rmSync(root, { recursive: true, force: true });
      }
    },
  };
}

contentSuite('metadata-tracked, no lease', () => trackedStore(false));
contentSuite('metadata-tracked, under a lease', () => trackedStore(true));
