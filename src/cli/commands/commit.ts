import { CHANGE_OPTION, type CommandSpec } from '../command.js';
import type { ContainerLayers } from '../../images/index.js';

export const commit: CommandSpec = {
  name: 'commit',
  aliases: ['container commit'],
  usage: '[OPTIONS] CONTAINER [REPOSITORY[:TAG]]',
  summary: "Create a new image from a working container's changes",
  options: [
    { name: 'author', short: 'a', type: 'string', value: 'string', help: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")' },
    CHANGE_OPTION,
    { name: 'message', short: 'm', type: 'string', value: 'string', help: 'Commit message' },
    { name: 'squash', type: 'bool', help: 'Merge the layers of the new image into one' },
  ],
  args: { min: 1, max: 2 },
  async run(ctx, p) {
    const store: ContainerLayers = await ctx.store();
    const author = p.string('author');
    const message = p.string('message');
    const { id } = await store.commit(p.args[0]!, {
      changes: p.list('change'),
      ...(author !== undefined ? { author } : {}),
      ...(message !== undefined ? { message } : {}),
      ...(p.args[1] ? { ref: p.args[1] } : {}),
      squash: p.bool('squash'),
      signal: ctx.signal,
    });
    ctx.io.stdout.write(`${id}\n`);
  },
};
