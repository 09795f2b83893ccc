/**
 * A small real image for the offline demo, built in code with the library's image builder: three gzip
 * layers (directories, files, a symlink, an executable, a deletion of a lower layer's file) plus
 * `empty_layer` history entries. Everything is deterministic, so the digests are the same on every run
 * (a second `pull` says "Image is up to date").
 */
import { buildImage, type BuiltImage } from '../src/index.js';

/** Text that compresses only a little, so the layer is big enough to show download progress. */
function pseudoText(lines: number, seed: number): Buffer {
  const out: string[] = [];
  let x = seed;
  for (let i = 0; i < lines; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out.push(`${i.toString().padStart(6, '0')} ${x.toString(36)} ${(x ^ 0x5bd1e995).toString(16)} ${((x >>> 3) * 2654435761 >>> 0).toString(36)}`);
  }
  return Buffer.from(out.join('\n') + '\n');
}

const created = '2026-01-01T00:00:00Z';

export function makeDemoImage(): Promise<BuiltImage> {
  return buildImage({
    created,
    layers: [
      {
        files: {
          '/bin/hello': { mode: 0o755, content: '#!/bin/sh\necho "hello from a stowage demo image"\n' },
          '/bin/greet': { type: 'symlink', target: 'hello' },
          '/etc/os-release': 'NAME="Stowage demo"\nID=stowage-demo\nVERSION_ID=1\n',
          '/etc/motd': 'Welcome to the base layer.\n',
          '/usr/share/demo/old.txt': 'this file is deleted by the second layer\n',
          '/usr/share/demo/keep.txt': 'this file stays\n',
        },
      },
      {
        files: {
          '/etc/motd': 'Welcome to Stowage: this line comes from the second layer.\n',
          // A deletion: the layer holds a whiteout for old.txt of the layer below.
          '/usr/share/demo/old.txt': { type: 'delete' },
          '/usr/share/demo/new.txt': 'added by the second layer\n',
        },
      },
      { files: { '/srv/data/table-1.txt': pseudoText(12_000, 1), '/srv/data/table-2.txt': pseudoText(8_000, 2) } },
    ],
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hello'],
    cmd: ['/bin/hello'],
    workingDir: '/',
    labels: { 'org.opencontainers.image.title': 'stowage demo', 'org.opencontainers.image.source': 'scripts/demo-image.ts' },
    history: [
      { createdBy: '/bin/sh -c #(nop) ADD file:demo-base in / ' },
      { createdBy: '/bin/sh -c rm /usr/share/demo/old.txt && echo added > /usr/share/demo/new.txt' },
      { createdBy: '/bin/sh -c #(nop)  ENV GREETING=hello', emptyLayer: true },
      { createdBy: 'COPY data /srv/data # buildkit', comment: 'buildkit.dockerfile.v0' },
      { createdBy: '/bin/sh -c #(nop)  CMD ["/bin/hello"]', emptyLayer: true },
    ],
  });
}
