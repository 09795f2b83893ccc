// Property tests over the layer apply path, from a fixed seed: random well-formed archives give exactly
// the tree they describe; random hostile ones (escaping names and link targets, whiteouts, long names,
// corrupted headers, wrong sizes, truncations, compressed garbage) end in a typed error or a tree, never
// a write outside the target, never a hang, never an untyped error.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StowageError } from '../../src/errors/index.js';
import { applyLayer } from '../../src/snapshots/index.js';
import { BLOCK, buildTar, compressBuf, describeTree, linkGroups, sealHeader, sha256, streamOf, tmpdir, type TEntry } from './helpers.js';
import { prng } from '../harness/prng.js';

const SEED = 0x7a12_0009;
const base = tmpdir('stowage-fuzz-');
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

let cases = 0;
/** A fresh case dir: `root` (the target, absent), `host` (must never change) beside it. */
function sandbox(): { dir: string; root: string; host: string } {
  const dir = path.join(base, String(cases++));
  const host = path.join(dir, 'host');
  fs.mkdirSync(host, { recursive: true });
  fs.writeFileSync(path.join(host, 'passwd'), 'host-passwd');
  return { dir, root: path.join(dir, 'root'), host };
}

/** Resolves with the apply's outcome, or rejects if it neither ends nor fails for a minute (a hang). */
async function outcome(p: Promise<unknown>): Promise<'ok' | StowageError> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('apply hung for 60 s')), 60_000); });
  try {
    await Promise.race([p, hang]);
    return 'ok';
  } catch (e) {
    if (e instanceof StowageError) return e;
    throw e; // an untyped error is a failure of the property
  } finally { clearTimeout(timer); }
}

describe(`apply, property-tested (seed ${SEED.toString(16)})`, () => {
  it('well-formed random archives give exactly the tree they describe', async () => {
    const rand = prng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    for (let round = 0; round < 60; round++) {
      const entries: TEntry[] = [];
      const expected: Record<string, { type: string; mode: number; sha?: string; size?: number; link?: string }> = {};
      const dirs = [''];
      const files: string[] = [];
      const groups = new Map<string, string[]>();
      const count = 1 + Math.floor(rand() * 25);
      for (let i = 0; i < count; i++) {
        const parent = pick(dirs);
        const name = `${parent ? `${parent}/` : ''}${pick(['a', 'b', 'long-'.repeat(30), 'sp ace', 'ü', 'x.y'])}${i}`;
        const kind = rand();
        if (kind < 0.25) {
          const mode = pick([0o755, 0o700, 0o1777, 0o2755]);
          entries.push({ name, type: 'directory', mode });
          expected[name] = { type: 'dir', mode };
          dirs.push(name);
        } else if (kind < 0.7) {
          const body = Buffer.from(Array.from({ length: Math.floor(rand() ** 3 * 70_000) }, () => Math.floor(rand() * 256)));
          const mode = pick([0o644, 0o600, 0o755, 0o4755, 0o444]);
          entries.push({ name, type: 'file', body, mode });
          expected[name] = { type: 'file', mode, size: body.length, sha: sha256(body) };
          files.push(name);
        } else if (kind < 0.85) {
          const linkname = pick(['target', '../up', '/abs/path', files[0] ?? 'nothing', 'a'.repeat(150)]);
          entries.push({ name, type: 'symlink', linkname, mode: 0o777 });
          expected[name] = { type: 'symlink', mode: 0, link: linkname };
        } else if (files.length > 0) {
          const target = pick(files);
          entries.push({ name, type: 'link', linkname: target, mode: 0o644 });
          expected[name] = { ...expected[target]! };
          const g = groups.get(target) ?? [target];
          g.push(name);
          groups.set(target, g);
        }
      }
      const { root, host } = sandbox();
      const compression = pick(['none', 'gzip', 'zstd'] as const);
      const res = await outcome(applyLayer(streamOf(compressBuf(await buildTar(entries), compression)), root, { mode: 'overlay' }));
      expect(res, `round ${round}`).toBe('ok');
      const tree = await describeTree(root, { owners: false });
      const got = Object.fromEntries(Object.entries(tree).map(([p, n]) => [p, { type: n.type, mode: n.mode, ...(n.sha ? { sha: n.sha, size: n.size } : {}), ...(n.link !== undefined ? { link: n.link } : {}) }]));
      expect(got, `round ${round}`).toEqual(expected);
      expect(linkGroups(root)).toEqual([...groups.values()].map((g) => g.sort()).sort((x, y) => x[0]!.localeCompare(y[0]!)));
      expect(fs.readdirSync(host)).toEqual(['passwd']);
    }
  });

  it('hostile random archives end in a typed error or a tree, never touching anything outside the target', async () => {
    const rand = prng(SEED ^ 0xffff);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    let errors = 0;
    let trees = 0;
    for (let round = 0; round < 250; round++) {
      const { dir, root, host } = sandbox();
      // Escaping names are refused outright, so most names are plain ones that symlinks and hard
      // links (with escaping targets) can be combined with: `l` -> ../host, then `l/x`.
      const hostile = ['..', '../x', '../host/passwd', '../../y', '/abs', '/../host/passwd', 'a/../../host/passwd', './', 'a//b', 'a/./b',
        '.wh...', 'd'.repeat(300), `${'e'.repeat(120)}/${'f'.repeat(120)}`, 'tail/'];
      const plain = ['.wh..wh..opq', '.wh.x', 'a/.wh.b', 'a/.wh..wh..opq', 'a', 'a/b', 'a/b/c', 'l', 'l/x', 'l/y/z', 'h', 'h/x', 'ü/ß'];
      const names = { pick: () => (rand() < 0.15 ? pick(hostile) : pick(plain)) };
      const targets = ['..', '../host', '../host/passwd', host, path.join(host, 'passwd'), '/', '.', 'a', 'l', 'l/x', 'h', 'missing', '../../../../etc', ''];
      const entries: TEntry[] = [];
      const count = 1 + Math.floor(rand() * 12);
      for (let i = 0; i < count; i++) {
        const name = names.pick();
        const t = rand();
        if (t < 0.3) entries.push({ name, type: 'file', body: Buffer.alloc(Math.floor(rand() * 3000), 0x61 + (i % 26)), mode: pick([0o644, 0o7777, 0]) });
        else if (t < 0.45) entries.push({ name, type: 'directory', mode: pick([0o755, 0, 0o7777]) });
        else if (t < 0.7) entries.push({ name, type: 'symlink', linkname: pick(targets), mode: 0o777 });
        else if (t < 0.85) entries.push({ name, type: 'link', linkname: pick(targets), mode: 0o644 });
        else if (t < 0.92) entries.push({ name, type: 'fifo', mode: 0o600 });
        else entries.push({ name, type: 'file', body: 'x', pax: { path: names.pick(), ...(rand() < 0.5 ? { linkpath: pick(targets) } : {}) } });
      }
      let bytes: Buffer;
      try { bytes = await buildTar(entries); } catch { continue; } // names tar-stream itself refuses to write
      // Damage: truncate, flip header bytes, lie in a size field (with or without a valid checksum),
      // append garbage, or leave it whole.
      const m = rand();
      if (m < 0.2) bytes = bytes.subarray(0, Math.floor(rand() * bytes.length));
      else if (m < 0.4) { bytes = Buffer.from(bytes); for (let k = 0; k < 1 + rand() * 8; k++) bytes[Math.floor(rand() * Math.min(bytes.length, 1024))] = Math.floor(rand() * 256); }
      else if (m < 0.5) { bytes = Buffer.from(bytes); bytes.write('77777777777\0', 124, 'latin1'); }
      else if (m < 0.6) bytes = Buffer.concat([bytes, Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 2000) }, () => Math.floor(rand() * 256)))]);
      else if (m < 0.7 && bytes.length >= BLOCK) {
        // A size field that lies but passes the checksum: a directory, a link or a name ending in /
        // that claims data (or a file that claims less) must not hang the apply or hide what follows.
        bytes = Buffer.from(bytes);
        bytes.write(Math.floor(rand() * 4 * BLOCK).toString(8).padStart(11, '0') + '\0', 124, 'latin1');
        sealHeader(bytes);
      }
      const compression = pick(['none', 'none', 'gzip', 'zstd'] as const);
      let stream = compressBuf(bytes, compression);
      if (compression !== 'none' && rand() < 0.3) stream = stream.subarray(0, Math.floor(rand() * stream.length));

      const res = await outcome(applyLayer(streamOf(stream), root, { mode: pick(['overlay', 'merged'] as const) }));
      if (res === 'ok') trees++;
      else {
        errors++;
        // Typed means a real code: an archive's fault is InvalidArgument (or the like), never Unknown.
        expect(res.code, `round ${round}: ${res.message}\n${JSON.stringify(entries.map((e) => [e.type, e.name, e.linkname]))}`).not.toBe('Unknown');
      }
      // Nothing outside the target: the host dir as it was, no stray entries beside the root (no
      // staging directory left by a failure), nothing new above the case dir.
      expect(fs.readdirSync(host), `round ${round}`).toEqual(['passwd']);
      expect(fs.readFileSync(path.join(host, 'passwd'), 'utf8')).toBe('host-passwd');
      expect(fs.readdirSync(dir).filter((n) => n !== 'root' && n !== 'root.stowage-override').sort(), `round ${round}`).toEqual(['host']);
      expect(fs.readdirSync(base).every((n) => /^\d+$/.test(n)), `round ${round}`).toBe(true);
      if (res !== 'ok') expect(fs.existsSync(root), `round ${round}: a failed apply leaves no target`).toBe(false);
    }
    // The generator reaches both outcomes (else it tests less than it says).
    console.log(`apply fuzz: ${trees} trees, ${errors} typed errors`);
    expect(errors).toBeGreaterThanOrEqual(10);
    expect(trees).toBeGreaterThanOrEqual(10);
  });
});
