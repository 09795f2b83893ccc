import type Database from 'better-sqlite3';
import { FailedPreconditionError } from '../errors/index.js';

/**
 * Ordered schema migrations. Each runs once, inside the same IMMEDIATE transaction that bumps
 * `schema_version`, so two processes opening a fresh root at once cannot both migrate.
 * Never edit a released step: append a new one.
 */
export interface Migration { version: number; description: string; up(db: Database.Database): void }

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'images, blobs, leases, snapshots, containers, events',
    up(db) {
      db.exec(`
        CREATE TABLE images (
          name TEXT PRIMARY KEY,
          target TEXT NOT NULL,              -- the whole descriptor as JSON (annotations, platform...)
          target_digest TEXT NOT NULL,
          target_media_type TEXT NOT NULL,
          target_size INTEGER NOT NULL,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL
        );
        CREATE INDEX images_by_target ON images(target_digest);
        CREATE TABLE image_labels (
          owner TEXT NOT NULL REFERENCES images(name) ON DELETE CASCADE,
          key TEXT NOT NULL, value TEXT NOT NULL,
          PRIMARY KEY (owner, key)
        ) WITHOUT ROWID;

        CREATE TABLE blobs (
          digest TEXT PRIMARY KEY,
          size INTEGER,                      -- NULL until the blob is recorded (labels may come first)
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE blob_labels (
          owner TEXT NOT NULL REFERENCES blobs(digest) ON DELETE CASCADE,
          key TEXT NOT NULL, value TEXT NOT NULL,
          PRIMARY KEY (owner, key)
        ) WITHOUT ROWID;

        CREATE TABLE leases (
          id TEXT PRIMARY KEY,
          created_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE lease_labels (
          owner TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
          key TEXT NOT NULL, value TEXT NOT NULL,
          PRIMARY KEY (owner, key)
        ) WITHOUT ROWID;
        CREATE TABLE lease_resources (
          lease TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
          type TEXT NOT NULL,                -- content | ingests | images | snapshots/<snapshotter>
          id TEXT NOT NULL,
          PRIMARY KEY (lease, type, id)
        ) WITHOUT ROWID;
        CREATE INDEX lease_resources_by_target ON lease_resources(type, id);

        CREATE TABLE snapshots (
          id INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: it names the directory on disk
          snapshotter TEXT NOT NULL,
          key TEXT NOT NULL,
          kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
          parent_id INTEGER REFERENCES snapshots(id) ON DELETE RESTRICT,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          UNIQUE (snapshotter, key)
        );
        CREATE INDEX snapshots_by_parent ON snapshots(parent_id);
        CREATE TABLE snapshot_labels (
          owner INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
          key TEXT NOT NULL, value TEXT NOT NULL,
          PRIMARY KEY (owner, key)
        ) WITHOUT ROWID;

        CREATE TABLE containers (
          id TEXT PRIMARY KEY,
          image TEXT NOT NULL,
          snapshotter TEXT NOT NULL,
          snapshot_key TEXT NOT NULL,
          created_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE container_labels (
          owner TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
          key TEXT NOT NULL, value TEXT NOT NULL,
          PRIMARY KEY (owner, key)
        ) WITHOUT ROWID;

        CREATE TABLE events (
          seq INTEGER PRIMARY KEY AUTOINCREMENT,
          time INTEGER NOT NULL,
          type TEXT NOT NULL,
          action TEXT NOT NULL,
          id TEXT NOT NULL,
          attributes TEXT NOT NULL
        );
        CREATE INDEX events_by_time ON events(time);
      `);
    },
  },
  {
    version: 2,
    description: 'GC generation counter and blob tombstones',
    up(db) {
      db.exec(`
        -- Bumped by every metadata mutation; GC compares it to detect writes since its mark.
        CREATE TABLE gc_state (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          generation INTEGER NOT NULL
        );
        INSERT INTO gc_state (id, generation) VALUES (1, 0);
        -- A blob whose record GC removed and whose file it is about to delete: recording it again
        -- must wait until the file is gone, or the new record would point at nothing.
        CREATE TABLE blob_tombstones (
          digest TEXT PRIMARY KEY,
          created_at INTEGER NOT NULL
        ) WITHOUT ROWID;
      `);
    },
  },
  {
    version: 3,
    description: 'GC lock: one collector per root at a time',
    up(db) {
      db.exec(`
        CREATE TABLE gc_lock (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          owner TEXT NOT NULL,          -- random token of the holder
          pid INTEGER NOT NULL,
          host TEXT NOT NULL,
          acquired_at INTEGER NOT NULL
        );
      `);
    },
  },
  {
    version: 4,
    description: 'lease owners: the process that holds a lease (pid, its start time, host)',
    up(db) {
      db.exec(`
        -- NULL for leases without an owner (library users): those live until containerd.io/gc.expire.
        ALTER TABLE leases ADD COLUMN owner_pid INTEGER;
        ALTER TABLE leases ADD COLUMN owner_start TEXT;
        ALTER TABLE leases ADD COLUMN owner_host TEXT;
      `);
    },
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export function currentVersion(db: Database.Database): number {
  const has = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`).get();
  if (!has) return 0;
  const row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
  return row?.version ?? 0;
}

/** Brings the schema up to `target` (default: the newest). Safe to call from several processes at once. */
export function migrate(db: Database.Database, target = SCHEMA_VERSION): number {
  // Up to date: nothing is written, so a store on a full disk still opens (to be checked, or cleaned).
  const now = currentVersion(db);
  if (now === Math.min(target, SCHEMA_VERSION)) return now;
  const run = db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const from = currentVersion(db);
    if (from > SCHEMA_VERSION) {
      throw new FailedPreconditionError(
        `metadata database schema v${from} is newer than this stowage understands (v${SCHEMA_VERSION})`,
        { version: from, supported: SCHEMA_VERSION });
    }
    for (const m of MIGRATIONS) if (m.version > from && m.version <= target) m.up(db);
    const to = Math.max(from, Math.min(target, SCHEMA_VERSION));
    if (to === from && from > 0) return to;
    db.prepare('DELETE FROM schema_version').run();
    db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(to);
    return to;
  });
  return run.immediate();
}
