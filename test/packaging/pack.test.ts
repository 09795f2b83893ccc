// The package as npm users get it: the packed tarball holds the built JavaScript and declarations and
// nothing else; installed offline into a fresh project outside the source tree, its declarations
// type-check a consumer (and refuse misuse), the compiled consumer runs under plain Node, importing it
// has no side effects, the `stowage` command works, and the README's vitest example passes there.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, ensureBuilt } from '../cli/binary.js';
import { documentedSnippets } from '../readme/blocks.js';
import { makeConsumer } from './consumer.js';

const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-pack-'));
const project = path.join(tmp, 'consumer');
let files: string[] = [];
let tarball = '';

beforeAll(async () => {
  await ensureBuilt();
  // Scripts are skipped: ensureBuilt made dist/ (under its lock), and `prepare` would rebuild it while
  // other test files run the built binary.
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: REPO, maxBuffer: 16 << 20 });
  const [info] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
  files = info.files.map((f) => f.path).sort();
  tarball = path.join(tmp, info.filename);
  await makeConsumer(REPO, tarball, project, ['typescript', '@types/node', 'vitest']);
}, process.env.STOWAGE_PACK_NATIVE_BUILD === '1' ? 1_200_000 : 300_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022'], types: ['node'],
    strict: true, skipLibCheck: false, outDir: 'out', rootDir: '.',
  },
};

const CONSUMER = `
import { openStowage, buildImage, isStowageError, stowageErrorOf, NotFoundError, type ErrorCode, type EventMessage, type ImageService, type PullOptions } from 'stowage';
import { checkoutToTemp, compareTrees, formatTreeDiff } from 'stowage/testing';

const signal = new AbortController().signal;
const seen: string[] = [];
await using store = await openStowage({ temporary: true });
const service: ImageService = store;
const files = { '/a': 'a', '/b': { type: 'symlink', target: 'a' } } as const;
const image = await buildImage({ platform: 'linux/amd64', layers: [{ files }], env: { A: '1' } });
const { id } = await service.addImage(image, { ref: 'example.test/a:1', signal, onProgress: (m) => { seen.push(m.status ?? m.stream ?? ''); } });
for await (const e of service.events({ filters: { event: ['load'] } })) { const ev: EventMessage = e; seen.push(ev.Action); }
try {
  await service.inspect('nothing:here', { signal });
} catch (e) {
  if (isStowageError(e, 'NotFound')) { const code: ErrorCode = stowageErrorOf(e)!.code; seen.push(code); }
  if (e instanceof NotFoundError) seen.push(String(e.data['reference']));
}
const pull: PullOptions = { signal, onProgress: (m) => { seen.push(m.status ?? ''); } };
void pull;
{
  await using co = await checkoutToTemp(store, 'example.test/a:1', { signal });
  seen.push('diff:' + formatTreeDiff(compareTrees(co.dir, files)));
}
console.log(JSON.stringify({ id, root: store.root, seen }));
`;

const MISUSE = `
import { openStowage, buildImage } from 'stowage';
const store = await openStowage({ temporary: true });
await store.pull(42);
await buildImage({ layers: [{ files: { '/a': { type: 'link', target: '/b' } } }] });
await store.checkout('x', '/tmp/x', { platform: 7 });
`;

// Handles that would keep a process alive or act behind the user's back (stdio pipes come and go as node sets them up).
const IMPORT_ONLY = `
const LIVE = ['Timeout', 'Immediate', 'TCPServerWrap', 'TCPSocketWrap', 'ProcessWrap', 'SignalWrap', 'FSEventWrap', 'StatWatcher', 'UDPWrap'];
const state = () => ({
  resources: process.getActiveResourcesInfo().filter((r) => LIVE.includes(r)).sort(),
  listeners: ['exit', 'SIGINT', 'SIGTERM', 'uncaughtException', 'unhandledRejection', 'warning'].map((e) => process.listenerCount(e)),
  umask: process.umask(),
});
const before = state();
const lib = await import('stowage');
const testing = await import('stowage/testing');
const after = state();
console.log(JSON.stringify({ before, after, exports: Object.keys(lib).length, testing: Object.keys(testing).sort() }));
`;

describe('the packed package', () => {
  it('holds the built JavaScript and declarations, the command, and nothing else', () => {
    const outside = files.filter((f) => !f.startsWith('dist/') && !['bin/stowage.js', 'package.json', 'README.md'].includes(f));
    expect(outside).toEqual([]);
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/testing/index.js', 'dist/testing/index.d.ts', 'dist/cli/bundle/main.js', 'dist/imagebuilder/index.d.ts']) expect(files).toContain(f);
    // The command line ships as its bundle only (bin/stowage.js runs it); no maps, no build stamps.
    expect(files.filter((f) => f.endsWith('.map') || f.includes('.build-') || (f.startsWith('dist/cli/') && !/^dist\/cli\/bundle\/[^/]+\.js$/.test(f)))).toEqual([]);
    const pkg = JSON.parse(fs.readFileSync(path.join(project, 'node_modules', 'stowage', 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg.exports).toMatchObject({ '.': { types: './dist/index.d.ts' }, './testing': { types: './dist/testing/index.d.ts' } });
    expect(pkg.type).toBe('module');
    expect(pkg.sideEffects).toBe(false);
  });

  it('type-checks a consumer against its declarations (no skipLibCheck), which then runs under plain node', async () => {
    fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({ ...TSCONFIG, include: ['consumer.ts'] }));
    fs.writeFileSync(path.join(project, 'consumer.ts'), CONSUMER);
    await run('npx', ['tsc', '-p', '.'], { cwd: project });
    const { stdout } = await run(process.execPath, ['out/consumer.js'], { cwd: project });
    const out = JSON.parse(stdout) as { id: string; root: string; seen: string[] };
    expect(out.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(out.seen).toEqual(expect.arrayContaining(['Loaded image: example.test/a:1\n', 'load', 'NotFound', 'nothing:here', 'diff:']));
    // The temporary store was removed by `await using`.
    expect(fs.existsSync(out.root)).toBe(false);
  });

  it('type-checks the code of the README and the guides against the declarations', async () => {
    const snippets = documentedSnippets(REPO, (f) => fs.readFileSync(f, 'utf8'));
    expect(snippets.length).toBeGreaterThanOrEqual(4);
    fs.mkdirSync(path.join(project, 'snippets'), { recursive: true });
    for (const s of snippets) fs.writeFileSync(path.join(project, 'snippets', `${s.name}.ts`), s.code);
    fs.writeFileSync(path.join(project, 'tsconfig.snippets.json'), JSON.stringify({ ...TSCONFIG, compilerOptions: { ...TSCONFIG.compilerOptions, noEmit: true }, include: ['snippets/*.ts'] }));
    await run('npx', ['tsc', '-p', 'tsconfig.snippets.json'], { cwd: project }).catch((e: { stdout: string }) => { throw new Error(e.stdout); });
  });

  it('refuses misuse at compile time', async () => {
    fs.writeFileSync(path.join(project, 'tsconfig.misuse.json'), JSON.stringify({ ...TSCONFIG, compilerOptions: { ...TSCONFIG.compilerOptions, noEmit: true }, include: ['misuse.ts'] }));
    fs.writeFileSync(path.join(project, 'misuse.ts'), MISUSE);
    const result = await run('npx', ['tsc', '-p', 'tsconfig.misuse.json'], { cwd: project }).then(() => '', (e: { stdout: string }) => e.stdout);
    expect(result.match(/misuse\.ts\(\d+,\d+\): error TS\d+/g)).toHaveLength(3);
  });

  it('has no side effects on import: no handles, no listeners, no files', async () => {
    const home = path.join(tmp, 'home');
    fs.writeFileSync(path.join(project, 'import-only.mjs'), IMPORT_ONLY);
    const { stdout } = await run(process.execPath, ['import-only.mjs'], { cwd: project, env: { ...process.env, HOME: home, STOWAGE_ROOT: path.join(home, 'store'), XDG_DATA_HOME: path.join(home, 'data') } });
    const out = JSON.parse(stdout) as { before: unknown; after: unknown; exports: number; testing: string[] };
    expect(out.after).toEqual(out.before);
    expect(out.exports).toBeGreaterThan(20);
    expect(out.testing).toEqual(expect.arrayContaining(['startTestRegistry', 'checkoutToTemp', 'compareTrees', 'formatTreeDiff']));
    expect(fs.existsSync(home)).toBe(false);
  });

  it('imports in a worker thread (nothing at import time touches process-wide state)', async () => {
    const script = `import { Worker } from 'node:worker_threads';
new Worker("import('stowage').then((m) => console.log(typeof m.openStowage), (e) => console.log('failed: ' + e.message))", { eval: true });`;
    fs.writeFileSync(path.join(project, 'worker.mjs'), script);
    const { stdout } = await run(process.execPath, ['worker.mjs'], { cwd: project });
    expect(stdout.trim()).toBe('function');
  });

  it('puts a working `stowage` command in the project', async () => {
    const { stdout } = await run('npx', ['stowage', '--root', path.join(tmp, 'cli-store'), 'images'], { cwd: project });
    expect(stdout).toMatch(/^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE\n$/);
  });

  it('runs the README example with vitest, as the README shows it', async () => {
    fs.copyFileSync(path.join(REPO, 'test', 'readme', 'example.test.ts'), path.join(project, 'example.test.ts'));
    const { stdout } = await run('npx', ['vitest', 'run', 'example.test.ts'], { cwd: project, env: { ...process.env, CI: '1', NO_COLOR: '1' } });
    expect(stdout.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/Tests +1 passed \(1\)/);
  });
});
