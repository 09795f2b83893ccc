/**
 * `stowage [OPTIONS] COMMAND`: finds the command, parses its options docker's way, opens the store when the
 * command needs it, runs it, and turns every failure into docker's wording and exit codes.
 */
import { parseArgs, formatOptions, type OptionSpec } from './args.js';
import type { CliIO, CommandSpec, Context, GlobalOptions } from './command.js';
import { COMMANDS, COMMON, GROUPS, findCommand, groupCommands } from './commands/index.js';
import { stowageVersion } from './commands/version.js';
import { argCountError, commandHelp, usageHint } from './help.js';
import { exitCodeOf, writeError } from './report.js';
import { EXIT, UsageError } from './usage.js';
import type { ImageService } from '../images/index.js';

export const PROGRAM = 'stowage';

const GLOBAL_OPTIONS: OptionSpec[] = [
  { name: 'root', type: 'string', value: 'string', help: 'Store root (default $STOWAGE_ROOT, else $XDG_DATA_HOME/stowage,\nelse ~/.local/share/stowage)' },
  { name: 'debug', short: 'D', type: 'bool', help: 'Enable debug output (error codes and stacks)' },
  { name: 'help', short: 'h', type: 'bool', help: 'Print usage' },
  { name: 'version', short: 'v', type: 'bool', help: 'Print version information and quit' },
];
const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', type: 'bool', help: 'Print usage', hidden: true };

function processIO(): CliIO {
  // `stowage images | head -1`: a closed pipe ends the command quietly, as it does for other tools.
  const onPipeError = (err: NodeJS.ErrnoException): void => {
    if (err.code === 'EPIPE') process.exit(EXIT.ok);
    throw err;
  };
  if (process.stdout.listenerCount('error') === 0) process.stdout.on('error', onPipeError);
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}

function mainHelp(): string {
  const line = (name: string, summary: string): string => `  ${name.padEnd(11)} ${summary}`;
  const common = COMMON.map((n) => COMMANDS.find((c) => c.name === n)!).map((c) => line(c.name, c.summary));
  const others = COMMANDS.filter((c) => !COMMON.includes(c.name) && !c.name.includes(' ')).map((c) => line(c.name, c.summary));
  const groups = Object.entries(GROUPS).map(([g, s]) => line(g, s));
  return [
    `Usage:  ${PROGRAM} [OPTIONS] COMMAND`, '',
    'A daemonless, rootless container-image store', '',
    'Common Commands:', ...common, '',
    'Management Commands:', ...groups, '',
    'Commands:', ...others, '',
    'Global Options:', formatOptions(GLOBAL_OPTIONS), '',
    `Run '${PROGRAM} COMMAND --help' for more information on a command.`, '',
  ].join('\n');
}

function groupHelp(group: string): string {
  const subs = groupCommands(group).map(([word, spec]) => `  ${word.padEnd(11)} ${spec.summary}`);
  return [`Usage:  ${PROGRAM} ${group} COMMAND`, '', GROUPS[group]!, '', 'Commands:', ...subs, '',
    `Run '${PROGRAM} ${group} COMMAND --help' for more information on a command.`, ''].join('\n');
}

export interface MainOptions {
  /**
   * The caller ends the process right after (bin/stowage.js does, with process.exit). Then a command
   * marked `bookkeepingOnly` leaves the store's database connection to the process's end instead of
   * closing it: closing the last connection makes SQLite checkpoint its WAL and fsync the database,
   * and on ext4 that fsync waits for the disk to take everything the command just wrote (a checkout's
   * whole tree: 0.2 s of a 0.9 s checkout here), which cp and tar never wait for. Its commits stay in
   * the WAL, as after a crash (the store survives that by design), and the next process to close a
   * connection, or SQLite's auto-checkpoint, folds them in.
   */
  exiting?: boolean;
}

/** Runs one command line; returns the exit code. `io` defaults to the process streams. */
export async function main(argv: string[], io: CliIO = processIO(), opts: MainOptions = {}): Promise<number> {
  let globals: GlobalOptions = { debug: false };
  let spec: CommandSpec | undefined;
  const controller = new AbortController();
  const onSigint = (): void => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted);
    controller.abort(new Error('interrupted'));
  };
  let store: ImageService | undefined;
  try {
    const g = parseArgs(argv, GLOBAL_OPTIONS, { stopAtFirstArg: true });
    globals = { root: g.string('root'), debug: g.bool('debug') };
    if (g.bool('version')) { io.stdout.write(`Stowage version ${stowageVersion()}\n`); return EXIT.ok; }
    const rest = g.args;
    if (rest.length === 0 || g.bool('help')) { io.stdout.write(mainHelp()); return EXIT.ok; }
    if (rest[0] === 'help') return help(io, rest.slice(1));

    const found = findCommand(rest);
    if (!found) {
      const group = rest[0]!;
      if (GROUPS[group] !== undefined) {
        if (rest.length === 1 || rest[1] === '--help' || rest[1] === '-h') { io.stdout.write(groupHelp(group)); return EXIT.ok; }
        io.stderr.write(`${PROGRAM}: unknown command: ${PROGRAM} ${group} ${rest[1]}\n\nUsage:  ${PROGRAM} ${group}\n\nRun '${PROGRAM} ${group} --help' for more information\n`);
        return EXIT.failure;
      }
      io.stderr.write(`${PROGRAM}: unknown command: ${PROGRAM} ${group}\n\nRun '${PROGRAM} --help' for more information\n`);
      return EXIT.failure;
    }
    spec = found.spec;
    const parsed = parseArgs(rest.slice(found.words), [...(spec.options ?? []), HELP_OPTION]);
    if (parsed.bool('help')) { io.stdout.write(commandHelp(PROGRAM, spec)); return EXIT.ok; }
    const countError = argCountError(PROGRAM, spec, parsed.args.length);
    if (countError) throw new UsageError(countError, EXIT.failure);

    const ctx: Context = {
      io, globals, signal: controller.signal, program: PROGRAM,
      store: async () => {
        if (!store) {
          // Loaded on demand: commands such as `version` and `--help` start without the store's modules.
          const { openStowage } = await import('../images/index.js');
          store = await openStowage({ root: globals.root });
        }
        return store;
      },
    };
    process.on('SIGINT', onSigint);
    const code = await spec.run(ctx, parsed);
    return code ?? EXIT.ok;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`${err.message}\n`);
      io.stderr.write(spec ? usageHint(PROGRAM, spec) : `\nUsage:  ${PROGRAM} [OPTIONS] COMMAND [ARG...]\n\nRun '${PROGRAM} --help' for more information\n`);
    } else if (!controller.signal.aborted) {
      // After Ctrl-C the user knows why it stopped; docker prints nothing either.
      writeError(io.stderr, err, globals.debug);
    }
    return exitCodeOf(err, controller.signal);
  } finally {
    process.off('SIGINT', onSigint);
    if (store) await (opts.exiting && spec?.bookkeepingOnly ? store.cleanup() : store.close()).catch(() => undefined);
  }
}

function help(io: CliIO, words: string[]): number {
  if (words.length === 0) { io.stdout.write(mainHelp()); return EXIT.ok; }
  const found = findCommand(words);
  if (found) { io.stdout.write(commandHelp(PROGRAM, found.spec)); return EXIT.ok; }
  if (GROUPS[words[0]!] !== undefined) { io.stdout.write(groupHelp(words[0]!)); return EXIT.ok; }
  io.stderr.write(`${PROGRAM}: unknown help topic: ${words.join(' ')}\n`);
  return EXIT.failure;
}
