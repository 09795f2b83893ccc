import { createRequire } from 'node:module';

let loaded: typeof import('tar-stream') | undefined;

/** tar-stream, loaded at first use: importing it costs ~15 ms, which commands that read or write no archive need not pay. */
export function tarStream(): typeof import('tar-stream') {
  return (loaded ??= createRequire(import.meta.url)('tar-stream') as typeof import('tar-stream'));
}
