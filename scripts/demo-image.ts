/**
 * A small real image for the offline demo, made in memory: three gzip layers (directories, files, a
 * symlink, an executable, a whiteout that deletes a file of a lower layer) plus `empty_layer` history
 * entries, an OCI config and manifest. Everything is deterministic, so the digests are the same on
 * every run (a second `pull` says "Image is up to date").
 */
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import tar from 'tar-stream';

export interface Blob { mediaType: string; digest: string; size: number; bytes: Buffer }

export interface DemoImage {
  manifest: Blob;
  config: Blob;
  layers: Blob[];
  /** Every blob by digest (manifest included). */
  blobs: Map<string, Blob>;
}

type Entry =
  | { path: string; type: 'dir'; mode?: number }
  | { path: string; type: 'file'; body: string | Buffer; mode?: number }
  | { path: string; type: 'symlink'; target: string };

const MTIME = new Date('2026-01-01T00:00:00Z');
const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

function sha256(b: Buffer): string { return `sha256:${createHash('sha256').update(b).digest('hex')}`; }

function blob(mediaType: string, bytes: Buffer): Blob { return { mediaType, digest: sha256(bytes), size: bytes.length, bytes }; }

async function tarLayer(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => { chunks.push(c as Buffer); });
  const done = new Promise<void>((resolve, reject) => { pack.on('end', resolve); pack.on('error', reject); });
  for (const e of entries) {
    const common = { name: e.path, mtime: MTIME, uid: 0, gid: 0, uname: 'root', gname: 'root' };
    if (e.type === 'dir') pack.entry({ ...common, type: 'directory', mode: e.mode ?? 0o755 });
    else if (e.type === 'symlink') pack.entry({ ...common, type: 'symlink', linkname: e.target, mode: 0o777 });
    else {
      const body = typeof e.body === 'string' ? Buffer.from(e.body) : e.body;
      pack.entry({ ...common, type: 'file', mode: e.mode ?? 0o644, size: body.length }, body);
    }
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

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

export async function makeDemoImage(): Promise<DemoImage> {
  const layerEntries: Entry[][] = [
    [
      { path: 'bin/', type: 'dir' },
      { path: 'bin/hello', type: 'file', mode: 0o755, body: '#!/bin/sh\necho "hello from a stowage demo image"\n' },
      { path: 'bin/greet', type: 'symlink', target: 'hello' },
      { path: 'etc/', type: 'dir' },
      { path: 'etc/os-release', type: 'file', body: 'NAME="Stowage demo"\nID=stowage-demo\nVERSION_ID=1\n' },
      { path: 'etc/motd', type: 'file', body: 'Welcome to the base layer.\n' },
      { path: 'usr/', type: 'dir' },
      { path: 'usr/share/', type: 'dir' },
      { path: 'usr/share/demo/', type: 'dir' },
      { path: 'usr/share/demo/old.txt', type: 'file', body: 'this file is deleted by the second layer\n' },
      { path: 'usr/share/demo/keep.txt', type: 'file', body: 'this file stays\n' },
    ],
    [
      { path: 'etc/', type: 'dir' },
      { path: 'etc/motd', type: 'file', body: 'Welcome to Stowage: this line comes from the second layer.\n' },
      { path: 'usr/share/demo/', type: 'dir' },
      // The whiteout: deletes old.txt of the layer below.
      { path: 'usr/share/demo/.wh.old.txt', type: 'file', body: '' },
      { path: 'usr/share/demo/new.txt', type: 'file', body: 'added by the second layer\n' },
    ],
    [
      { path: 'srv/', type: 'dir' },
      { path: 'srv/data/', type: 'dir' },
      { path: 'srv/data/table-1.txt', type: 'file', body: pseudoText(12_000, 1) },
      { path: 'srv/data/table-2.txt', type: 'file', body: pseudoText(8_000, 2) },
    ],
  ];
  const layers: Blob[] = [];
  const diffIds: string[] = [];
  for (const entries of layerEntries) {
    const raw = await tarLayer(entries);
    diffIds.push(sha256(raw));
    layers.push(blob('application/vnd.oci.image.layer.v1.tar+gzip', zlib.gzipSync(raw, { level: 6 })));
  }
  const created = MTIME.toISOString();
  const configDoc = {
    created,
    architecture: ARCH[process.arch] ?? process.arch,
    os: 'linux',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hello'],
      Cmd: ['/bin/hello'],
      WorkingDir: '/',
      Labels: { 'org.opencontainers.image.title': 'stowage demo', 'org.opencontainers.image.source': 'scripts/demo-image.ts' },
    },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: [
      { created, created_by: '/bin/sh -c #(nop) ADD file:demo-base in / ' },
      { created, created_by: '/bin/sh -c rm /usr/share/demo/old.txt && echo added > /usr/share/demo/new.txt' },
      { created, created_by: '/bin/sh -c #(nop)  ENV GREETING=hello', empty_layer: true },
      { created, created_by: 'COPY data /srv/data # buildkit', comment: 'buildkit.dockerfile.v0' },
      { created, created_by: '/bin/sh -c #(nop)  CMD ["/bin/hello"]', empty_layer: true },
    ],
  };
  const config = blob('application/vnd.oci.image.config.v1+json', Buffer.from(JSON.stringify(configDoc)));
  const manifestDoc = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifest = blob('application/vnd.oci.image.manifest.v1+json', Buffer.from(JSON.stringify(manifestDoc)));
  const blobs = new Map<string, Blob>([[manifest.digest, manifest], [config.digest, config], ...layers.map((l) => [l.digest, l] as [string, Blob])]);
  return { manifest, config, layers, blobs };
}
