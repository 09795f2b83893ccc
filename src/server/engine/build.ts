/**
 * `POST /build` for docker's classic builder (`DOCKER_BUILDKIT=0 docker build`): the context tar in the
 * body, the options in the query (t, dockerfile, buildargs, target, platform, nocache, pull, cachefrom, q),
 * the builder's output as a JSON message stream of `stream` lines, the image ID as an `aux` message.
 * Remote contexts and BuildKit sessions are refused: there is no network fetch and no BuildKit here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { build, extractContextArchive } from '../../build/index.js';
import type { JSONMessage } from '../../images/index.js';
import { credentialsFromConfigHeader } from './auth-header.js';
import { badParameter } from './errors.js';
import { MessageStream } from './json-messages.js';
import { boolParam, type EngineRequest } from './request.js';
import type { Route } from './router.js';

function jsonQuery<T>(q: URLSearchParams, name: string, check: (v: unknown) => v is T, fallback: T): T {
  const raw = q.get(name);
  if (raw === null || raw === '') return fallback;
  let v: unknown;
  try { v = JSON.parse(raw); } catch { throw badParameter(`invalid ${name} parameter: ${raw}`); }
  if (v === null) return fallback;
  if (!check(v)) throw badParameter(`invalid ${name} parameter: ${raw}`);
  return v;
}
const isStringMap = (v: unknown): v is Record<string, string | null> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string' || x === null);
const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

async function postBuild(r: EngineRequest): Promise<void> {
  const q = r.query;
  if (q.get('remote')) throw badParameter('remote build contexts are not supported: send the context in the request body');
  if (q.get('version') === '2') throw badParameter('BuildKit is not supported by this server: use the classic builder (DOCKER_BUILDKIT=0)');
  const buildArgs: Record<string, string> = {};
  for (const [k, v] of Object.entries(jsonQuery(q, 'buildargs', isStringMap, {}))) if (v !== null) buildArgs[k] = v;
  const cacheFrom = jsonQuery(q, 'cachefrom', isStringList, []);
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(jsonQuery(q, 'labels', isStringMap, {}))) labels[k] = v ?? '';
  const quiet = boolParam(q, 'q');
  const dockerfile = q.get('dockerfile') || 'Dockerfile';
  if (path.isAbsolute(dockerfile) || path.posix.normalize(dockerfile).startsWith('..')) throw badParameter(`the Dockerfile (${dockerfile}) must be within the build context`);

  const dir = r.store.scratchDir('build-context');
  fs.mkdirSync(dir);
  const out = new MessageStream(r.res);
  try {
    await extractContextArchive(r.req, dir, r.signal);
    const result = await build(r.store, {
      context: dir,
      dockerfile: path.join(dir, dockerfile),
      tags: q.getAll('t'),
      buildArgs,
      ...(q.get('target') ? { target: q.get('target')! } : {}),
      ...(q.get('platform') ? { platform: q.get('platform')! } : {}),
      noCache: boolParam(q, 'nocache'),
      pull: boolParam(q, 'pull'),
      cacheFrom,
      labels,
      // The client's logins for the FROM pulls (without one, the store's own docker config applies).
      credentials: credentialsFromConfigHeader(r.req.headers['x-registry-config']),
      out: quiet ? () => undefined : (line) => out.write({ stream: `${line}\n` }),
      // A missing base image is pulled with docker's progress messages, which the CLI draws as in a pull.
      ...(quiet ? {} : { onPullProgress: (m: JSONMessage) => out.write(m) }),
      // docker's aux message with the image ID (the CLI's --iidfile and -q read it), before `Successfully built`.
      onBuilt: (id) => out.write({ aux: { ID: id } }),
      signal: r.signal,
    });
    if (quiet) out.write({ stream: `${result.id}\n` });
    out.end();
  } catch (e) {
    out.fail(e);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export const BUILD_ROUTES: Route[] = [
  { method: 'POST', path: /^\/build$/, handle: postBuild },
];
