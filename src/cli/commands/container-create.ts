import { PLATFORM_OPTION, type CommandSpec } from '../command.js';
import type { ContainerLayers } from '../../images/index.js';

export const containerCreate: CommandSpec = {
  name: 'container create',
  usage: '[OPTIONS] IMAGE',
  summary: 'Create a working container: a writable layer on top of an image',
  options: [
    { name: 'name', type: 'string', value: 'string', help: 'Assign a name to the container' },
    PLATFORM_OPTION,
  ],
  args: { min: 1 },
  async run(ctx, p) {
    const store: ContainerLayers = await ctx.store();
    const layer = await store.createLayer(undefined, p.args[0]!, { name: p.string('name'), platform: p.string('platform'), signal: ctx.signal });
    ctx.io.stdout.write(`${layer.id}\n`);
  },
};
