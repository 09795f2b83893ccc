import type { CommandSpec } from '../command.js';
import type { ContainerLayers } from '../../images/index.js';

export const imageSquash: CommandSpec = {
  name: 'image squash',
  usage: '[OPTIONS] IMAGE',
  summary: 'Merge the layers of an image above a parent into one, as a new image',
  description: 'The image itself is left as it is; its history is kept, with the merged steps marked as empty layers.',
  options: [
    { name: 'parent', type: 'string', value: 'string', help: 'Keep the layers of this image (an ancestor) and squash only the ones above it' },
    { name: 'tag', short: 't', type: 'string', value: 'string', help: 'Name for the new image in the "name:tag" format' },
  ],
  args: { min: 1 },
  async run(ctx, p) {
    const store: ContainerLayers = await ctx.store();
    const parent = p.string('parent');
    const tag = p.string('tag');
    const { id } = await store.squash(p.args[0]!, { ...(parent ? { parent } : {}), ...(tag ? { ref: tag } : {}), signal: ctx.signal });
    ctx.io.stdout.write(`${id}\n`);
  },
};
