import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { InvalidArgumentError, fromSystemError } from '../../errors/index.js';
import type { CommandSpec, TextOutput } from '../command.js';
import type { ImageArchives } from '../../images/index.js';

/** The terminal's stdout as a byte stream: a Node stream is used as is, anything else gets the bytes as text. */
export function binaryOutput(out: TextOutput): Writable {
  if (out instanceof Writable) return out;
  return new Writable({ write(chunk: Buffer, _e, cb) { out.write(chunk.toString('latin1')); cb(); } });
}

export const save: CommandSpec = {
  name: 'save',
  bookkeepingOnly: true,
  aliases: ['image save'],
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  summary: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
  description: 'The archive is both an OCI image layout and a docker-archive, as docker 25+ writes it.',
  options: [
    { name: 'output', short: 'o', type: 'string', value: 'string', help: 'Write to a file, instead of STDOUT' },
    { name: 'platform', type: 'list', value: 'string', help: 'Save only the given platform(s). Formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")' },
  ],
  args: { min: 1, max: Infinity },
  async run(ctx, p) {
    const file = p.string('output');
    const platforms = p.list('platform');
    const platform = platforms.length === 0 ? undefined : platforms.length === 1 ? platforms[0]! : platforms;
    if (file === undefined && ctx.io.stdout.isTTY) {
      throw new InvalidArgumentError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
    }
    const store: ImageArchives = await ctx.store();
    if (file === undefined) {
      await store.save(p.args, binaryOutput(ctx.io.stdout), { ...(platform ? { platform } : {}), signal: ctx.signal });
      return;
    }
    // Like docker: a temporary file beside the target, renamed into place once complete.
    const target = path.resolve(file);
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
    let out: fs.WriteStream;
    try { out = fs.createWriteStream(tmp, { flags: 'wx', mode: 0o644 }); await new Promise((res, rej) => out.once('open', res).once('error', rej)); } catch (e) {
      throw fromSystemError(e, `failed to save image: unable to create ${file}`);
    }
    try {
      await store.save(p.args, out, { ...(platform ? { platform } : {}), signal: ctx.signal });
      fs.renameSync(tmp, target);
    } catch (e) {
      out.destroy();
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  },
};
