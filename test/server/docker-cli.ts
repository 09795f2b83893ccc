/**
 * Runs the real docker command line (28.x, /usr/local/bin/docker) against a DOCKER_HOST, with a private
 * config directory so that no login of the machine's user leaks into a test.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';

export const DOCKER_CLI = '/usr/local/bin/docker';

export interface DockerRun { code: number; stdout: string; stderr: string }

export function dockerCli(host: string, args: string[], opts: { config: string; input?: Buffer | string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<DockerRun> {
  if (!fs.existsSync(DOCKER_CLI)) throw new Error(`${DOCKER_CLI} missing: the docker CLI 28 is needed by these tests`);
  return new Promise((resolve, reject) => {
    const child = spawn(DOCKER_CLI, args, {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: opts.config, DOCKER_HOST: host, DOCKER_CONFIG: opts.config, NO_COLOR: '1', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Text without ANSI colour sequences (docker's tree view colours even when not on a terminal). */
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '');
}
