/**
 * What the commands print, checked against docker's output (main() in-process, a real registry):
 * - `images --format` with `{{.Digest}}` shows digests without --digests (docker's formatter turns them
 *   on when the format asks for them);
 * - `pull -a REPO` ends with the reference it pulled, the bare repository, as docker does;
 * - `container ls --format` prints CreatedAt in docker's form (Go's time.String).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestImage, pushRaw, type TestImage } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { runCli } from './in-process.js';

let reg: Registry;
let tmp: string;
let root: string;
let one: TestImage;

const run = (...argv: string[]) => runCli(['--root', root, ...argv]);

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-cli-output-'));
  root = path.join(tmp, 'root');
  reg = await startRegistry();
  one = await makeTestImage({ layers: [{ files: { 'a.txt': 'a\n' } }] });
  await pushRaw(reg.url, 'one', 'v1', one);
  await pushRaw(reg.url, 'one', 'v2', one);
});

afterAll(async () => {
  await reg?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('pull --all-tags', () => {
  it('pulls every tag and prints the repository name last', async () => {
    const r = await run('pull', '-a', `${reg.host}/one`);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines).toContain(`Status: Downloaded newer image for ${reg.host}/one`);
    expect(lines.at(-1)).toBe(`${reg.host}/one`);
    expect((await run('images', '--format', '{{.Tag}}')).out.split('\n').filter(Boolean).sort()).toEqual(['v1', 'v2']);
  });
});

describe('images --format', () => {
  it('shows digests when the template asks for {{.Digest}}, as with --digests', async () => {
    for (const tag of ['v1', 'v2']) expect((await run('pull', '-q', `${reg.host}/one:${tag}`)).code).toBe(0);
    const r = await run('images', '--format', '{{.Repository}} {{.Tag}} {{.Digest}}');
    expect(r.code).toBe(0);
    expect(r.out.split('\n').filter(Boolean).sort()).toEqual([
      `${reg.host}/one v1 ${one.manifest.digest}`, `${reg.host}/one v2 ${one.manifest.digest}`,
    ]);
    // Without {{.Digest}} in the template nothing changes; the default table has no DIGEST column.
    expect((await run('images')).out.split('\n')[0]).toMatch(/^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$/);
  });
});

describe('container ls --format', () => {
  it('prints CreatedAt in docker\'s form (Go time.String), like images does', async () => {
    expect((await run('pull', '-q', `${reg.host}/one:v1`)).code).toBe(0);
    const created = await run('container', 'create', '--name', 'when', `${reg.host}/one:v1`);
    expect(created.code).toBe(0);
    const r = await run('container', 'ls', '--format', '{{.Names}} {{.CreatedAt}}');
    expect(r.out).toMatch(/^when \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC\n$/);
    expect((await run('container', 'rm', 'when')).code).toBe(0);
  });
});
