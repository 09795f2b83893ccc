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
  const o = parsed as Record<string, unknown>;
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
