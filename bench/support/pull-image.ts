// The large test image of bench/pull.ts: N gzip layers of about LAYER bytes of tar each, cut from this
// machine's own files (one group of directories per layer, so layers differ in shape: many small files
// in /usr/share, big shared objects in /usr/lib/x86_64-linux-gnu, ...), written as an OCI layout.
// Every path lives in exactly one layer (parent directories are repeated, as real layers do), so the
// merged tree is known in advance: its file count and bytes are the reference for the sanity check.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MediaType, type Descriptor, type Digest } from '../../src/oci/index.js';

/** Directory groups, one per layer (relative to /); later groups skip paths taken by earlier ones. */
const LAYER_ROOTS: string[][] = [
  ['usr/share'],
  ['usr/bin', 'usr/sbin'],
  ['usr/lib/x86_64-linux-gnu'],
  ['usr/lib/python3', 'usr/lib/python3.11', 'usr/include'],
  ['usr/lib', 'usr/libexec', 'usr/local'],
];

export interface BenchImage {
  layout: string;
  tag: string;
  manifest: Descriptor;
  layers: Descriptor[];
  /** Sum of the layers' tar sizes. */
  tarBytes: number;
  layerTarBytes: number[];
  /** What the merged tree must hold. */
  expected: { regularFiles: number; regularBytes: number; symlinks: number };
}

interface Picked { entries: string[]; bytes: number; tarBytes: number; regular: number; symlinks: number }

/** Depth-first, sorted walk from the roots, taking entries until `target` bytes of regular files. */
function pickEntries(roots: string[], target: number, taken: Set<string>): Picked {
  const picked: Picked = { entries: [], bytes: 0, tarBytes: 0, regular: 0, symlinks: 0 };
  // tar stores a hard-linked file once: the cut counts each inode once so the layer's tar is ~target.
  const inodes = new Set<string>();
  const visit = (rel: string): boolean => {
    if (picked.tarBytes >= target) return false;
    let st: fs.Stats;
    try { st = fs.lstatSync(`/${rel}`); } catch { return true; }
    if (st.isDirectory()) {
      let names: string[];
      try { names = fs.readdirSync(`/${rel}`).sort(); } catch { return true; }
      if (!taken.has(rel)) picked.entries.push(rel);
      for (const n of names) if (!visit(`${rel}/${n}`)) return false;
      return true;
    }
    if (taken.has(rel)) return true;
    if (st.isFile()) {
      try { fs.accessSync(`/${rel}`, fs.constants.R_OK); } catch { return true; }
      const ino = `${st.dev}:${st.ino}`;
      const fresh = !inodes.has(ino);
      // A file that would overshoot the cut by more than 5% (libLLVM is 110 MB) is left out.
      if (fresh && picked.tarBytes + st.size > target * 1.05) return true;
      picked.entries.push(rel);
      picked.bytes += st.size;
      picked.regular++;
      if (fresh) { inodes.add(ino); picked.tarBytes += st.size; }
    } else if (st.isSymbolicLink()) {
      picked.entries.push(rel);
      picked.symlinks++;
    }
    return true;
  };
  for (const r of roots) if (!visit(r)) break;
  return picked;
}

function sha256File(file: string): Digest {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(4 << 20);
  for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  fs.closeSync(fd);
  return `sha256:${h.digest('hex')}` as Digest;
}

function exited(p: ReturnType<typeof spawn>, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    p.once('error', reject);
    p.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${what} exited with ${code}`))));
  });
}

/** tar (GNU, explicit list) | sha256 + count (the diffID) | pigz > blob, in one pass. */
async function writeLayer(blobs: string, listFile: string): Promise<{ desc: Descriptor; diffId: Digest; tarBytes: number }> {
  const tmp = path.join(blobs, 'layer.tmp');
  const tarP = spawn('tar', ['-C', '/', '--no-recursion', '--null', '-T', listFile, '--numeric-owner', '-cf', '-'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const out = fs.openSync(tmp, 'w');
  const pigz = spawn('pigz', ['-6'], { stdio: ['pipe', out, 'inherit'] });
  fs.closeSync(out);
  const h = createHash('sha256');
  let tarBytes = 0;
  const tee = new Transform({ transform(chunk: Buffer, _e, cb) { h.update(chunk); tarBytes += chunk.length; cb(null, chunk); } });
  await Promise.all([pipeline(tarP.stdout!, tee, pigz.stdin!), exited(tarP, 'tar'), exited(pigz, 'pigz')]);
  const digest = sha256File(tmp);
  fs.renameSync(tmp, path.join(blobs, digest.slice(7)));
  return {
    desc: { mediaType: MediaType.OciLayerGzip, digest, size: fs.statSync(path.join(blobs, digest.slice(7))).size },
    diffId: `sha256:${h.digest('hex')}` as Digest,
    tarBytes,
  };
}

/** `roots`: the directory groups to cut layers from, one per layer, cycled (default: LAYER_ROOTS). */
export async function buildBenchImage(layout: string, opts: { layers: number; layerBytes: number; tag?: string; roots?: string[][] }): Promise<BenchImage> {
  const groups = opts.roots ?? LAYER_ROOTS;
  const tag = opts.tag ?? 'latest';
  const blobs = path.join(layout, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const taken = new Set<string>();
  const layers: Descriptor[] = [];
  const diffIds: Digest[] = [];
  const expected = { regularFiles: 0, regularBytes: 0, symlinks: 0 };
  let tarBytes = 0;
  const layerTarBytes: number[] = [];
  for (let i = 0; i < opts.layers; i++) {
    const roots = groups[i % groups.length]!;
    const picked = pickEntries(roots, opts.layerBytes, taken);
    if (picked.regular === 0) throw new Error(`layer ${i}: no files left under ${roots.join(', ')}`);
    // Parent directories first (real layers carry them), then the walk's own entries in order.
    const parents = new Set<string>();
    for (const r of roots) for (let d = path.dirname(r); d !== '.'; d = path.dirname(d)) parents.add(d);
    const list = [...[...parents].sort(), ...picked.entries.filter((e) => !parents.has(e))];
    for (const e of picked.entries) taken.add(e);
    const listFile = path.join(layout, `layer-${i}.list`);
    fs.writeFileSync(listFile, list.join('\0') + '\0');
    const l = await writeLayer(blobs, listFile);
    fs.rmSync(listFile);
    layers.push(l.desc);
    diffIds.push(l.diffId);
    tarBytes += l.tarBytes;
    layerTarBytes.push(l.tarBytes);
    expected.regularFiles += picked.regular;
    expected.regularBytes += picked.bytes;
    expected.symlinks += picked.symlinks;
  }
  const write = (obj: unknown, mediaType: string): Descriptor => {
    const b = Buffer.from(JSON.stringify(obj));
    const digest = `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
    fs.writeFileSync(path.join(blobs, digest.slice(7)), b);
    return { mediaType, digest, size: b.length };
  };
  const created = '2024-01-01T00:00:00Z';
  const config = write({
    created, architecture: 'amd64', os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created, created_by: `bench layer ${i}: ${groups[i % groups.length]!.join(' ')}` })),
  }, MediaType.OciConfig);
  const manifest = write({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers }, MediaType.OciManifest);
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2, mediaType: MediaType.OciIndex,
    manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }));
  return { layout, tag, manifest, layers, tarBytes, layerTarBytes, expected };
}

export interface TreeStats { entries: number; regularFiles: number; regularBytes: number; inodeBytes: number; dirs: number; symlinks: number; other: number; shape: string }

/**
 * Counts a directory tree (lstat, no following links). `shape` is a digest of every path with its
 * type and size (sorted), so two unpackers' trees can be compared without hashing file contents.
 */
export function treeStats(root: string, skip: (rel: string) => boolean = () => false): TreeStats {
  const inodes = new Set<number>();
  const s: TreeStats = { entries: 0, regularFiles: 0, regularBytes: 0, inodeBytes: 0, dirs: 0, symlinks: 0, other: 0, shape: '' };
  const lines: string[] = [];
  const walk = (rel: string): void => {
    for (const d of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (skip(r)) continue;
      s.entries++;
      if (d.isDirectory()) { s.dirs++; lines.push(`${r}\0d`); walk(r); continue; }
      if (d.isFile()) {
        const st = fs.lstatSync(path.join(root, r));
        const size = st.size;
        if (!inodes.has(st.ino)) { inodes.add(st.ino); s.inodeBytes += size; }
        s.regularFiles++; s.regularBytes += size; lines.push(`${r}\0f\0${size}`);
      } else if (d.isSymbolicLink()) {
        s.symlinks++; lines.push(`${r}\0l\0${fs.readlinkSync(path.join(root, r))}`);
      } else { s.other++; lines.push(`${r}\0o`); }
    }
  };
  walk('');
  s.shape = createHash('sha256').update(lines.sort().join('\n')).digest('hex').slice(0, 12);
  return s;
}
