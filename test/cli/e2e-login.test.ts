// `stowage login` / `logout` through the built binary against a real Basic-auth docker-registry.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestImage, pushRaw, type TestImage } from '../harness/images.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { ensureBuilt, stowage, type RunOptions } from './binary.js';

let reg: Registry;
let tmp: string;
let configDir: string;
let image: TestImage;

function run(args: string[], opts: RunOptions = {}) {
  return stowage(['--root', path.join(tmp, 'root'), ...args], { ...opts, env: { DOCKER_CONFIG: configDir, HOME: tmp, ...opts.env } });
}

function config(): { auths?: Record<string, { auth?: string }> } {
  return JSON.parse(fs.readFileSync(path.join(configDir, 'config.json'), 'utf8')) as { auths?: Record<string, { auth?: string }> };
}

beforeAll(async () => {
  await ensureBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-cli-login-'));
  configDir = path.join(tmp, 'docker-config');
  reg = await startRegistry({ auth: 'basic' });
  image = await makeTestImage({ layers: [{ files: { 'hello.txt': 'private\n' } }] });
  await pushRaw(reg.url, 'private/app', 'v1', image, { username: reg.username, password: reg.password });
});

afterAll(async () => {
  await reg?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('login and logout', () => {
  it('cannot pull before logging in', async () => {
    const r = await run(['pull', `${reg.host}/private/app:v1`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`Error: pull access denied for ${reg.host}/private/app, repository does not exist or may require 'stowage login'\n`);
  });

  it('refuses a wrong password and writes nothing', async () => {
    const r = await run(['login', '-u', reg.username, '--password-stdin', reg.host], { input: 'wrong\n' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Error: /);
    expect(fs.existsSync(path.join(configDir, 'config.json'))).toBe(false);
  });

  it('logs in with --password-stdin, writing docker\'s config.json, and the pull then works', async () => {
    const r = await run(['login', '--username', reg.username, '--password-stdin', reg.host], { input: `${reg.password}\n` });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('Login Succeeded\n');
    expect(r.code).toBe(0);
    expect(config().auths?.[reg.host]?.auth).toBe(Buffer.from(`${reg.username}:${reg.password}`).toString('base64'));
    const pull = await run(['pull', `${reg.host}/private/app:v1`]);
    expect(pull.code).toBe(0);
    expect(pull.stdout).toContain(`Digest: ${image.manifest.digest}`);
  });

  it('warns about -p and checks option combinations like docker', async () => {
    const r = await run(['login', '-u', reg.username, '-p', reg.password, reg.host]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    const both = await run(['login', '-u', 'x', '-p', 'y', '--password-stdin', reg.host]);
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('--password and --password-stdin are mutually exclusive');
    const noUser = await run(['login', '--password-stdin', reg.host], { input: 'x\n' });
    expect(noUser.stderr).toBe('Error: Must provide --username with --password-stdin\n');
    const noTty = await run(['login', reg.host]);
    expect(noTty.stderr).toBe('Error: Cannot perform an interactive login from a non TTY device\n');
  });

  it('logs out, removing the entry; a second logout says so and succeeds', async () => {
    const r = await run(['logout', reg.host]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Removing login credentials for ${reg.host}\n`);
    expect(config().auths?.[reg.host]).toBeUndefined();
    const again = await run(['logout', reg.host]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`Not logged in to ${reg.host}\n`);
  });
});
