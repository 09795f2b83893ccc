import { InvalidArgumentError } from '../../errors/index.js';
import { FORMAT_OPTION, type CommandSpec } from '../command.js';
import { FILTER_OPTION, parseFilterFlags } from '../filters.js';
import { ellipsis } from '../humanize.js';
import { printList } from '../output.js';
import type { RegistryAccess } from '../../images/index.js';

/** `stowage search TERM`: docker's search, and for registries without it, a search of their catalog. */
export const search: CommandSpec = {
  name: 'search',
  usage: '[OPTIONS] TERM',
  summary: 'Search a registry for images',
  description: 'TERM may start with a registry (127.0.0.1:5000/app). Registries without docker\'s search API are\nsearched through their catalog (/v2/_catalog): every repository whose name contains the term.',
  options: [
    FILTER_OPTION,
    FORMAT_OPTION,
    { name: 'limit', type: 'string', value: 'int', help: 'Max number of search results (default 25)' },
    { name: 'no-trunc', type: 'bool', help: "Don't truncate output" },
  ],
  args: { min: 1, max: 1 },
  async run(ctx, p) {
    const limitText = p.string('limit');
    let limit: number | undefined;
    if (limitText !== undefined) {
      if (!/^-?\d+$/.test(limitText)) throw new InvalidArgumentError(`invalid argument "${limitText}" for "--limit" flag: strconv.ParseInt: parsing "${limitText}": invalid syntax`);
      limit = Number(limitText);
    }
    const store: RegistryAccess = await ctx.store();
    const results = await store.search(p.args[0]!, { filters: parseFilterFlags(p.list('filter')), ...(limit !== undefined ? { limit } : {}), signal: ctx.signal });
    const trunc = !p.bool('no-trunc');
    const rows = results.map((r) => {
      const description = r.description.replaceAll('\n', ' ').replaceAll('\r', ' ');
      return {
        Name: r.name,
        Description: trunc ? ellipsis(description, 45) : description,
        StarCount: String(r.star_count),
        IsOfficial: r.is_official ? '[OK]' : '',
        IsAutomated: r.is_automated ? '[OK]' : '',
      };
    });
    printList(ctx.io.stdout, p.string('format'), {
      defaultTemplate: 'table {{.Name}}\\t{{.Description}}\\t{{.StarCount}}\\t{{.IsOfficial}}',
      headers: { Name: 'NAME', Description: 'DESCRIPTION', StarCount: 'STARS', IsOfficial: 'OFFICIAL', IsAutomated: 'AUTOMATED' },
      rows,
      json: results,
    });
  },
};
