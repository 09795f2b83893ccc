/**
 * What a command is (its name, usage, options, argument count, and what it runs) and what it runs with
 * (the terminal streams, the global options, the store, an abort signal).
 */
import type { ImageService } from '../images/index.js';
import type { OptionSpec, ParsedArgs } from './args.js';

/** Where a command reads and writes. The binary passes the process streams; tests may pass others. */
export interface CliIO {
  stdout: TextOutput;
  stderr: TextOutput;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export interface TextOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface GlobalOptions {
  root?: string;
  debug: boolean;
}

export interface Context {
  io: CliIO;
  globals: GlobalOptions;
  /** Fires on Ctrl-C; long operations take it. */
  signal: AbortSignal;
  /** Opens the store on first use (commands such as `version` never touch it). */
  store(): Promise<ImageService>;
  /** The program name as the user knows it, for messages: "stowage". */
  program: string;
}

export interface CommandSpec {
  /** Canonical name, words separated by spaces: "images", "image prune", "container create". */
  name: string;
  /** Other names for the same command: "image ls". */
  aliases?: string[];
  /** What follows the name in the usage line: "[OPTIONS] IMAGE [IMAGE...]". */
  usage: string;
  summary: string;
  /** Longer text for --help, below the summary. */
  description?: string;
  options?: OptionSpec[];
  /** Positional argument count: min defaults to 0, max to min (use Infinity for "IMAGE [IMAGE...]"). */
  args?: { min?: number; max?: number };
  /**
   * What the command writes to the store's database is bookkeeping that a power cut may take without
   * harm (an operation lease, events), while its files are large: the binary then ends without
   * closing the database, whose checkpoint fsync would wait for the disk to take all those files
   * (see MainOptions.exiting). Other commands close it, so their records are on disk when they end.
   */
  bookkeepingOnly?: true;
  /** Returns the exit code (default 0). */
  run(ctx: Context, parsed: ParsedArgs): Promise<number | void>;
}

/** `--format` as docker documents it, shared by the listing commands. */
export const FORMAT_OPTION: OptionSpec = {
  name: 'format', type: 'string', value: 'string',
  help: "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format (Engine API shapes)\n'TEMPLATE':         Print output using the given Go template",
};

export const PLATFORM_OPTION: OptionSpec = {
  name: 'platform', type: 'string', value: 'string', help: 'Set platform, formatted as "os[/arch[/variant]]" (e.g., "linux/amd64")',
};

/** Docker's `--change`/`-c` of `commit` and `import`: Dockerfile instructions applied to the new image's config. */
export const CHANGE_OPTION: OptionSpec = {
  name: 'change', short: 'c', type: 'list', value: 'list', help: 'Apply Dockerfile instruction to the created image',
};
