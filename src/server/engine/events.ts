/**
 * `GET /events`: the store's event log replayed from `since`, then followed live until `until` or until
 * the client disconnects. One JSON object per line, flushed as it happens.
 */
import type { EngineRequest } from './request.js';
import { filtersParam } from './request.js';
import type { Route } from './router.js';
import { eventFor } from './versions.js';

/** The stream types dockerd offers for events, by the client's Accept (plain `application/json` otherwise). */
const STREAM_TYPES = ['application/jsonl', 'application/x-ndjson', 'application/json-seq'];

export function streamType(accept: string | undefined): string {
  const wanted = (accept ?? '').split(',')
    .map((part) => { const [type = '', ...params] = part.trim().toLowerCase().split(';'); const q = params.map((x) => x.trim()).find((x) => x.startsWith('q=')); return { type: type.trim(), q: q ? Number(q.slice(2)) : 1 }; })
    .filter((w) => w.q > 0 && STREAM_TYPES.includes(w.type))
    .sort((a, b) => b.q - a.q);
  return wanted[0]?.type ?? 'application/json';
}

async function events(r: EngineRequest): Promise<void> {
  const since = r.query.get('since') || undefined;
  const until = r.query.get('until') || undefined;
  const signal = AbortSignal.any([r.signal, r.stopping]);
  const iter = r.store.events({
    ...(since ? { since } : {}), ...(until ? { until } : {}), filters: filtersParam(r.query), signal, follow: true,
  })[Symbol.asyncIterator]();
  // The service checks filters and timestamps on its first step, synchronously: a bad one rejects `first`
  // before the race is decided, so it becomes an HTTP 400 instead of a broken stream.
  let first = iter.next();
  await Promise.race([first, Promise.resolve()]);
  const type = streamType(r.req.headers.accept);
  r.res.writeHead(200, { 'Content-Type': type });
  r.res.flushHeaders();
  // JSON text sequences (RFC 7464) put a record separator before each record; the other types are plain lines.
  const prefix = type === 'application/json-seq' ? '\x1e' : '';
  try {
    for (;;) {
      const step = await first;
      if (step.done) break;
      r.res.write(prefix + JSON.stringify(eventFor(step.value, r.version)) + '\n');
      first = iter.next();
    }
  } catch (e) {
    if (!signal.aborted) throw e;
  } finally {
    await iter.return?.(undefined);
  }
  r.res.end();
}

export const EVENT_ROUTES: Route[] = [{ method: 'GET', path: /^\/events$/, handle: events }];
