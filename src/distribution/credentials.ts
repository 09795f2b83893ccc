import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, NotFoundError, StowageError, fromSystemError, isNotFound } from '../errors/index.js';
import { DOCKER_HUB_API_HOST, DOCKER_HUB_CONFIG_KEY } from './hosts.js';

/**
 * Registry credentials: explicit ones, docker's config file (`auths`, `credsStore`, `credHelpers` with
 * `docker-credential-<x>` programs), and writing that same file for login/logout.
 */
export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token ("identity token"): used with grant_type=refresh_token, no username. */
  identityToken?: string;
  /** A bearer token to use as is (registrytoken in docker's config). */
  registryToken?: string;
}

/** Looks up credentials for a registry API host (`127.0.0.1:5000`, `registry-1.docker.io`). */
export type CredentialSource = (host: string) => Promise<Credentials | undefined>;

/** docker's config.json as far as credentials go (other keys are kept untouched on write). */
interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string; email?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

/** `$DOCKER_CONFIG`, else `~/.docker`. */
export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || path.join(env.HOME || os.homedir(), '.docker');
}

/** The config.json key for a host: Docker Hub uses its legacy index URL, others the bare host. */
export function configKey(host: string): string {
  return host === DOCKER_HUB_API_HOST || host === 'docker.io' || host === 'index.docker.io' ? DOCKER_HUB_CONFIG_KEY : host;
}

/** docker's ConvertToHostname: strips a scheme and any path. */
function keyToHost(key: string): string {
  const noScheme = key.replace(/^[a-z]+:\/\//i, '');
  return noScheme.split('/')[0]!.toLowerCase();
}

function readConfig(dir: string): DockerConfigFile {
  const file = path.join(dir, 'config.json');
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    if (isNotFound(e)) return {};
    throw fromSystemError(e, file);
  }
  if (text.trim() === '') return {};
  try { return JSON.parse(text) as DockerConfigFile; } catch (e) {
    throw new InvalidArgumentError(`${file}: invalid JSON: ${(e as Error).message}`, { file }, { cause: e });
  }
}

function writeConfig(dir: string, cfg: DockerConfigFile): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'config.json');
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(cfg, null, '\t'), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** Runs `docker-credential-<helper> <action>` with `input` on stdin. */
function runHelper(helper: string, action: 'get' | 'store' | 'erase', input: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, [action], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.resume();
    child.on('error', (e) => reject(new NotFoundError(`credential helper docker-credential-${helper}: ${e.message}`, { helper }, { cause: e })));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout }));
    // A helper may exit without reading its input (EPIPE): its exit code says what went wrong.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

async function fromHelper(helper: string, serverKey: string): Promise<Credentials | undefined> {
  const { code, stdout } = await runHelper(helper, 'get', serverKey);
  if (code !== 0) {
    if (/credentials not found/i.test(stdout)) return undefined;
    throw new StowageError('Unknown', `docker-credential-${helper} get failed: ${stdout.trim().slice(0, 200)}`, { helper });
  }
  let v: { Username?: string; Secret?: string };
  try { v = JSON.parse(stdout) as typeof v; } catch { throw new StowageError('Unknown', `docker-credential-${helper}: invalid output`, { helper }); }
  if (!v.Secret) return undefined;
  // docker's convention: Username "<token>" means the secret is an identity token.
  return v.Username === '<token>' ? { identityToken: v.Secret } : { username: v.Username ?? '', password: v.Secret };
}

function fromAuthEntry(e: NonNullable<DockerConfigFile['auths']>[string]): Credentials | undefined {
  const c: Credentials = {};
  if (e.auth) {
    const raw = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = raw.indexOf(':');
    if (i < 0) throw new InvalidArgumentError('docker config: invalid auth entry (no colon)');
    c.username = raw.slice(0, i);
    c.password = raw.slice(i + 1);
  } else if (e.username !== undefined) {
    c.username = e.username;
    c.password = e.password ?? '';
  }
  if (e.identitytoken) c.identityToken = e.identitytoken;
  if (e.registrytoken) c.registryToken = e.registrytoken;
  return Object.keys(c).length ? c : undefined;
}

/** Credentials from docker's config file in `configDir` (default `$DOCKER_CONFIG` or ~/.docker). */
export function dockerConfigCredentials(configDir?: string): CredentialSource {
  return async (host) => {
    const dir = configDir ?? dockerConfigDir();
    const cfg = readConfig(dir);
    const key = configKey(host);
    const wantHost = keyToHost(key);
    const helper = cfg.credHelpers?.[key] ?? cfg.credHelpers?.[host];
    if (helper) return fromHelper(helper, key);
    if (cfg.credsStore) {
      const c = await fromHelper(cfg.credsStore, key);
      if (c) return c;
    }
    const auths = cfg.auths ?? {};
    const entry = auths[key] ?? Object.entries(auths).find(([k]) => keyToHost(k) === wantHost)?.[1];
    return entry ? fromAuthEntry(entry) : undefined;
  };
}

/** Fixed credentials by host (keys: bare hosts, config.json keys, or `docker.io` for Docker Hub). */
export function staticCredentials(map: Record<string, Credentials>): CredentialSource {
  return async (host) => {
    const hub = configKey(host) === DOCKER_HUB_CONFIG_KEY;
    return map[host] ?? map[configKey(host)] ?? (hub ? map['docker.io'] ?? map['index.docker.io'] : undefined);
  };
}

/** The first source that knows the host wins. */
export function chainCredentials(...sources: CredentialSource[]): CredentialSource {
  return async (host) => {
    for (const s of sources) {
      const c = await s(host);
      if (c) return c;
    }
    return undefined;
  };
}

/** Stores credentials the way `docker login` does: the helper for the host, else credsStore, else `auths`. */
export async function storeCredentials(host: string, creds: { username: string; password: string }, configDir = dockerConfigDir()): Promise<void> {
  const cfg = readConfig(configDir);
  const key = configKey(host);
  const helper = cfg.credHelpers?.[key] ?? cfg.credsStore;
  if (helper) {
    const { code, stdout } = await runHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: creds.username, Secret: creds.password }));
    if (code !== 0) throw new StowageError('Unknown', `docker-credential-${helper} store failed: ${stdout.trim().slice(0, 200)}`, { helper });
    // docker keeps an empty entry so that `docker info`/logout know the registry.
    cfg.auths = { ...cfg.auths, [key]: {} };
  } else {
    cfg.auths = { ...cfg.auths, [key]: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') } };
  }
  writeConfig(configDir, cfg);
}

/** Removes stored credentials (`docker logout`). NotFound when there were none. */
export async function eraseCredentials(host: string, configDir = dockerConfigDir()): Promise<void> {
  const cfg = readConfig(configDir);
  const key = configKey(host);
  const helper = cfg.credHelpers?.[key] ?? cfg.credsStore;
  const had = cfg.auths?.[key] !== undefined;
  if (helper) await runHelper(helper, 'erase', key);
  if (!had && !helper) throw new NotFoundError(`Not logged in to ${host}`, { host });
  if (cfg.auths) delete cfg.auths[key];
  writeConfig(configDir, cfg);
}
