import { RegistryClient, type RegistryClientOptions } from './client.js';
import { eraseCredentials, storeCredentials } from './credentials.js';
import { DOCKER_HUB_API_HOST } from './hosts.js';

export interface LoginOptions extends Pick<RegistryClientOptions, 'insecureRegistries' | 'transport' | 'userAgent'> {
  /** docker config directory; default `$DOCKER_CONFIG` or ~/.docker. */
  configDir?: string;
  signal?: AbortSignal;
}

function loginHost(server: string): string {
  const h = server.replace(/^[a-z]+:\/\//i, '').split('/')[0]!.toLowerCase();
  return h === 'docker.io' || h === 'index.docker.io' || h === '' ? DOCKER_HUB_API_HOST : h;
}

/**
 * `docker login`: checks the credentials against the registry first (Basic or token flow), then stores
 * them in docker's config file (through the configured credential helper when there is one).
 */
export async function login(server: string, username: string, password: string, opts: LoginOptions = {}): Promise<void> {
  const host = loginHost(server);
  const client = new RegistryClient({ ...opts, credentials: async () => undefined });
  await client.checkLogin(host, { username, password }, { signal: opts.signal });
  await storeCredentials(host, { username, password }, opts.configDir);
}

/** `docker logout`: removes the stored credentials (NotFound when not logged in). */
export async function logout(server: string, opts: Pick<LoginOptions, 'configDir'> = {}): Promise<void> {
  await eraseCredentials(loginHost(server), opts.configDir);
}
