import { InvalidArgumentError } from '../../errors/index.js';
import type { CommandSpec } from '../command.js';
import { ask, readAll } from '../prompt.js';

/** What docker shows for Docker Hub; any other server is shown as given. */
export const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';

export const login: CommandSpec = {
  name: 'login',
  usage: '[OPTIONS] [SERVER]',
  summary: 'Authenticate to a registry',
  description: "Defaults to Docker Hub if no server is specified. Credentials go to docker's config file\n($DOCKER_CONFIG/config.json, else ~/.docker/config.json), or its credential helper, as `docker login` does.",
  options: [
    { name: 'password', short: 'p', type: 'string', value: 'string', help: 'Password or Personal Access Token (PAT)' },
    { name: 'password-stdin', type: 'bool', help: 'Take the Password or Personal Access Token (PAT) from stdin' },
    { name: 'username', short: 'u', type: 'string', value: 'string', help: 'Username' },
  ],
  args: { min: 0, max: 1 },
  async run(ctx, p) {
    const server = p.args[0] ?? DOCKER_HUB_SERVER;
    let username = p.string('username')?.trim();
    let password = p.string('password');
    if (password !== undefined) {
      ctx.io.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
      if (p.bool('password-stdin')) throw new InvalidArgumentError('--password and --password-stdin are mutually exclusive');
    }
    if (p.bool('password-stdin')) {
      if (!username) throw new InvalidArgumentError('Must provide --username with --password-stdin');
      password = (await readAll(ctx.io.stdin)).replace(/\r?\n$/, '');
    }
    if (!username || password === undefined) {
      if (!ctx.io.stdin.isTTY) throw new InvalidArgumentError('Cannot perform an interactive login from a non TTY device');
      if (!username) username = (await ask(ctx, 'Username: ')).trim();
      if (password === undefined) password = await ask(ctx, 'Password: ', true);
    }
    if (!username) throw new InvalidArgumentError('Username cannot be empty');
    if (!password) throw new InvalidArgumentError('Password Required');
    const { login: registryLogin, dockerConfigDir } = await import('../../distribution/index.js');
    await registryLogin(server, username, password, { configDir: dockerConfigDir(ctx.io.env), signal: ctx.signal });
    ctx.io.stdout.write('Login Succeeded\n');
  },
};
