// NODE_EXTRA_CA_CERTS, read at the first TLS connection instead of at Node's start.
//
// Node reads that file, and builds its whole root store (~140 bundled certificates) to add it to,
// before it runs any code: 60-80 ms of every command's start on this project's machine (`node -e 0`
// took 0.10 s with it set and 0.02 s without), paid even by the commands that never connect anywhere.
// So the `stowage` launcher (bin/stowage.js) takes the variable away from Node and hands the path
// to main(), which gives it here; the transport (transport.ts) then trusts what Node would have
// trusted, once it opens its first TLS connection. Kept free of imports: main() loads it at start.

let deferredFile: string | undefined;

/** The NODE_EXTRA_CA_CERTS file the launcher kept from Node, for the transport to load when needed. */
export function deferExtraCaCerts(file: string | undefined): void {
  deferredFile = file === '' ? undefined : file;
}

/** The deferred NODE_EXTRA_CA_CERTS file, if any (undefined: Node loaded it itself, or none is set). */
export function deferredExtraCaFile(): string | undefined {
  return deferredFile;
}
