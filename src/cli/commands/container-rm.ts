import type { CommandSpec } from '../command.js';
import { reportError } from '../report.js';
import type { ContainerLayers } from '../../images/index.js';

export const containerRm: CommandSpec = {
  name: 'container rm',
  aliases: ['container remove'],
  usage: 'CONTAINER [CONTAINER...]',
  summary: 'Remove one or more working containers (their writable layers)',
  args: { min: 1, max: Infinity },
  async run(ctx, p) {
    const store: ContainerLayers = await ctx.store();
    let failed = false;
    for (const id of p.args) {
      try {
        await store.releaseLayer(id);
        ctx.io.stdout.write(`${id}\n`);
      } catch (err) {
        failed = true;
        reportError(ctx, err);
      }
    }
    return failed ? 1 : 0;
  },
};
