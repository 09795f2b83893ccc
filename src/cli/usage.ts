/**
 * A mistake in how the command was called (not a failure of the store). Docker's exit codes:
 * 125 for flag errors, 1 for wrong argument counts and everything else.
 */
export class UsageError extends Error {
  readonly exitCode: number;
  /** The command whose usage line to show under the message ("stowage images"), if any. */
  readonly command: string | undefined;
  constructor(message: string, exitCode = 125, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.exitCode = exitCode;
    this.command = command;
  }
}

/** Exit codes, as docker's CLI uses them. */
export const EXIT = { ok: 0, failure: 1, usage: 125, interrupted: 130 } as const;
