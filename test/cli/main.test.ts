// main() in-process for what needs no store: help for every command, dispatch, usage errors.
import { describe, expect, it } from 'vitest';
import { COMMANDS, findCommand, groupCommands } from '../../src/cli/commands/index.js';
import { runCli } from './in-process.js';

const run = (argv: string[]) => runCli(argv, { STOWAGE_ROOT: '/nonexistent/stowage-should-not-be-created' });

describe('main', () => {
  it('prints help for every command and alias without touching a store', async () => {
    for (const spec of COMMANDS) {
      for (const name of [spec.name, ...(spec.aliases ?? [])]) {
        const r = await run([...name.split(' '), '--help']);
        expect(r.code, name).toBe(0);
        expect(r.out.startsWith(`Usage:  stowage ${spec.name}`), name).toBe(true);
        expect(r.err).toBe('');
      }
    }
  });

  it('finds two-word commands before one-word ones and lists groups', () => {
    expect(findCommand(['image', 'ls'])?.spec.name).toBe('images');
    expect(findCommand(['image', 'rm', 'x'])?.spec.name).toBe('rmi');
    expect(findCommand(['image', 'prune'])?.words).toBe(2);
    expect(findCommand(['images', 'ls'])?.words).toBe(1);
    expect(findCommand(['system', 'events'])?.spec.name).toBe('events');
    expect(groupCommands('container').map(([w]) => w)).toEqual(['changes', 'commit', 'create', 'ls', 'mounts', 'rm']);
  });

  it('has one spec per command file, each with a summary and a usage line', () => {
    const names = COMMANDS.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const c of COMMANDS) expect(c.summary.length).toBeGreaterThan(0);
    expect(names).toEqual(expect.arrayContaining(['pull', 'push', 'images', 'rmi', 'tag', 'inspect', 'history', 'image prune', 'system df', 'events', 'check', 'gc', 'checkout', 'container create', 'container ls', 'container changes', 'container rm', 'login', 'logout', 'version', 'save', 'load', 'import', 'commit', 'image squash']));
  });

  it('answers help topics, groups and usage errors with docker\'s texts and codes', async () => {
    expect((await run(['help', 'container'])).out).toMatch(/^Usage: {2}stowage container COMMAND\n/);
    expect((await run([])).out).toMatch(/^Usage: {2}stowage \[OPTIONS\] COMMAND\n/);
    const unknownGroupCmd = await run(['system', 'nope']);
    expect(unknownGroupCmd.code).toBe(1);
    expect(unknownGroupCmd.err).toBe("stowage: unknown command: stowage system nope\n\nUsage:  stowage system\n\nRun 'stowage system --help' for more information\n");
    const rmi = await run(['rmi']);
    expect(rmi.code).toBe(1);
    expect(rmi.err).toBe("stowage: 'stowage rmi' requires at least 1 argument\n\nUsage:  stowage rmi [OPTIONS] IMAGE [IMAGE...]\n\nRun 'stowage rmi --help' for more information\n");
    const many = await run(['images', 'a', 'b']);
    expect(many.err.split('\n')[0]).toBe("stowage: 'stowage images' requires at most 1 argument");
    const flag = await run(['--root']);
    expect(flag.code).toBe(125);
    expect(flag.err.split('\n')[0]).toBe('flag needs an argument: --root');
    const badFilter = await run(['images', '--filter', 'novalue']);
    expect(badFilter.code).toBe(125);
    expect(badFilter.err.split('\n')[0]).toBe('invalid argument "novalue" for "-f, --filter" flag: bad format of filter (expected name=value)');
    const badTemplate = await run(['version', '--format', '{{nope .X}}']);
    expect(badTemplate.code).toBe(1);
    expect(badTemplate.err).toBe('Error: template parsing error: function "nope" not defined\n');
  });
});
