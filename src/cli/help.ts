/** Help texts and usage-error texts, shaped like docker's so that users find their way the same. */
import { formatOptions } from './args.js';
import type { CommandSpec } from './command.js';

export function commandHelp(program: string, spec: CommandSpec): string {
  const parts = [`Usage:  ${program} ${spec.name}${spec.usage ? ' ' + spec.usage : ''}`, '', spec.summary];
  if (spec.description) parts.push('', spec.description);
  if (spec.aliases?.length) {
    parts.push('', 'Aliases:', `  ${[...spec.aliases, spec.name].map((a) => `${program} ${a}`).join(', ')}`);
  }
  const options = spec.options?.filter((o) => !o.hidden) ?? [];
  if (options.length > 0) parts.push('', 'Options:', formatOptions(options));
  return parts.join('\n') + '\n';
}

/** The short form shown under a usage error. */
export function usageHint(program: string, spec: CommandSpec): string {
  return `\nUsage:  ${program} ${spec.name}${spec.usage ? ' ' + spec.usage : ''}\n\nRun '${program} ${spec.name} --help' for more information\n`;
}

/** docker's argument-count messages: "requires 2 arguments", "requires at least 1 argument", "accepts no arguments". */
export function argCountError(program: string, spec: CommandSpec, given: number): string | undefined {
  const min = spec.args?.min ?? 0;
  const max = spec.args?.max ?? min;
  const plural = (n: number): string => `${n} argument${n === 1 ? '' : 's'}`;
  const who = `${program}: '${program} ${spec.name}'`;
  if (min === max && given !== min) return min === 0 ? `${who} accepts no arguments` : `${who} requires ${plural(min)}`;
  if (given < min) return `${who} requires at least ${plural(min)}`;
  if (given > max) return `${who} requires at most ${plural(max)}`;
  return undefined;
}
