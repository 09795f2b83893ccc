#!/usr/bin/env node
// The `stowage` command: runs the compiled command line (npm run build makes dist/).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
