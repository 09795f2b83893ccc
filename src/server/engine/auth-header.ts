/**
 * `X-Registry-Auth`: base64url of docker's AuthConfig JSON (`{username, password, serveraddress}` or
 * `{identitytoken}`, also `registrytoken`). Like dockerd, a header that does not decode is ignored. Unlike
 * dockerd, a request with no usable credentials falls back to the store's docker config.json
 * (credential helpers included): the server runs as the user who owns the store and its logins.
 */
import type { Credentials } from '../../images/index.js';

export function credentialsFromHeader(value: string | string[] | undefined): Credentials | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return undefined;
  let parsed: unknown;
  try {
    // Buffer's base64 decoder takes both alphabets, padded or not (the CLI sends URL-safe; old clients standard).
    parsed = JSON.parse(Buffer.from(raw.trim(), 'base64').toString('utf8'));
  } catch { return undefined; }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  return toCredentials(parsed as Record<string, unknown>);
}

/** One AuthConfig object as credentials (none when it holds none). */
function toCredentials(o: Record<string, unknown>): Credentials | undefined {
  const str = (k: string): string | undefined => (typeof o[k] === 'string' && o[k] !== '' ? o[k] as string : undefined);
  const creds: Credentials = {};
  const username = str('username');
  const password = str('password');
  const identityToken = str('identitytoken') ?? str('IdentityToken');
  const registryToken = str('registrytoken') ?? str('RegistryToken');
  if (username) creds.username = username;
  if (password) creds.password = password;
  if (identityToken) creds.identityToken = identityToken;
  if (registryToken) creds.registryToken = registryToken;
  // The CLI sends "{}" (base64 "e30=") when it has no login: no credentials, so config.json is consulted.
  return Object.keys(creds).length > 0 ? creds : undefined;
}

/** The key docker's CLI files Docker Hub's login under in X-Registry-Config. */
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

/**
 * `X-Registry-Config` (POST /build): base64 of a JSON map from registry address to AuthConfig, every
 * login the client has, for the pulls of FROM lines. Returns a lookup by reference domain.
 */
export function credentialsFromConfigHeader(value: string | string[] | undefined): (domain: string) => Credentials | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  const byHost = new Map<string, Credentials>();
  let parsed: unknown;
  try { parsed = raw ? JSON.parse(Buffer.from(raw.trim(), 'base64').toString('utf8')) : undefined; } catch { parsed = undefined; }
  if (typeof parsed === 'object' && parsed !== null) {
    for (const [key, v] of Object.entries(parsed as Record<string, unknown>)) {
      if (typeof v !== 'object' || v === null) continue;
      const c = toCredentials(v as Record<string, unknown>);
      // Keys are addresses as the client logged in: a URL for Docker Hub, host[:port] (maybe with a scheme) otherwise.
      const host = key === DOCKER_HUB_KEY ? 'docker.io' : key.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
      if (c) byHost.set(host, c);
    }
  }
  return (domain) => byHost.get(domain);
}
