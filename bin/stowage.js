#!/usr/bin/env node
// The `stowage` command: runs the bundled command line (npm run build makes dist/cli/bundle/).
import { main } from '../dist/cli/bundle/main.js';

/** Resolves once what was written to `stream` has been handed to the system. */
const flushed = (stream) => new Promise((resolve) => { stream.write('', () => resolve()); });

// The process ends as soon as the command is done and its output flushed (see MainOptions.exiting in
// src/cli/main.ts for what a command may then leave unclosed).
main(process.argv.slice(2), undefined, { exiting: true }).then(async (code) => {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
});
