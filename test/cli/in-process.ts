// Runs the command line's main() in this process with captured output and no standard input.
import { Readable } from 'node:stream';
import type { CliIO } from '../../src/cli/command.js';
import { main } from '../../src/cli/main.js';

export interface CliRun { code: number; out: string; err: string }

export async function runCli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  let out = '';
  let err = '';
  const io: CliIO = {
    stdout: { write: (s: string) => { out += s; } },
    stderr: { write: (s: string) => { err += s; } },
    stdin: Readable.from([]),
    env,
  };
  const code = await main(argv, io);
  return { code, out, err };
}
