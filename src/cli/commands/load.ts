import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { InvalidArgumentError, fromSystemError } from '../../errors/index.js';
import { PLATFORM_OPTION, type CommandSpec } from '../command.js';
import { ProgressDisplay } from '../progress.js';
import type { ImageArchives } from '../../images/index.js';

export const load: CommandSpec = {
  name: 'load',
  aliases: ['image load'],
  usage: '[OPTIONS]',
  summary: 'Load an image from a tar archive or STDIN',
  description: 'Reads docker-archives (old and new), OCI image layouts as tar, plain or gzip/zstd-compressed.',
  options: [
    { name: 'input', short: 'i', type: 'string', value: 'string', help: 'Read from tar archive file, instead of STDIN' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Suppress the load output' },
    { ...PLATFORM_OPTION, help: 'Load only the given platform. Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")' },
  ],
  async run(ctx, p) {
    const file = p.string('input');
    let input: Readable;
    if (file !== undefined) {
      try {
        const fh = await fs.promises.open(file, 'r');
        input = fh.createReadStream({ highWaterMark: 1 << 20 });
      } catch (e) { throw fromSystemError(e, `open ${file}`); }
    } else {
      if (ctx.io.stdin.isTTY) throw new InvalidArgumentError('requested load from stdin, but stdin is empty');
      input = ctx.io.stdin as Readable;
    }
    const quiet = p.bool('quiet');
    const store: ImageArchives = await ctx.store();
    const display = quiet || !ctx.io.stdout.isTTY ? undefined : new ProgressDisplay(ctx.io.stdout);
    try {
      await store.load(input, {
        quiet,
        platform: p.string('platform'),
        signal: ctx.signal,
        onProgress: (m) => {
          if (m.stream !== undefined) ctx.io.stdout.write(m.stream);
          else display?.write(m);
        },
      });
    } finally {
      input.destroy();
    }
  },
};
