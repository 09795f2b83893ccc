/**
 * `GET /events`: the store's event log replayed from `since`, then followed live until `until` or until
 * the client disconnects. One JSON object per line, flushed as it happens.
 */
import type { EngineRequest } from './request.js';
import { filtersParam } from './request.js';
import type { Route } from './router.js';
import { eventFor } from './versions.js';

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
  r.res.writeHead(200, { 'Content-Type': 'application/json' });
  r.res.flushHeaders();
  try {
    for (;;) {
      const step = await first;
      if (step.done) break;
      r.res.write(JSON.stringify(eventFor(step.value, r.version)) + '\n');
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
