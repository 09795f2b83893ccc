/**
 * `DOCKER_BUILDKIT=0 docker build` (the docker CLI 28) against `stowage serve --docker-host`: the context
 * tar goes to POST /build, the classic builder's output comes back as docker prints it, `-q` and
 * `--iidfile` get the image ID, errors end the stream with docker's exit code.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from '../../src/build/index.js';
import { openStowage } from '../../src/images/index.js';
import { ensureBuilt } from '../cli/binary.js';
import { dockerCli, type DockerRun } from '../server/docker-cli.js';
import { serveDockerHost, type Served } from '../server/serve.js';
import { startRegistry } from '../harness/registry.js';
import { comparableBuildLines, makeContext } from './fixtures.js';

let work: string;
let ctxDir: string;
let served: Served;

const docker = (args: string[]): Promise<DockerRun> =>
  dockerCli(served.address, args, { config: path.join(work, 'docker-config'), env: { DOCKER_BUILDKIT: '0' } });


beforeAll(async () => {
  await ensureBuilt();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-engine-build-'));
  ctxDir = path.join(work, 'ctx');
  makeContext(ctxDir);
  fs.mkdirSync(path.join(work, 'docker-config'));
  served = await serveDockerHost(path.join(work, 'store'), `unix://${path.join(work, 's.sock')}`);
});

afterAll(async () => {
  await served?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('docker build against stowage serve', () => {
  it('builds with the classic builder and prints what the library build prints', async () => {
    const r = await docker(['build', '-t', 'base:1', '-f', path.join(ctxDir, 'Dockerfile.base'), ctxDir]);
    expect(r.code).toBe(0);
    const lib = await openStowage({ root: path.join(work, 'lib-store') });
    const lines: string[] = [];
    try {
      await build(lib, { context: ctxDir, dockerfile: path.join(ctxDir, 'Dockerfile.base'), tags: ['base:1'], out: (l) => lines.push(l) });
    } finally {
      await lib.close();
    }
    expect(comparableBuildLines(r.stdout)).toEqual(comparableBuildLines(lines.join('\n')));
    expect(r.stdout).toMatch(/Successfully built [0-9a-f]{12}\nSuccessfully tagged base:1\n/);
  });

  it('answers -q and --iidfile with the image ID, and a second build from the cache', async () => {
    const iid = path.join(work, 'iid');
    const args = ['build', '-f', path.join(ctxDir, 'Dockerfile.main'), '--build-arg', 'WHO=me', '-t', 'main:1', ctxDir];
    const first = await docker(['build', '--iidfile', iid, ...args.slice(1)]);
    expect(first.code).toBe(0);
    const id = fs.readFileSync(iid, 'utf8').trim();
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    const q = await docker(['build', '-q', ...args.slice(1)]);
    expect(q.stdout.trim()).toBe(id);
    const again = await docker(args);
    expect(again.stdout).toContain(' ---> Using cache');
    expect(again.stdout).toContain(`Successfully built ${id.slice(7, 19)}\n`); // every step from the cache: the same image
    const inspect = await docker(['image', 'inspect', '--format', '{{.Id}} {{json .Config.Cmd}}', 'main:1']);
    expect(inspect.stdout.trim()).toBe(`${id} ["/bin/sh","-c","echo final"]`);
  });

  it('pulls a FROM image from a registry with the client\'s login (X-Registry-Config)', async () => {
    const registry = await startRegistry({ auth: 'basic' });
    try {
      const ref = `${registry.host}/priv/base:1`;
      const lib = await openStowage({ root: path.join(work, 'lib-store') });
      try {
        await lib.tag('base:1', ref);
        await lib.push(ref, { credentials: { username: registry.username, password: registry.password } });
      } finally {
        await lib.close();
      }
      fs.writeFileSync(path.join(work, 'Dockerfile.private'), `FROM ${ref}\nCOPY a.txt /private\n`);
      const denied = await docker(['build', '-f', path.join(work, 'Dockerfile.private'), ctxDir]);
      expect(denied.code).not.toBe(0);
      const login = await dockerCli(served.address, ['login', registry.host, '-u', registry.username, '--password-stdin'], { config: path.join(work, 'docker-config'), input: registry.password });
      expect(login.code).toBe(0);
      const r = await docker(['build', '-t', 'private:1', '-f', path.join(work, 'Dockerfile.private'), ctxDir]);
      expect(r.stderr).not.toMatch(/error/i);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Successfully tagged private:1');
      expect(r.stdout).toContain('1: Pulling from priv/base');
      expect(r.stdout).toContain(`Status: Downloaded newer image for ${ref}`);
    } finally {
      await registry.stop();
    }
  });

  it('ends with docker’s error for a RUN step or a file the .dockerignore left out', async () => {
    fs.writeFileSync(path.join(work, 'Dockerfile.run'), 'FROM scratch\nRUN true\n');
    const run = await docker(['build', '-f', path.join(work, 'Dockerfile.run'), ctxDir]);
    expect(run.code).not.toBe(0);
    expect(run.stderr + run.stdout).toContain('RUN at line 2');
    fs.writeFileSync(path.join(work, 'Dockerfile.ignored'), 'FROM scratch\nCOPY x.tmp /\n');
    const ignored = await docker(['build', '-f', path.join(work, 'Dockerfile.ignored'), ctxDir]);
    expect(ignored.code).not.toBe(0);
    expect(ignored.stderr + ignored.stdout).toContain('file not found in build context or excluded by .dockerignore: stat x.tmp');
  });
});
