import type { CheckStep, GcStep } from '../metadata/index.js';
import type { ProgressSink } from './progress.js';

/** What `Checking …` names for each phase of the metadata floor's check. */
const CHECK_PHASES = {
  database: 'database', blobs: 'blobs', references: 'references', leases: 'leases', snapshots: 'snapshot directories',
} as const;

/**
 * GC's steps as progress messages: `Marked for removal: 2 blobs, 1 snapshots, 0 images, 1 leases,
 * 0 ingests`, then one message per removal, its id the blob digest, `<snapshotter>/<key>`, lease id,
 * image name or ingest ref (`Removed blob` with the file's bytes as progressDetail, `Removed snapshot`,
 * `Removed snapshot directory`, `Removed image record`, `Removed lease`, `Removed ingest`).
 */
export function gcProgress(progress: ProgressSink): (step: GcStep) => void {
  return (s) => {
    if (s.step === 'marked') {
      const c = s.candidates;
      progress.status(`Marked for removal: ${c.blobs} blobs, ${c.snapshots} snapshots, ${c.images} images, ${c.leases} leases, ${c.ingests} ingests`);
    } else if (s.kind === 'blob' && s.size !== undefined) {
      progress.bytes('Removed blob', s.id, s.size, s.size, true);
    } else {
      const what = { blob: 'blob', snapshot: 'snapshot', 'snapshot-directory': 'snapshot directory', image: 'image record', lease: 'lease', ingest: 'ingest' }[s.kind];
      progress.message(`Removed ${what}`, s.id);
    }
  };
}

/**
 * The store check's steps as progress messages: `Checking database`, `Checking blobs`, … as each phase
 * starts, and `Verified` per blob hashed (id: its digest; progressDetail: blobs checked of those on disk).
 */
export function checkProgress(progress: ProgressSink): (step: CheckStep) => void {
  return (s) => {
    if (s.phase === 'blob') progress.bytes('Verified', s.digest, s.checked, s.total, true);
    else progress.status(`Checking ${CHECK_PHASES[s.phase]}`);
  };
}
