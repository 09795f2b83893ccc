import { InvalidArgumentError } from '../../errors/index.js';
import { PLATFORM_OPTION, type CommandSpec } from '../command.js';

/** `--build-arg K=V`; a bare `K` takes the value from the environment (docker's habit), or is ignored when unset. */
function buildArgs(list: string[], env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) {
    const i = a.indexOf('=');
    if (i === 0) throw new InvalidArgumentError(`invalid build argument ${JSON.stringify(a)}: empty name`);
    if (i > 0) out[a.slice(0, i)] = a.slice(i + 1);
    else if (env[a] !== undefined) out[a] = env[a]!;
  }
  return out;
}

/** `--label k=v` (a bare `k` is an empty label). */
function keyValues(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) {
    const i = a.indexOf('=');
    out[i < 0 ? a : a.slice(0, i)] = i < 0 ? '' : a.slice(i + 1);
  }
  return out;
}

export const build: CommandSpec = {
  name: 'build',
  aliases: ['image build'],
  usage: '[OPTIONS] PATH | -',
  summary: 'Build an image from a Dockerfile (steps that need no container: no RUN)',
  description: "Docker's classic builder without a daemon: FROM, COPY, ADD, ENV, ARG, LABEL, WORKDIR, USER, EXPOSE,\nVOLUME, CMD, ENTRYPOINT, STOPSIGNAL, HEALTHCHECK, SHELL, ONBUILD and multi-stage builds.\nRUN is refused. SOURCE_DATE_EPOCH makes the image reproducible.",
  options: [
    { name: 'tag', short: 't', type: 'list', value: 'list', help: 'Name and optionally a tag in the "name:tag" format' },
    { name: 'file', short: 'f', type: 'string', value: 'string', help: "Name of the Dockerfile (Default is 'PATH/Dockerfile')" },
    { name: 'build-arg', type: 'list', value: 'list', help: 'Set build-time variables' },
    { name: 'target', type: 'string', value: 'string', help: 'Set the target build stage to build.' },
    { name: 'no-cache', type: 'bool', help: 'Do not use cache when building the image' },
    { name: 'pull', type: 'bool', help: 'Always attempt to pull a newer version of the image' },
    { name: 'cache-from', type: 'list', value: 'strings', help: 'Images to consider as cache sources' },
    { name: 'label', type: 'list', value: 'list', help: 'Set metadata for an image' },
    { name: 'iidfile', type: 'string', value: 'string', help: 'Write the image ID to the file' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Suppress the build output and print image ID on success' },
    PLATFORM_OPTION,
  ],
  args: { min: 1, max: 1 },
  async run(ctx, p) {
    const { build: runBuild, extractContextArchive } = await import('../../build/index.js');
    const path = await import('node:path');
    const fs = await import('node:fs');
    const file = p.string('file');
    if (p.args[0] === '-' && file === '-') throw new InvalidArgumentError("invalid argument: can't use stdin for both build context and dockerfile");
    const epochText = ctx.io.env.SOURCE_DATE_EPOCH;
    let sourceDateEpoch: number | undefined;
    if (epochText !== undefined && epochText !== '') {
      if (!/^\d+$/.test(epochText)) throw new InvalidArgumentError(`invalid SOURCE_DATE_EPOCH ${JSON.stringify(epochText)}: seconds since the epoch`);
      sourceDateEpoch = Number(epochText);
    }
    const quiet = p.bool('quiet');
    const store = await ctx.store();
    // `-`: the context is a tar (plain or compressed) on standard input, as `docker build -` takes it.
    const fromStdin = p.args[0] === '-' ? store.scratchDir('build-context') : undefined;
    try {
      let context = path.resolve(p.args[0]!);
      if (fromStdin) {
        fs.mkdirSync(fromStdin);
        await extractContextArchive(ctx.io.stdin, fromStdin, ctx.signal);
        context = fromStdin;
      }
      let dockerfileText: string | undefined;
      if (file === '-') {
        const chunks: Buffer[] = [];
        for await (const c of ctx.io.stdin as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
        dockerfileText = Buffer.concat(chunks).toString('utf8');
      }
      const result = await runBuild(store, {
        context,
        // With a context from stdin, -f names a file inside it (as in docker).
        ...(file !== undefined && file !== '-' ? { dockerfile: fromStdin ? path.join(fromStdin, file) : path.resolve(file) } : {}),
        ...(dockerfileText !== undefined ? { dockerfileText } : {}),
        tags: p.list('tag'),
        buildArgs: buildArgs(p.list('build-arg'), ctx.io.env),
        ...(p.string('target') !== undefined ? { target: p.string('target')! } : {}),
        ...(p.string('platform') !== undefined ? { platform: p.string('platform')! } : {}),
        noCache: p.bool('no-cache'),
        pull: p.bool('pull'),
        cacheFrom: p.list('cache-from'),
        labels: keyValues(p.list('label')),
        ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
        out: quiet ? () => undefined : (line) => ctx.io.stdout.write(line + '\n'),
        // A missing base image is pulled: its status lines as plain text (no bars inside a build's log).
        ...(quiet ? {} : { onPullProgress: (m) => { if (m.status && !m.progressDetail) ctx.io.stdout.write(`${m.id ? `${m.id}: ` : ''}${m.status}\n`); } }),
        signal: ctx.signal,
      });
      const iidfile = p.string('iidfile');
      if (iidfile !== undefined) fs.writeFileSync(iidfile, result.id);
      if (quiet) ctx.io.stdout.write(result.id + '\n');
    } finally {
      if (fromStdin) fs.rmSync(fromStdin, { recursive: true, force: true });
    }
  },
};
