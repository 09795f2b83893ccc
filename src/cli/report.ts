/**
 * How failures reach the user: `Error: <message>` on stderr (docker's wording, without its
 * "Error response from daemon" prefix: there is no daemon), the exit code, and with --debug the error
 * code, data and stack.
 */
import { isStowageError, stowageErrorOf } from '../errors/index.js';
import type { Context, TextOutput } from './command.js';
import { EXIT, UsageError } from './usage.js';

export function errorText(err: unknown, debug: boolean): string {
  let message = err instanceof Error ? err.message : String(err);
  // The service words errors as docker does; the command to run here is ours.
  message = message.replace("'docker login'", "'stowage login'");
  let text = `Error: ${message}\n`;
  if (debug) {
    const se = stowageErrorOf(err);
    if (se) text += `  code: ${se.code}\n  data: ${JSON.stringify(se.data)}\n`;
    if (err instanceof Error && err.stack) text += `${err.stack}\n`;
    let cause = err instanceof Error ? err.cause : undefined;
    while (cause instanceof Error) { text += `caused by: ${cause.stack ?? cause.message}\n`; cause = cause.cause; }
  }
  return text;
}

export function writeError(out: TextOutput, err: unknown, debug: boolean): void { out.write(errorText(err, debug)); }

export function reportError(ctx: Context, err: unknown): void { writeError(ctx.io.stderr, err, ctx.globals.debug); }

/** docker's exit codes: 125 for flag mistakes, 130 after Ctrl-C, 1 for any other failure. */
export function exitCodeOf(err: unknown, signal?: AbortSignal): number {
  if (err instanceof UsageError) return err.exitCode;
  if (signal?.aborted || isStowageError(err, 'Aborted')) return EXIT.interrupted;
  return EXIT.failure;
}
