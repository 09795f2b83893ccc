/** `--filter key=value` flags (repeatable) into the Engine API filter map `{key: [values]}`. */
import { UsageError } from './usage.js';

export const FILTER_OPTION = {
  name: 'filter', short: 'f', type: 'list' as const, value: 'filter',
  help: 'Filter output based on conditions provided',
};

/** `flag` names the option in docker's error text ("-f, --filter" or "--filter"). */
export function parseFilterFlags(values: string[], flag = '-f, --filter'): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`invalid argument "${v}" for "${flag}" flag: bad format of filter (expected name=value)`);
    const key = v.slice(0, eq).trim().toLowerCase();
    (out[key] ??= []).push(v.slice(eq + 1));
  }
  return out;
}
