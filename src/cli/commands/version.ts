import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandSpec } from '../command.js';
import { parseTemplate } from '../template.js';

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/**
 * The package version, from the nearest package.json above this file: the module runs from src/,
 * from tsc's dist/ and from the CLI bundle in dist/cli/bundle/, each at its own depth.
 */
export function stowageVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'stowage') return pkg.version ?? 'unknown';
    } catch { /* no package.json here: look one folder up */ }
    const up = path.dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}

/**
 * The store root the library would open. The same rule as the library's defaultRoot(), restated here so that
 * `stowage version` starts without loading the store's modules (they cost more than the whole command).
 */
function storeRoot(given: string | undefined, env: NodeJS.ProcessEnv): string {
  if (given) return path.resolve(given);
  if (env.STOWAGE_ROOT) return path.resolve(env.STOWAGE_ROOT);
  if (env.XDG_DATA_HOME) return path.join(path.resolve(env.XDG_DATA_HOME), 'stowage');
  return path.join(os.homedir(), '.local', 'share', 'stowage');
}

export const version: CommandSpec = {
  name: 'version',
  usage: '[OPTIONS]',
  summary: 'Show the Stowage version information',
  options: [{ name: 'format', short: 'f', type: 'string', value: 'string', help: "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template" }],
  async run(ctx, p) {
    const info = {
      Version: stowageVersion(),
      NodeVersion: process.version,
      Os: process.platform,
      Arch: ARCH[process.arch] ?? process.arch,
      Root: storeRoot(ctx.globals.root, ctx.io.env),
    };
    const format = p.string('format');
    if (format === 'json') { ctx.io.stdout.write(JSON.stringify(info) + '\n'); return; }
    if (format) { ctx.io.stdout.write(parseTemplate(format).execute(info) + '\n'); return; }
    ctx.io.stdout.write(
      'Stowage:\n' +
      ` Version:           ${info.Version}\n` +
      ` Node.js version:   ${info.NodeVersion}\n` +
      ` OS/Arch:           ${info.Os}/${info.Arch}\n` +
      ` Store root:        ${info.Root}\n`,
    );
  },
};
