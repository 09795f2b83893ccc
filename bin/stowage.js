#!/usr/bin/env node
// The `stowage` command: runs the bundled command line (npm run build makes dist/cli/bundle/).
import { main } from '../dist/cli/bundle/main.js';

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
