import { InvalidArgumentError } from '../../errors/index.js';
import { PLATFORM_OPTION, type CommandSpec } from '../command.js';
import { ProgressDisplay } from '../progress.js';
import type { RegistryAccess } from '../../images/index.js';

export const push: CommandSpec = {
  name: 'push',
  aliases: ['image push'],
  usage: '[OPTIONS] NAME[:TAG]',
  summary: 'Upload an image to a registry',
  options: [
    { name: 'all-tags', short: 'a', type: 'bool', help: 'Push all tags of an image to the repository' },
    { ...PLATFORM_OPTION, help: 'Push a platform-specific manifest as a single-platform image to the registry.\nImage index won\'t be pushed.\n\'os[/arch[/variant]]\': Explicit platform (eg. linux/amd64)' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Suppress verbose output' },
  ],
  args: { min: 1 },
  async run(ctx, p) {
    const name = p.args[0]!;
    // Loaded here, not at start-up: `stowage version` and `--help` need none of it.
    const { parseNormalizedNamed, referenceString, tagNameOnly } = await import('../../oci/index.js');
    const ref = parseNormalizedNamed(name);
    if (ref.digest !== undefined) throw new InvalidArgumentError('cannot push a digest reference');
    const allTags = p.bool('all-tags');
    if (allTags && ref.tag !== undefined) throw new InvalidArgumentError('tag can\'t be used with --all-tags/-a');
    const quiet = p.bool('quiet');
    let target = name;
    if (!allTags && ref.tag === undefined) {
      if (!quiet) ctx.io.stdout.write('Using default tag: latest\n');
      target = referenceString(tagNameOnly(ref));
    }
    const store: RegistryAccess = await ctx.store();
    const display = quiet ? undefined : new ProgressDisplay(ctx.io.stdout);
    const results = await store.push(target, {
      platform: p.string('platform'),
      signal: ctx.signal,
      onProgress: display ? (m) => display.write(m) : undefined,
    });
    if (quiet) for (const r of results) ctx.io.stdout.write(`${r.ref}\n`);
  },
};
