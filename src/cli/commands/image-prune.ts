import type { CommandSpec } from '../command.js';
import { parseFilterFlags } from '../filters.js';
import { humanSize4 } from '../humanize.js';
import { confirm } from '../prompt.js';
import type { LocalImages } from '../../images/index.js';

export const imagePrune: CommandSpec = {
  name: 'image prune',
  usage: '[OPTIONS]',
  summary: 'Remove unused images',
  options: [
    { name: 'all', short: 'a', type: 'bool', help: 'Remove all unused images, not just dangling ones' },
    { name: 'filter', type: 'list', value: 'filter', help: 'Provide filter values (e.g. "until=<timestamp>")' },
    { name: 'force', short: 'f', type: 'bool', help: 'Do not prompt for confirmation' },
  ],
  async run(ctx, p) {
    const all = p.bool('all');
    const filters: Record<string, string[]> = parseFilterFlags(p.list('filter'), '--filter');
    // -a means "every unused image": docker sends dangling=false.
    if (all) filters.dangling = ['false'];
    else filters.dangling ??= ['true'];
    if (!p.bool('force')) {
      const warning = all
        ? 'WARNING! This will remove all images without at least one container associated to them.'
        : 'WARNING! This will remove all dangling images.';
      if (!(await confirm(ctx, warning))) return 0;
    }
    const store: LocalImages = await ctx.store();
    const report = await store.prune({ filters, signal: ctx.signal });
    const deleted = report.ImagesDeleted ?? [];
    if (deleted.length > 0) {
      const lines = deleted.map((d) => (d.Untagged !== undefined ? `untagged: ${d.Untagged}` : `deleted: ${d.Deleted}`));
      ctx.io.stdout.write(`Deleted Images:\n${lines.join('\n')}\n\n`);
    }
    ctx.io.stdout.write(`Total reclaimed space: ${humanSize4(report.SpaceReclaimed)}\n`);
  },
};
