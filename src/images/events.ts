import type { StoredEvent, EventAction } from '../metadata/index.js';
import { parseAnyReference, familiarString, tagNameOnly } from '../oci/index.js';
import type { EventMessage } from './api-types.js';
import type { Ctx } from './context.js';
import { FilterArgs, parseTimestamp } from './filters.js';
import type { EventsOptions } from './types.js';

/** Appends an image event to the store's log (docker's attributes: the image labels plus `name`). */
export function emitImageEvent(ctx: Ctx, action: EventAction, id: string, name: string, labels: Record<string, string> = {}): void {
  try {
    ctx.md.events.append({ type: 'image', action, id, attributes: { ...labels, name } });
  } catch { /* an event that cannot be written never fails the operation */ }
}

export function toEventMessage(e: StoredEvent): EventMessage {
  const ms = e.time.getTime();
  return {
    Type: e.type,
    Action: e.action,
    Actor: { ID: e.id, Attributes: { ...e.attributes } },
    scope: 'local',
    time: Math.floor(ms / 1000),
    timeNano: ms * 1e6,
  };
}

function toDate(v: Date | number | string | undefined, what: string): Date | undefined {
  if (v === undefined) return undefined;
  if (v instanceof Date) return v;
  if (typeof v === 'number') return new Date(v * 1000);
  return new Date(parseTimestamp(v, what));
}

function stripTag(s: string): string {
  try {
    const ref = parseAnyReference(s);
    if (ref.path === '') return s;
    return familiarString({ domain: ref.domain, path: ref.path });
  } catch { return s; }
}

/** docker's event filters: type, event (action), image (ID or name, tag optional), label. */
function matcher(filters: FilterArgs): (e: EventMessage) => boolean {
  filters.validate(['type', 'event', 'image', 'label', 'container']);
  const types = filters.get('type');
  const actions = filters.get('event');
  const images = filters.get('image');
  const containers = filters.get('container');
  return (e) => {
    if (types.length && !types.includes(e.Type)) return false;
    if (actions.length && !actions.includes(e.Action)) return false;
    if (images.length) {
      if (e.Type !== 'image') return false;
      const id = e.Actor.ID;
      const name = e.Actor.Attributes.name ?? '';
      const ok = images.some((want) => {
        const wantFamiliar = (() => { try { const r = parseAnyReference(want); return r.path === '' ? want : familiarString(tagNameOnly(r)); } catch { return want; } })();
        return [id, name, stripTag(id), stripTag(name)].some((c) => c === want || c === wantFamiliar || (c !== '' && c === stripTag(want)));
      });
      if (!ok) return false;
    }
    if (containers.length && (e.Type !== 'container' || !containers.includes(e.Actor.ID))) return false;
    if (!filters.labelsMatch(e.Actor.Attributes)) return false;
    return true;
  };
}

/** Replays the log (bounded by since/until), then follows new events while `follow`. */
export async function* streamEvents(ctx: Ctx, opts: EventsOptions = {}): AsyncGenerator<EventMessage> {
  const since = toDate(opts.since, 'since');
  const until = toDate(opts.until, 'until');
  const keep = matcher(new FilterArgs(opts.filters));
  const follow = opts.follow ?? opts.signal !== undefined;
  // The log's head before the replay: whatever is appended while the caller consumes the replay has a
  // higher number and is followed, never lost between the two.
  const head = follow ? ctx.md.events.lastSeq() : 0;
  let last = 0;
  // Like `docker events`: following without `since` shows only what happens from now on.
  const replay = since !== undefined || !follow;
  for (const e of ctx.md.events.list({ ...(since ? { since } : {}), ...(until ? { until } : {}) })) {
    last = Math.max(last, e.seq);
    if (!replay) continue;
    const m = toEventMessage(e);
    if (keep(m)) yield m;
  }
  if (!follow || (until && until.getTime() <= Date.now())) return;
  // Replayed from `since` (or up to `until`), the list may end before the head: follow from the head.
  last = Math.max(last, head);
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  if (until) timer = setTimeout(onAbort, Math.max(0, until.getTime() - Date.now()));
  try {
    for await (const e of ctx.md.events.follow({ after: last, signal: stop.signal })) {
      if (until && e.time > until) break;
      const m = toEventMessage(e);
      if (keep(m)) yield m;
    }
  } finally {
    if (timer) clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
