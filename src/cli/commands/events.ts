import type { EventMessage, StoreMaintenance } from '../../images/index.js';
import type { CommandSpec } from '../command.js';
import { FILTER_OPTION, parseFilterFlags } from '../filters.js';
import { parseTemplate } from '../template.js';

/** RFC3339 with nanoseconds always printed (docker's RFC3339NanoFixed), in UTC. */
export function rfc3339NanoFixed(timeNano: number | bigint): string {
  const ns = BigInt(timeNano);
  const ms = Number(ns / 1_000_000n);
  const frac = String(ns % 1_000_000_000n).padStart(9, '0');
  return `${new Date(ms).toISOString().slice(0, 19)}.${frac}Z`;
}

/** docker's default event line: `<time> image pull alpine:latest (name=alpine)`. */
export function eventLine(e: EventMessage): string {
  let s = e.timeNano ? `${rfc3339NanoFixed(e.timeNano)} ` : e.time ? `${rfc3339NanoFixed(BigInt(e.time) * 1_000_000_000n)} ` : '';
  s += `${e.Type} ${e.Action} ${e.Actor.ID}`;
  const keys = Object.keys(e.Actor.Attributes).sort();
  if (keys.length > 0) s += ` (${keys.map((k) => `${k}=${e.Actor.Attributes[k]}`).join(', ')})`;
  return s;
}

export const events: CommandSpec = {
  name: 'events',
  aliases: ['system events'],
  usage: '[OPTIONS]',
  summary: 'Get real time events from the store',
  description: 'Without --since, only new events are shown, until Ctrl-C; with --since, recorded events are replayed first.\nWith --until, the command ends when that time is reached.',
  options: [
    FILTER_OPTION,
    { name: 'format', type: 'string', value: 'string', help: "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template" },
    { name: 'since', type: 'string', value: 'string', help: 'Show all events created since timestamp' },
    { name: 'until', type: 'string', value: 'string', help: 'Stream events until this timestamp' },
  ],
  async run(ctx, p) {
    const store: StoreMaintenance = await ctx.store();
    const format = p.string('format');
    const template = format && format !== 'json' ? parseTemplate(format) : undefined;
    const until = p.string('until');
    // Like docker: no --since means "from now on".
    const sinceOpt = p.string('since') ?? new Date();
    const stream = store.events({
      since: sinceOpt,
      until,
      filters: parseFilterFlags(p.list('filter')),
      signal: ctx.signal,
      follow: true,
    });
    try {
      for await (const e of stream) {
        if (format === 'json') ctx.io.stdout.write(JSON.stringify(e) + '\n');
        else if (template) ctx.io.stdout.write(template.execute(e) + '\n');
        else ctx.io.stdout.write(eventLine(e) + '\n');
      }
    } catch (err) {
      // Ctrl-C is the normal way to stop following.
      if (!ctx.signal.aborted) throw err;
    }
  },
};
