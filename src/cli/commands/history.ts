import { FORMAT_OPTION, PLATFORM_OPTION, type CommandSpec } from '../command.js';
import { ellipsis, humanSize, shortId, since } from '../humanize.js';
import { printList } from '../output.js';
import type { LocalImages } from '../../images/index.js';

export const history: CommandSpec = {
  name: 'history',
  aliases: ['image history'],
  usage: '[OPTIONS] IMAGE',
  summary: 'Show the history of an image',
  options: [
    FORMAT_OPTION,
    { name: 'human', short: 'H', type: 'bool', help: 'Print sizes and dates in human readable format (default true)' },
    { name: 'no-trunc', type: 'bool', help: "Don't truncate output" },
    { ...PLATFORM_OPTION, help: 'Show history for the given platform. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Only show image IDs' },
  ],
  args: { min: 1 },
  async run(ctx, p) {
    const store: LocalImages = await ctx.store();
    const items = await store.history(p.args[0]!, { platform: p.string('platform') });
    const trunc = !p.bool('no-trunc');
    const human = p.has('human') ? p.bool('human') : true;
    const rows = items.map((h) => {
      const createdBy = h.CreatedBy.replaceAll('\t', ' ');
      return {
        ID: trunc && h.Id.includes(':') ? shortId(h.Id) : h.Id,
        CreatedSince: human ? since(h.Created) : new Date(h.Created * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        CreatedAt: new Date(h.Created * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        CreatedBy: trunc ? ellipsis(createdBy, 45) : createdBy,
        Size: human ? humanSize(h.Size) : String(h.Size),
        Comment: h.Comment,
      };
    });
    let format = p.string('format');
    if (p.bool('quiet')) format = '{{.ID}}';
    printList(ctx.io.stdout, format, {
      defaultTemplate: 'table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}',
      headers: { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' },
      rows,
      json: items,
    });
  },
};
