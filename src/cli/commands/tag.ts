import type { CommandSpec } from '../command.js';
import type { LocalImages } from '../../images/index.js';

export const tag: CommandSpec = {
  name: 'tag',
  aliases: ['image tag'],
  usage: 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]',
  summary: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
  args: { min: 2 },
  async run(ctx, p) {
    const store: LocalImages = await ctx.store();
    await store.tag(p.args[0]!, p.args[1]!);
  },
};
