import { InvalidArgumentError } from '../../errors/index.js';
import { PLATFORM_OPTION, type CommandSpec } from '../command.js';
import { ProgressDisplay } from '../progress.js';
import type { RegistryAccess } from '../../images/index.js';

export const pull: CommandSpec = {
  name: 'pull',
  aliases: ['image pull'],
  usage: '[OPTIONS] NAME[:TAG|@DIGEST]',
  summary: 'Download an image from a registry',
  options: [
    { name: 'all-tags', short: 'a', type: 'bool', help: 'Download all tagged images in the repository' },
    { name: 'all-platforms', type: 'bool', help: 'Download every platform of a multi-platform image' },
    { ...PLATFORM_OPTION, help: 'Set platform if server is multi-platform capable' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Suppress verbose output' },
  ],
  args: { min: 1 },
  async run(ctx, p) {
    const name = p.args[0]!;
    // Loaded here, not at start-up: `stowage version` and `--help` need none of it.
    const { parseNormalizedNamed, referenceString } = await import('../../oci/index.js');
    const ref = parseNormalizedNamed(name);
    const allTags = p.bool('all-tags');
    if (allTags && (ref.tag !== undefined || ref.digest !== undefined)) {
      throw new InvalidArgumentError('tag can\'t be used with --all-tags/-a');
    }
    const quiet = p.bool('quiet');
    if (!allTags && ref.tag === undefined && ref.digest === undefined && !quiet) ctx.io.stdout.write('Using default tag: latest\n');
    const store: RegistryAccess = await ctx.store();
    const display = quiet ? undefined : new ProgressDisplay(ctx.io.stdout);
    const result = await store.pull(name, {
      platform: p.string('platform'),
      all: p.bool('all-platforms'),
      allTags,
      signal: ctx.signal,
      onProgress: display ? (m) => display.write(m) : undefined,
    });
    // docker prints the reference it pulled: for --all-tags the repository name alone.
    ctx.io.stdout.write(`${allTags ? referenceString({ domain: ref.domain, path: ref.path }) : result.ref}\n`);
  },
};
