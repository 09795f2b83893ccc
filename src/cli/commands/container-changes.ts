import type { CommandSpec } from '../command.js';
import type { ContainerLayers } from '../../images/index.js';

const KIND = ['C', 'A', 'D'] as const;

export const containerChanges: CommandSpec = {
  name: 'container changes',
  aliases: ['container diff'],
  usage: 'CONTAINER',
  summary: "Inspect changes to files or directories on a working container's filesystem",
  description: 'A = added, C = changed, D = deleted (as `docker diff`).',
  options: [{ name: 'format', type: 'string', value: 'string', help: "'json': print the Engine API FilesystemChange list" }],
  args: { min: 1 },
  async run(ctx, p) {
    const store: ContainerLayers = await ctx.store();
    const changes = await store.changes(p.args[0]!, { signal: ctx.signal });
    if (p.string('format') === 'json') { ctx.io.stdout.write(JSON.stringify(changes) + '\n'); return; }
    ctx.io.stdout.write(changes.map((c) => `${KIND[c.Kind]} ${c.Path}\n`).join(''));
  },
};
