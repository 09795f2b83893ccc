/**
 * Stowage's main job, offline, on a fresh machine: builds a small real image, serves it from a read-only
 * registry on 127.0.0.1, then runs the real `stowage` command line against the default store
 * ($STOWAGE_ROOT, else ~/.local/share/stowage): pull, images, history, inspect, checkout.
 *
 *   npm run demo                      # or: npx tsx scripts/demo.ts [--root DIR]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../src/cli/main.js';
import { stowageErrorOf, openStowage } from '../src/index.js';
import { startRegistryServer, type RegistryServer } from '../src/server/index.js';
import { makeDemoImage } from './demo-image.js';

/**
 * The demo registry's port when free: the same image name on every run, so a second run is "up to date".
 * STOWAGE_DEMO_PORT picks another (the tests give it a free port of their own).
 */
const DEMO_PORT = Number(process.env.STOWAGE_DEMO_PORT || 50505);

/** Global options given to the demo (`--root DIR`) go in front of every command. */
function globalArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--root' && argv[i + 1] !== undefined) out.push(a, argv[++i]!);
    else if (a.startsWith('--root=') || a === '--debug' || a === '-D') out.push(a);
    else throw new Error(`demo: unknown argument ${a} (only --root DIR and --debug)`);
  }
  return out;
}

function say(text: string): void {
  process.stdout.write(process.stdout.isTTY ? `\n\x1b[1m${text}\x1b[0m\n` : `\n${text}\n`);
}

async function stowage(globals: string[], args: string[]): Promise<void> {
  const shown = args.map((a) => (/[\s{}"']/.test(a) ? `'${a}'` : a)).join(' ');
  process.stdout.write(`\n$ stowage ${shown}\n`);
  const code = await main([...globals, ...args]);
  if (code !== 0) throw new Error(`stowage ${shown} exited with ${code}`);
}

/** A short `ls -lR`-like view of a checked-out tree. */
function listTree(root: string): string[] {
  const lines: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(full);
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      if (st.isSymbolicLink()) lines.push(`  l ${mode}  /${r} -> ${fs.readlinkSync(full)}`);
      else if (st.isDirectory()) { lines.push(`  d ${mode}  /${r}/`); walk(full, r); }
      else lines.push(`  f ${mode}  /${r} (${st.size} bytes)`);
    }
  };
  walk(root, '');
  return lines;
}

/** Stowage's own registry server, read-only, at DEMO_PORT when it is free, else at any free port. */
async function serve(store: Parameters<typeof startRegistryServer>[0]): Promise<RegistryServer> {
  try {
    return await startRegistryServer(store, { listen: `127.0.0.1:${DEMO_PORT}`, readOnly: true });
  } catch (e) {
    if (stowageErrorOf(e)?.data.syscallCode !== 'EADDRINUSE') throw e;
    return startRegistryServer(store, { listen: '127.0.0.1:0', readOnly: true });
  }
}

/** How the user runs the command line right after `npm ci`, with the demo's global options. */
function commandLine(globals: string[]): string {
  return ['npx', 'stowage', ...globals].join(' ');
}

async function run(): Promise<void> {
  const globals = globalArgs(process.argv.slice(2));
  const image = await makeDemoImage();
  const repoName = 'demo/hello';
  // The registry serves its own private, temporary store: only the pulls below touch the user's store.
  await using served = await openStowage({ temporary: true });
  const registry = await serve(served);
  const ref = `${registry.address}/${repoName}:latest`;
  await served.addImage(image, { ref });
  const checkoutDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-demo-'));
  try {
    say(`Stowage demo — offline: a generated image (${image.layers.length} layers: files, a symlink, a whiteout) served at ${registry.address}`);
    await stowage(globals, ['pull', ref]);
    await stowage(globals, ['images', `${registry.address}/${repoName}`]);
    await stowage(globals, ['history', ref]);
    await stowage(globals, ['inspect', '--format', '{{.Id}} {{.Os}}/{{.Architecture}} layers={{len .RootFS.Layers}} cmd={{json .Config.Cmd}}', ref]);
    const rootfs = path.join(checkoutDir, 'rootfs');
    await stowage(globals, ['checkout', ref, rootfs]);
    say(`The merged root filesystem in ${rootfs}:`);
    process.stdout.write(listTree(rootfs).join('\n') + '\n');
    const whitedOut = fs.existsSync(path.join(rootfs, 'usr/share/demo/old.txt'));
    process.stdout.write(`\n  /etc/motd: ${fs.readFileSync(path.join(rootfs, 'etc/motd'), 'utf8').trim()}\n`);
    process.stdout.write(`  /usr/share/demo/old.txt (deleted by a whiteout in layer 2): ${whitedOut ? 'STILL PRESENT (bug!)' : 'absent, as it should be'}\n`);
    const cli = commandLine(globals);
    say(`Done. The image stays in the store: try \`${cli} images\`, \`${cli} system df\`, \`${cli} rmi ${ref}\`.`);
    if (whitedOut) process.exitCode = 1;
  } finally {
    await registry.close();
    fs.rmSync(checkoutDir, { recursive: true, force: true });
  }
}

run().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
