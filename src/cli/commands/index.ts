/** Every command of `stowage`, and the management groups their two-word names belong to. */
import type { CommandSpec } from '../command.js';
import { build } from './build.js';
import { check } from './check.js';
import { checkout } from './checkout.js';
import { commit } from './commit.js';
import { containerChanges } from './container-changes.js';
import { containerCreate } from './container-create.js';
import { containerLs } from './container-ls.js';
import { containerMounts } from './container-mounts.js';
import { containerRm } from './container-rm.js';
import { events } from './events.js';
import { gc } from './gc.js';
import { history } from './history.js';
import { imagePrune } from './image-prune.js';
import { imageSquash } from './image-squash.js';
import { images } from './images.js';
import { importCmd } from './import.js';
import { inspect } from './inspect.js';
import { load } from './load.js';
import { login } from './login.js';
import { logout } from './logout.js';
import { pull } from './pull.js';
import { push } from './push.js';
import { rmi } from './rmi.js';
import { save } from './save.js';
import { search } from './search.js';
import { serve } from './serve.js';
import { systemDf } from './system-df.js';
import { tag } from './tag.js';
import { version } from './version.js';

export const COMMANDS: CommandSpec[] = [
  pull, push, images, rmi, tag, inspect, history, imagePrune, systemDf, events, search, check, gc, checkout, build,
  containerCreate, containerLs, containerChanges, containerRm, containerMounts, login, logout, serve, version,
  save, load, importCmd, commit, imageSquash,
];

/** The top-level commands listed first in `stowage --help`. */
export const COMMON = ['build', 'pull', 'push', 'images', 'rmi', 'tag', 'inspect', 'history', 'checkout', 'login', 'logout', 'version'];

export const GROUPS: Record<string, string> = {
  container: 'Manage working containers (writable layers on images)',
  image: 'Manage images',
  system: 'Manage the store',
};

/** Finds the command named by the first one or two words; `words` is how many it used. */
export function findCommand(argv: string[]): { spec: CommandSpec; words: number } | undefined {
  const two = argv.slice(0, 2).join(' ');
  const one = argv[0] ?? '';
  for (const spec of COMMANDS) if (argv.length >= 2 && (spec.name === two || spec.aliases?.includes(two))) return { spec, words: 2 };
  for (const spec of COMMANDS) if (spec.name === one || spec.aliases?.includes(one)) return { spec, words: 1 };
  return undefined;
}

/** Subcommands of a group with the word used under it: [['ls', images], ['prune', imagePrune]...]. */
export function groupCommands(group: string): Array<[string, CommandSpec]> {
  const out: Array<[string, CommandSpec]> = [];
  for (const spec of COMMANDS) {
    const name = [spec.name, ...(spec.aliases ?? [])].find((n) => n.startsWith(`${group} `));
    if (name) out.push([name.slice(group.length + 1), spec]);
  }
  return out.sort(([a], [b]) => a.localeCompare(b));
}
