import { isStowageError } from '../../errors/index.js';
import type { CommandSpec } from '../command.js';
import { DOCKER_HUB_SERVER } from './login.js';

export const logout: CommandSpec = {
  name: 'logout',
  usage: '[SERVER]',
  summary: 'Log out from a registry',
  description: 'If no server is specified, Docker Hub is assumed.',
  args: { min: 0, max: 1 },
  async run(ctx, p) {
    const server = p.args[0] ?? DOCKER_HUB_SERVER;
    const { logout: registryLogout, dockerConfigDir } = await import('../../distribution/index.js');
    try {
      await registryLogout(server, { configDir: dockerConfigDir(ctx.io.env) });
    } catch (err) {
      // docker: logging out of a registry you are not logged in to is not an error.
      if (isStowageError(err, 'NotFound')) { ctx.io.stdout.write(`Not logged in to ${server}\n`); return 0; }
      throw err;
    }
    ctx.io.stdout.write(`Removing login credentials for ${server}\n`);
  },
};
