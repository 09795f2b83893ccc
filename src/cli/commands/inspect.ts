import type { InspectResponse, LocalImages } from '../../images/index.js';
import { PLATFORM_OPTION, type CommandSpec } from '../command.js';
import { reportError } from '../report.js';
import { parseTemplate } from '../template.js';

export const inspect: CommandSpec = {
  name: 'inspect',
  aliases: ['image inspect'],
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  summary: 'Display detailed information on one or more images',
  options: [
    { name: 'format', short: 'f', type: 'string', value: 'string', help: "Format output using a custom template:\n'json':             Print in JSON format (default)\n'TEMPLATE':         Print output using the given Go template" },
    { ...PLATFORM_OPTION, help: 'Inspect a specific platform of the multi-platform image.\n\'os[/arch[/variant]]\': Explicit platform (eg. linux/amd64)' },
  ],
  args: { min: 1, max: Infinity },
  async run(ctx, p) {
    const store: LocalImages = await ctx.store();
    const found: InspectResponse[] = [];
    let failed = false;
    for (const name of p.args) {
      try {
        found.push(await store.inspect(name, { platform: p.string('platform') }));
      } catch (err) {
        failed = true;
        reportError(ctx, err);
      }
    }
    const format = p.string('format');
    if (format === undefined || format === '' || format === 'json') {
      // docker prints the array (possibly empty) even when some names failed.
      ctx.io.stdout.write(JSON.stringify(found, null, 4) + '\n');
    } else {
      const t = parseTemplate(format);
      ctx.io.stdout.write(found.map((r) => t.execute(r) + '\n').join(''));
    }
    return failed ? 1 : 0;
  },
};
