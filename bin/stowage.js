#!/bin/sh
':' //; unset STOWAGE_EXTRA_CA_CERTS; if [ -n "${NODE_EXTRA_CA_CERTS-}" ]; then case " ${NODE_OPTIONS-} " in *--use-openssl-ca*|*--use-system-ca*|*--use-bundled-ca*) ;; *) export STOWAGE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"; unset NODE_EXTRA_CA_CERTS;; esac; fi; case " $* " in *" pull "*|*" push "*|*" load "*|*" import "*|*" save "*|*" build "*|*" commit "*|*" squash "*|*" serve "*) exec node --initial-old-space-size=64 "$0" "$@";; *) exec node "$0" "$@";; esac
// The `stowage` command: runs the bundled command line (npm run build makes dist/cli/bundle/).
//
// The two lines above are read by sh, which starts node on this file; node reads them as a string and
// a comment. Commands that move image data get a V8 flag, which has to be there at start-up: V8 takes
// no heap sizing later, nor this one from NODE_OPTIONS, and `#!/usr/bin/env -S` is missing from
// busybox. Why: V8 starts a full collection whenever the Buffers allocated since the last one outgrow
// the old generation's slack, 10-30 MB for the ~10 MB heap of this command line. A pull turns over
// ~800 MB of Buffers (sockets, zlib output, blob reads) and ran ~40 full collections; from a 64 MB old
// generation it runs 2-3, with 0.6 CPU-seconds less of 4.2 (bench/pull.ts). The flag costs ~14 ms of
// start-up, so the other commands go without it (a word matched by mistake only costs those 14 ms).
// `node bin/stowage.js` works too, without the flag.
// The same line keeps NODE_EXTRA_CA_CERTS from Node (unless NODE_OPTIONS picks a CA store): Node
// would parse that file and its bundled roots before running any code, 60-80 ms here, which most
// commands never use. It is passed on as STOWAGE_EXTRA_CA_CERTS, which the registry transport reads
// at its first TLS connection (defaultCaCertificates in src/distribution/transport.ts), and put back
// below for child processes (credential helpers).
import { main } from '../dist/cli/bundle/main.js';

/** Resolves once what was written to `stream` has been handed to the system. */
const flushed = (stream) => new Promise((resolve) => { stream.write('', () => resolve()); });

// The process ends as soon as the command is done and its output flushed (see MainOptions.exiting in
// src/cli/main.ts for what a command may then leave unclosed).
if (process.env.STOWAGE_EXTRA_CA_CERTS !== undefined) process.env.NODE_EXTRA_CA_CERTS = process.env.STOWAGE_EXTRA_CA_CERTS;

main(process.argv.slice(2), undefined, { exiting: true }).then(async (code) => {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
});
