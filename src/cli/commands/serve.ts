/**
 * `stowage serve`: puts the store on the network, until Ctrl-C or SIGTERM (then a graceful stop).
 * Each kind of server is one entry of SERVER_KINDS, started when its option is given; several kinds
 * may run at once over the same opened store.
 */
import fs from 'node:fs';
import { InvalidArgumentError, fromSystemError } from '../../errors/index.js';
import type { OptionSpec, ParsedArgs } from '../args.js';
import type { EngineBackend } from '../../server/index.js';
import type { CommandSpec, Context } from '../command.js';
import { UsageError } from '../usage.js';
import { stowageVersion } from './version.js';

/** A started server: what to tell the user, and how to stop it gracefully. */
export interface RunningServer {
  description: string;
  close(): Promise<void>;
}

/** One kind of server `serve` can run. */
export interface ServerKind {
  /** The option that turns this kind on (its value is where to listen). */
  option: OptionSpec;
  /** Options that only this kind reads. */
  options: OptionSpec[];
  start(store: EngineBackend, p: ParsedArgs, ctx: Context, log: (line: string) => void): Promise<RunningServer>;
}

function readFile(file: string, what: string): string {
  try { return fs.readFileSync(file, 'utf8'); } catch (e) { throw fromSystemError(e, `${what} ${file}`); }
}

/** `--registry ADDR`: the OCI distribution API (src/server/registry). */
const registryKind: ServerKind = {
  option: { name: 'registry', type: 'string', value: 'addr', help: 'Serve the store as an OCI registry at ADDR (HOST:PORT or :PORT)' },
  options: [
    { name: 'registry-name', type: 'string', value: 'host:port', help: 'Registry name pushed images are recorded under (default: the listen address)' },
    { name: 'mirror-of', type: 'string', value: 'url', help: 'Pull-through mirror of this upstream registry (e.g. https://registry-1.docker.io)' },
    { name: 'htpasswd', type: 'string', value: 'file', help: 'Require Basic auth with users from this htpasswd file (bcrypt, htpasswd -B)' },
    { name: 'tls-cert', type: 'string', value: 'file', help: 'Serve HTTPS with this certificate (PEM)' },
    { name: 'tls-key', type: 'string', value: 'file', help: 'Private key of --tls-cert (PEM)' },
    { name: 'read-only', type: 'bool', help: 'Refuse pushes and deletes' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Do not log requests' },
  ],
  async start(store, p, _ctx, log) {
    const cert = p.string('tls-cert');
    const key = p.string('tls-key');
    if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
    const { startRegistryServer } = await import('../../server/index.js');
    const server = await startRegistryServer(store, {
      listen: p.string('registry')!,
      ...(p.string('registry-name') ? { name: p.string('registry-name') } : {}),
      ...(p.string('mirror-of') ? { mirrorOf: p.string('mirror-of') } : {}),
      ...(p.string('htpasswd') ? { htpasswd: p.string('htpasswd') } : {}),
      ...(cert && key ? { tls: { cert: readFile(cert, 'certificate'), key: readFile(key, 'key') } } : {}),
      readOnly: p.bool('read-only'),
      ...(p.bool('quiet') ? {} : { log }),
    });
    const extra = [p.bool('read-only') ? 'read-only' : '', p.string('mirror-of') ? `mirror of ${p.string('mirror-of')}` : ''].filter(Boolean);
    return { description: `registry at ${server.url} (images pushed are named ${server.name}/...)${extra.length ? `, ${extra.join(', ')}` : ''}`, close: () => server.close() };
  },
};

/** `--docker-host unix:///PATH|tcp://127.0.0.1:PORT`: the Docker Engine API's image surface (src/server/engine). */
const engineKind: ServerKind = {
  option: { name: 'docker-host', type: 'string', value: 'host', help: 'Serve the Docker Engine API (images) at unix:///PATH/docker.sock or tcp://127.0.0.1:PORT' },
  options: [
    { name: 'group', type: 'string', value: 'group', help: 'Group given access to the --docker-host socket (mode 0660; default 0600, owner only)' },
  ],
  async start(store, p) {
    const { startEngineServer } = await import('../../server/index.js');
    const server = await startEngineServer(store, {
      host: p.string('docker-host')!,
      ...(p.string('group') !== undefined ? { group: p.string('group')! } : {}),
      version: stowageVersion(),
    });
    return { description: `Docker Engine API at ${server.address} (DOCKER_HOST=${server.address})`, close: () => server.close() };
  },
};

/** Every kind of server, in the order they start. */
export const SERVER_KINDS: ServerKind[] = [registryKind, engineKind];

export const serve: CommandSpec = {
  name: 'serve',
  usage: '[OPTIONS]',
  summary: 'Serve the store to other tools (an OCI registry, the Docker Engine API)',
  description: 'Runs until interrupted (Ctrl-C or SIGTERM), then stops gracefully: requests in flight finish.\nRequest logs go to standard error.',
  options: SERVER_KINDS.flatMap((k) => [k.option, ...k.options]),
  async run(ctx, p) {
    const kinds = SERVER_KINDS.filter((k) => p.string(k.option.name) !== undefined);
    if (kinds.length === 0) throw new UsageError(`say what to serve: ${SERVER_KINDS.map((k) => `--${k.option.name}`).join(' or ')}`);
    for (const k of SERVER_KINDS) {
      if (kinds.includes(k)) continue;
      const stray = k.options.find((o) => p.has(o.name));
      if (stray) throw new InvalidArgumentError(`--${stray.name} needs --${k.option.name}`);
    }
    const store = await ctx.store();
    const log = (line: string): void => { ctx.io.stderr.write(`${line}\n`); };
    const running: RunningServer[] = [];
    const stop = new AbortController();
    const onTerm = (): void => stop.abort();
    process.once('SIGTERM', onTerm);
    try {
      for (const k of kinds) {
        const r = await k.start(store, p, ctx, log);
        running.push(r);
        ctx.io.stdout.write(`Serving ${r.description}\n`);
      }
      await new Promise<void>((resolve) => {
        if (ctx.signal.aborted || stop.signal.aborted) { resolve(); return; }
        ctx.signal.addEventListener('abort', () => resolve(), { once: true });
        stop.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      ctx.io.stdout.write('Stopping: waiting for requests in flight\n');
    } finally {
      process.off('SIGTERM', onTerm);
      await Promise.allSettled(running.map((r) => r.close()));
    }
  },
};
