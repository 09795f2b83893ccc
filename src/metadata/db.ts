import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ResourceExhaustedError, StowageError, UnavailableError } from '../errors/index.js';
import { pidExists } from '../owners/index.js';
import { migrate } from './schema.js';

export const DB_FILE = 'metadata.db';
export const BUSY_TIMEOUT_MS = 10_000;
/** A GC tombstone older than this belongs to a collector that died; writers stop honouring it. */
export const TOMBSTONE_TTL_MS = 60 * 60_000;

let addon: { nativeBinding: string } | {} | undefined;

/**
 * Where better-sqlite3's compiled addon is, when it sits where its build puts it. Without it the
 * first connection has the `bindings` package search a dozen places for it and read a stack trace:
 * 8-10 ms of every command's start on the bench machine. Elsewhere (a different layout) it searches.
 */
function addonOption(): { nativeBinding: string } | {} {
  if (addon !== undefined) return addon;
  try {
    addon = { nativeBinding: createRequire(import.meta.url).resolve('better-sqlite3/build/Release/better_sqlite3.node') };
  } catch {
    addon = {};
  }
  return addon;
}

/**
 * One connection to `<root>/metadata.db` and the transaction discipline every store follows:
 * - writes run in BEGIN IMMEDIATE, so a transaction takes the write lock up front and never has to
 *   upgrade a read lock (the upgrade is what deadlocks into SQLITE_BUSY across processes);
 * - every ordinary write bumps the GC generation, so a collector can tell that its mark is stale;
 * - nothing does file I/O inside a transaction (better-sqlite3 is synchronous, so it cannot by accident).
 */
export class MetadataDB {
  readonly db: Database.Database;
  readonly file: string;
  private readonly tx: Database.Transaction<(fn: () => unknown) => unknown>;
  private readonly bump: Database.Statement;
  private readonly tombstone: Database.Statement;
  private readonly gcHolder: Database.Statement;

  constructor(root: string, opts: { migrate?: boolean } = {}) {
    fs.mkdirSync(root, { recursive: true });
    this.file = path.join(root, DB_FILE);
    this.db = new Database(this.file, { timeout: BUSY_TIMEOUT_MS, ...addonOption() });
    try {
      this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      this.db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode: a commit survives the death of any process (the multi-process case);
      // a power cut may lose the last commits but never corrupts. Writes that precede deleting files
      // (GC sweeps, snapshot removal) switch to FULL via `durably`, so a record never comes back after
      // a crash pointing at a file that is already gone.
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      if (opts.migrate !== false) migrate(this.db);
    } catch (err) {
      this.db.close();
      throw translate(err, root);
    }
    this.tx = this.db.transaction((fn: () => unknown) => fn());
    this.bump = this.db.prepare('UPDATE gc_state SET generation = generation + 1 WHERE id = 1');
    this.tombstone = this.db.prepare('SELECT created_at FROM blob_tombstones WHERE digest = ?');
    this.gcHolder = this.db.prepare('SELECT pid, host FROM gc_lock WHERE id = 1');
  }

  /** A write transaction (BEGIN IMMEDIATE) that also bumps the GC generation. */
  write<T>(fn: () => T): T {
    return this.run(() => this.immediate(() => { this.bump.run(); return fn(); }));
  }

  /** A write transaction that leaves the generation alone (GC's own deletes, event appends). */
  writeQuiet<T>(fn: () => T): T {
    return this.run(() => this.immediate(fn));
  }

  /** BEGIN IMMEDIATE (the write lock up front; SQLite's busy handler waits up to BUSY_TIMEOUT_MS). Nested calls become savepoints. */
  private immediate<T>(fn: () => T): T {
    return this.tx.immediate(fn) as T;
  }

  /** A consistent read snapshot: every statement inside sees the same state. */
  read<T>(fn: () => T): T {
    return this.run(() => this.tx.deferred(fn) as T);
  }

  /** Runs `fn` with synchronous=FULL: its commit is on disk before the caller goes on to delete files. */
  durably<T>(fn: () => T): T {
    // Inside a caller's batch the level cannot change; the batch's own commit decides (NORMAL).
    if (this.db.inTransaction) return fn();
    this.db.pragma('synchronous = FULL');
    try { return fn(); } finally { this.db.pragma('synchronous = NORMAL'); }
  }

  /**
   * Unavailable (retry) while a GC is deleting this blob's file: a record or lease entry made now
   * would outlive the bytes. Call inside the write transaction that records or protects the digest.
   */
  assertNotCollecting(digest: string): void {
    const t = this.tombstone.get(digest) as { created_at: number } | undefined;
    if (t && Date.now() - t.created_at < TOMBSTONE_TTL_MS && this.collectorMayBeRunning()) {
      throw new UnavailableError(`blob ${digest} is being garbage collected; write it again`, { digest, retry: true });
    }
  }

  /**
   * Whether the GC lock's holder may still be deleting files. A collector killed mid-sweep leaves its
   * tombstones standing; nobody deletes anything for them until the next collector, which re-judges
   * every inherited tombstone against a fresh mark (and the generation counter that this write
   * bumps), so writers need not wait for it. A holder on another host, or one whose liveness cannot
   * be told, counts as running.
   */
  private collectorMayBeRunning(): boolean {
    const row = this.gcHolder.get() as { pid: number; host: string } | undefined;
    if (!row) return false;
    if (row.host !== os.hostname() || row.pid === process.pid) return true;
    return pidExists(row.pid);
  }

  generation(): number {
    return (this.db.prepare('SELECT generation FROM gc_state WHERE id = 1').get() as { generation: number }).generation;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private run<T>(fn: () => T): T {
    try { return fn(); } catch (err) { throw translate(err, path.dirname(this.file)); }
  }
}

/**
 * SQLite errors become the store's error family; our own errors pass through. `dir` is where the
 * database lives: an I/O error there while its file system is full is a full disk too (SQLite says
 * SQLITE_IOERR_SHMSIZE when it cannot grow its shared-memory file, as opening a store on a full
 * disk does, and SQLITE_FULL only for the database and its WAL).
 */
export function translate(err: unknown, dir?: string): unknown {
  if (err instanceof StowageError) return err;
  const code = (err as { code?: string })?.code;
  if (typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) {
    return new UnavailableError(`metadata database is busy: ${(err as Error).message}`, { sqlite: code }, { cause: err });
  }
  if (code === 'SQLITE_FULL' || (code?.startsWith('SQLITE_IOERR') && dir !== undefined && fileSystemFull(dir))) {
    // The same class as the content store's ENOSPC.
    return new ResourceExhaustedError(`metadata database: no space left on device (${(err as Error).message})`, { sqlite: code }, { cause: err });
  }
  if (typeof code === 'string' && code.startsWith('SQLITE_')) {
    return new StowageError('Unknown', `metadata database: ${(err as Error).message}`, { sqlite: code }, { cause: err });
  }
  return err;
}

/** Less than 1 MiB left for us (root may use the reserved blocks) on the file system of `dir`. */
function fileSystemFull(dir: string): boolean {
  try {
    const st = fs.statfsSync(dir);
    const free = process.geteuid?.() === 0 ? st.bfree : st.bavail;
    return free * st.bsize < 1 << 20;
  } catch {
    return false;
  }
}
