import path from 'node:path';
import { PLATFORM_OPTION, type CommandSpec } from '../command.js';
import type { LocalImages } from '../../images/index.js';

export const checkout: CommandSpec = {
  name: 'checkout',
  bookkeepingOnly: true,
  usage: '[OPTIONS] IMAGE DIR',
  summary: "Write an image's merged root filesystem into a plain directory",
  description: 'Like `umoci unpack` or `crane export`: whiteouts and opaque directories are applied;\nDIR must be empty or absent.',
  options: [
    PLATFORM_OPTION,
    { name: 'hardlink', type: 'bool', help: 'Hard-link regular files to the store instead of copying them (fast; the tree must\nthen be treated as read-only: an in-place write would change the stored layer)' },
  ],
  args: { min: 2 },
  async run(ctx, p) {
    // A big checkout's threads take longer to start than the store takes to open: start them first.
    (await import('../../snapshots/index.js')).prestartCheckoutThreads();
    const store: LocalImages = await ctx.store();
    await store.checkout(p.args[0]!, path.resolve(p.args[1]!), { platform: p.string('platform'), signal: ctx.signal, link: p.bool('hardlink') ? 'hardlink' : 'copy' });
  },
};
