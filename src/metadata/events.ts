import { setTimeout as sleep } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import { InvalidArgumentError } from '../errors/index.js';
import type { MetadataDB } from './db.js';
import { validateLabels } from './labels.js';
import type { EventLog, StoredEvent } from './types.js';

interface Row { seq: number; time: number; type: StoredEvent['type']; action: StoredEvent['action']; id: string; attributes: string }

const ACTIONS = new Set(['pull', 'push', 'tag', 'untag', 'delete', 'import', 'load', 'save', 'prune', 'create', 'commit']);

/** An append-only event table; followers poll it, so they see events of every process on the root. */
export class Events implements EventLog {
  private readonly insert: Database.Statement;
  private readonly after: Database.Statement;

  constructor(private readonly m: MetadataDB) {
    const db = m.db;
    this.insert = db.prepare('INSERT INTO events (time, type, action, id, attributes) VALUES (?, ?, ?, ?, ?)');
    this.after = db.prepare(`SELECT * FROM events WHERE seq > ? AND time >= ? AND time <= ? ORDER BY seq LIMIT ?`);
  }

  append(e: Omit<StoredEvent, 'seq' | 'time'> & { time?: Date }): StoredEvent {
    if (e.type !== 'image' && e.type !== 'container') throw new InvalidArgumentError(`invalid event type ${JSON.stringify(e.type)}`);
    if (!ACTIONS.has(e.action)) throw new InvalidArgumentError(`invalid event action ${JSON.stringify(e.action)}`);
    validateLabels(e.attributes);
    const time = (e.time ?? new Date()).getTime();
    const attributes = JSON.stringify(e.attributes ?? {});
    // Events add no references, so they leave the GC generation alone.
    const seq = this.m.writeQuiet(() => Number(this.insert.run(time, e.type, e.action, e.id, attributes).lastInsertRowid));
    return { seq, time: new Date(time), type: e.type, action: e.action, id: e.id, attributes: { ...(e.attributes ?? {}) } };
  }

  list(opts: { after?: number; since?: Date; until?: Date; limit?: number } = {}): StoredEvent[] {
    const rows = this.m.read(() => this.after.all(
      opts.after ?? 0, opts.since?.getTime() ?? -8.64e15, opts.until?.getTime() ?? 8.64e15, opts.limit ?? -1) as Row[]);
    return rows.map(toEvent);
  }

  async *follow(opts: { after?: number; signal: AbortSignal; pollMs?: number }): AsyncIterable<StoredEvent> {
    let after = opts.after ?? 0;
    const pollMs = opts.pollMs ?? 200;
    while (!opts.signal.aborted) {
      const batch = this.list({ after, limit: 1000 });
      for (const e of batch) {
        after = e.seq;
        yield e;
        if (opts.signal.aborted) return;
      }
      if (batch.length === 1000) continue; // more waiting: no sleep
      try { await sleep(pollMs, undefined, { signal: opts.signal }); } catch { return; }
    }
  }

  /** The newest sequence number (0 when empty): `follow({after: lastSeq()})` sees only new events. */
  lastSeq(): number {
    return this.m.read(() => (this.m.db.prepare('SELECT COALESCE(MAX(seq), 0) AS s FROM events').get() as { s: number }).s);
  }
}

function toEvent(r: Row): StoredEvent {
  return { seq: r.seq, time: new Date(r.time), type: r.type, action: r.action, id: r.id, attributes: JSON.parse(r.attributes) as Record<string, string> };
}
