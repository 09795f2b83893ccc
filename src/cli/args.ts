/**
 * Command-line parsing with docker's (cobra/pflag) habits: `--name value`, `--name=value`,
 * `-abc` (combined booleans), `-fvalue` / `-f value`, `--bool=false`, repeated list flags, `--`
 * to end options, options after positional arguments. Errors are UsageErrors (exit 125).
 */
import { UsageError } from './usage.js';

export type OptionType = 'bool' | 'string' | 'list';

export interface OptionSpec {
  /** Long name without dashes: `no-trunc`. */
  name: string;
  /** One-letter short name: `q`. */
  short?: string;
  type: OptionType;
  /** Placeholder shown in help after the option (`string`, `filter`, `strings`). */
  value?: string;
  help: string;
  /** Default for string options when not given. */
  default?: string;
  hidden?: boolean;
}

export type OptionValue = boolean | string | string[];

/** The parsed options and positional arguments of one command. */
export class ParsedArgs {
  constructor(readonly args: string[], private readonly values: Map<string, OptionValue>, private readonly specs: OptionSpec[]) {}

  bool(name: string): boolean { this.check(name, 'bool'); return this.values.get(name) === true; }
  string(name: string): string | undefined {
    this.check(name, 'string');
    const v = this.values.get(name);
    return typeof v === 'string' ? v : this.specs.find((s) => s.name === name)?.default;
  }
  list(name: string): string[] { this.check(name, 'list'); const v = this.values.get(name); return Array.isArray(v) ? v : []; }
  /** Whether the user gave the option at all (even `--flag=false`). */
  has(name: string): boolean { return this.values.has(name); }

  private check(name: string, type: OptionType): void {
    const spec = this.specs.find((s) => s.name === name);
    // A programming error, not a user's: every lookup must name a declared option of the right type.
    if (!spec || spec.type !== type) throw new Error(`option --${name} is not declared as ${type}`);
  }
}

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

function parseBool(spec: OptionSpec, raw: string): boolean {
  if (TRUE.has(raw)) return true;
  if (FALSE.has(raw)) return false;
  throw new UsageError(`invalid argument "${raw}" for "${flagLabel(spec)}" flag: strconv.ParseBool: parsing "${raw}": invalid syntax`);
}

function flagLabel(spec: OptionSpec): string { return spec.short ? `-${spec.short}, --${spec.name}` : `--${spec.name}`; }

/**
 * Parses `argv` against `specs`. With `stopAtFirstArg` (global options before a command), parsing stops at
 * the first positional argument and the rest is returned untouched.
 */
export function parseArgs(argv: string[], specs: OptionSpec[], opts: { stopAtFirstArg?: boolean } = {}): ParsedArgs {
  const values = new Map<string, OptionValue>();
  const args: string[] = [];
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));

  const set = (spec: OptionSpec, value: string | boolean): void => {
    if (spec.type === 'list') {
      const prev = values.get(spec.name);
      values.set(spec.name, [...(Array.isArray(prev) ? prev : []), String(value)]);
    } else values.set(spec.name, value);
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') { args.push(...argv.slice(i + 1)); break; }
    if (arg.startsWith('--') && arg.length > 2) {
      const eq = arg.indexOf('=');
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`unknown flag: --${name}`);
      if (spec.type === 'bool') set(spec, eq >= 0 ? parseBool(spec, arg.slice(eq + 1)) : true);
      else if (eq >= 0) set(spec, arg.slice(eq + 1));
      else {
        if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: --${name}`);
        set(spec, argv[++i]!);
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // -abc: booleans combined; the first option that takes a value eats the rest or the next word.
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        const spec = byShort.get(letter);
        if (!spec) throw new UsageError(`unknown shorthand flag: '${letter}' in ${arg}`);
        if (spec.type === 'bool') {
          if (arg[j + 1] === '=') { set(spec, parseBool(spec, arg.slice(j + 2))); break; }
          set(spec, true);
          continue;
        }
        let rest = arg.slice(j + 1);
        if (rest.startsWith('=')) rest = rest.slice(1);
        if (rest !== '') set(spec, rest);
        else {
          if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: '${letter}' in -${letter}`);
          set(spec, argv[++i]!);
        }
        break;
      }
      continue;
    }
    if (opts.stopAtFirstArg) { args.push(...argv.slice(i)); break; }
    args.push(arg);
  }
  return new ParsedArgs(args, values, specs);
}

/** The `Options:` block of a help text, aligned like cobra's. */
export function formatOptions(specs: OptionSpec[]): string {
  const visible = specs.filter((s) => !s.hidden);
  const left = visible.map((s) => {
    const names = s.short ? `-${s.short}, --${s.name}` : `    --${s.name}`;
    const placeholder = s.type === 'bool' ? '' : ` ${s.value ?? (s.type === 'list' ? 'strings' : 'string')}`;
    return `  ${names}${placeholder}`;
  });
  const col = Math.max(0, ...left.map((l) => l.length)) + 3;
  return visible.map((s, i) => {
    const pad = ' '.repeat(col);
    const lines = s.help.split('\n');
    const first = left[i]!.padEnd(col) + lines[0];
    return [first, ...lines.slice(1).map((l) => pad + l)].join('\n');
  }).join('\n');
}
