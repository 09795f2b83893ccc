import type { CommandSpec } from '../command.js';
import type { ContainerLayers } from '../../images/index.js';

export const containerMounts: CommandSpec = {
  name: 'container mounts',
  usage: 'CONTAINER',
  summary: 'Print the mounts a runtime needs for the container root filesystem (JSON)',
  args: { min: 1 },
  async run(ctx, p) {
    const store: ContainerLayers = await ctx.store();
    ctx.io.stdout.write(JSON.stringify(await store.mounts(p.args[0]!), null, 4) + '\n');
  },
};
