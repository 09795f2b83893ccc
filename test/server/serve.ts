/**
 * `stowage serve --docker-host HOST` through the built binary, for tests: started on a private root,
 * ready once it prints its "Serving" line, stopped with SIGTERM (its graceful stop).
 */
import { spawn } from 'node:child_process';
import { BIN, REPO } from '../cli/binary.js';

export interface Served { address: string; output(): string; stop(): Promise<number | null> }

export async function serveDockerHost(root: string, host: string, opts: { env?: NodeJS.ProcessEnv; args?: string[] } = {}): Promise<Served> {
  const child = spawn(process.execPath, [BIN, '--root', root, 'serve', '--docker-host', host, ...(opts.args ?? [])], {
    cwd: REPO, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = await new Promise<string>((resolve, reject) => {
    const check = (): void => {
      const m = /Serving Docker Engine API at (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    };
    child.stdout.on('data', check);
    void exited.then((code) => reject(new Error(`stowage serve exited ${code} before serving:\n${out}`)));
  });
  return {
    address,
    output: () => out,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
