import { isStowageError } from '../../errors/index.js';
import type { CommandSpec } from '../command.js';
import { reportError } from '../report.js';
import type { LocalImages } from '../../images/index.js';

export const rmi: CommandSpec = {
  name: 'rmi',
  aliases: ['image rm', 'image remove'],
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  summary: 'Remove one or more images',
  options: [
    { name: 'force', short: 'f', type: 'bool', help: 'Force removal of the image' },
    { name: 'no-prune', type: 'bool', help: 'Do not delete untagged parents' },
    { name: 'platform', type: 'list', value: 'strings', help: 'Remove only the given platform variant.\nFormatted as "os[/arch[/variant]]" (e.g., "linux/amd64")' },
  ],
  args: { min: 1, max: Infinity },
  async run(ctx, p) {
    const store: LocalImages = await ctx.store();
    const platforms = p.list('platform').flatMap((v) => v.split(',')).filter((v) => v !== '');
    let failed = false;
    // Each name on its own, as docker does: one failure does not stop the others.
    for (const name of p.args) {
      try {
        const removed = await store.delete(name, {
          force: p.bool('force'),
          pruneChildren: !p.bool('no-prune'),
          platforms: platforms.length > 0 ? platforms : undefined,
        });
        ctx.io.stdout.write(removed.map((r) => (r.Untagged !== undefined ? `Untagged: ${r.Untagged}\n` : `Deleted: ${r.Deleted}\n`)).join(''));
      } catch (err) {
        // docker: with --force, a name that is already gone is still reported, but does not fail the command.
        if (!(p.bool('force') && isStowageError(err, 'NotFound'))) failed = true;
        reportError(ctx, err);
      }
    }
    return failed ? 1 : 0;
  },
};
