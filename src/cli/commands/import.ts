import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { InvalidArgumentError } from '../../errors/index.js';
import { CHANGE_OPTION, PLATFORM_OPTION, type CommandSpec } from '../command.js';
import type { ImageArchives } from '../../images/index.js';

/** docker's source rules: `-` is stdin, a URL with a scheme is fetched, `host/path` gets `http://`, else a file. */
export function importSource(arg: string): 'stdin' | URL {
  if (arg === '-') return 'stdin';
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(arg)) return new URL(arg);
  if (fs.existsSync(arg)) return pathToFileURL(path.resolve(arg));
  if (/^[^/]+\.[^/]+\/./.test(arg)) return new URL(`http://${arg}`);
  return pathToFileURL(path.resolve(arg));
}

export const importCmd: CommandSpec = {
  name: 'import',
  aliases: ['image import'],
  usage: '[OPTIONS] file|URL|- [REPOSITORY[:TAG]]',
  summary: 'Import the contents from a tarball to create a filesystem image',
  options: [
    CHANGE_OPTION,
    { name: 'message', short: 'm', type: 'string', value: 'string', help: 'Set commit message for imported image' },
    PLATFORM_OPTION,
  ],
  args: { min: 1, max: 2 },
  async run(ctx, p) {
    const src = importSource(p.args[0]!);
    if (src === 'stdin' && ctx.io.stdin.isTTY) throw new InvalidArgumentError('requested import from stdin, but stdin is a terminal');
    const store: ImageArchives = await ctx.store();
    const source = src === 'stdin' ? (ctx.io.stdin as Readable) : src;
    const message = p.string('message');
    const { id } = await store.importImage(source, {
      changes: p.list('change'),
      ...(message !== undefined ? { message } : {}),
      ...(p.args[1] ? { ref: p.args[1] } : {}),
      ...(p.string('platform') ? { platform: p.string('platform')! } : {}),
      signal: ctx.signal,
    });
    ctx.io.stdout.write(`${id}\n`);
  },
};
