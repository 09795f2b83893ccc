/**
 * Search: the catalog walk against the real docker-registry (paged with `n` and `Link`), docker's index
 * search (`/v1/search`) against a small in-process index (no real one runs on this machine: Docker Hub's
 * is on the internet), docker's filters and limits over both, and `stowage search`'s output.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient, indexSearch, walkCatalog } from '../../src/distribution/index.js';
import { openStowage, type Stowage } from '../../src/images/index.js';
import { makeTestImage, pushRaw } from '../harness/images.js';
import { startFaultProxy } from '../harness/proxy.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { ensureBuilt, stowage } from '../cli/binary.js';

let tmp: string;
let reg: Registry;
let index: http.Server;
let indexHost: string;
let store: Stowage;
const queries: URLSearchParams[] = [];

const RESULTS = [
  { name: 'library/alpine', description: 'A minimal Docker image based on Alpine Linux with a complete package index', is_official: true, is_automated: false, star_count: 11000 },
  { name: 'someone/alpine-tools', description: 'tools\non two lines', is_official: false, is_automated: false, star_count: 3 },
  { name: 'other/alpine-old', description: '', is_official: false, is_automated: true, star_count: 0 },
];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'search-'));
  reg = await startRegistry();
  const img = await makeTestImage({ layers: [{ files: { a: 'a\n' } }] });
  for (const repo of ['team/alpha', 'team/beta', 'gamma', 'team/delta', 'epsilon']) await pushRaw(reg.url, repo, 'v1', img);
  index = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://index');
    if (url.pathname !== '/v1/search') { res.writeHead(404).end(); return; }
    queries.push(url.searchParams);
    const q = url.searchParams.get('q') ?? '';
    const n = Number(url.searchParams.get('n') ?? 25);
    const results = RESULTS.filter((r) => r.name.includes(q)).slice(0, n);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ num_results: results.length, query: q, results }));
  });
  await new Promise<void>((r) => index.listen(0, '127.0.0.1', () => r()));
  indexHost = `127.0.0.1:${(index.address() as AddressInfo).port}`;
  store = await openStowage({ root: path.join(tmp, 'store') });
  await ensureBuilt();
}, 120_000);

afterAll(async () => {
  await store?.close();
  await new Promise((r) => index?.close(r));
  await reg?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the catalog of a distribution registry', () => {
  it('is walked page by page following Link, and the walk stops when asked', async () => {
    const client = new RegistryClient({});
    const pages: string[][] = [];
    await walkCatalog(client, reg.host, (names) => { pages.push(names); return true; }, { pageSize: 2 });
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat().sort()).toEqual(['epsilon', 'gamma', 'team/alpha', 'team/beta', 'team/delta']);
    // Stopping after the first page asks for no second one (counted by a proxy in front of the registry).
    const proxy = await startFaultProxy(reg.url);
    try {
      let calls = 0;
      await walkCatalog(client, proxy.host, () => { calls++; return false; }, { pageSize: 2 });
      expect(calls).toBe(1);
      expect(proxy.requests.filter((r) => r.path.startsWith('/v2/_catalog')).map((r) => r.path)).toEqual(['/v2/_catalog?n=2']);
    } finally { await proxy.stop(); }
    // The registry has no index search: the caller is told so, to fall back to the catalog.
    expect(await indexSearch(client, reg.host, 'team', 10)).toBeUndefined();
  });

  it('search: every repository whose name holds the term, as pullable names, limited', async () => {
    expect((await store.search(`${reg.host}/team`)).map((r) => r.name)).toEqual([`${reg.host}/team/alpha`, `${reg.host}/team/beta`, `${reg.host}/team/delta`]);
    expect(await store.search(`${reg.host}/team`, { limit: 1 })).toHaveLength(1);
    expect(await store.search(`${reg.host}/nothing-like-it`)).toEqual([]);
    await expect(store.search(`${reg.host}/team`, { limit: 0 })).resolves.toHaveLength(3);
    await expect(store.search(`${reg.host}/team`, { limit: 101 })).rejects.toMatchObject({ code: 'InvalidArgument', message: 'limit 101 is outside the range of [1, 100]' });
  });
});

describe('docker\'s index search', () => {
  it('asks /v1/search with the term (registry part removed) and the limit, then applies the filters', async () => {
    const all = await store.search(`${indexHost}/alpine`);
    expect(all.map((r) => r.name)).toEqual(['library/alpine', 'someone/alpine-tools', 'other/alpine-old']);
    expect(queries.at(-1)?.get('q')).toBe('alpine');
    expect(queries.at(-1)?.get('n')).toBe('25');
    expect((await store.search(`${indexHost}/alpine`, { filters: { 'is-official': ['true'] } })).map((r) => r.name)).toEqual(['library/alpine']);
    expect((await store.search(`${indexHost}/alpine`, { filters: { 'is-official': ['false'] } })).map((r) => r.name)).toEqual(['someone/alpine-tools', 'other/alpine-old']);
    expect((await store.search(`${indexHost}/alpine`, { filters: { stars: ['2', '3'] } })).map((r) => r.name)).toEqual(['library/alpine', 'someone/alpine-tools']);
    expect(await store.search(`${indexHost}/alpine`, { filters: { 'is-automated': ['true'] } })).toEqual([]);
    expect(await store.search(`${indexHost}/alpine`, { filters: { 'is-automated': ['false'] } })).toHaveLength(3);
    expect(await store.search(`${indexHost}/alpine`, { limit: 2 })).toHaveLength(2);
    expect(queries.at(-1)?.get('n')).toBe('2');
    await expect(store.search(`${indexHost}/alpine`, { filters: { 'is-official': ['maybe'] } })).rejects.toMatchObject({ code: 'InvalidArgument' });
  });

  it('stowage search prints docker\'s table: truncated descriptions, [OK] for official, --no-trunc, --format, --filter', async () => {
    const root = path.join(tmp, 'cli-store');
    const table = await stowage(['--root', root, 'search', `${indexHost}/alpine`]);
    expect(table.code).toBe(0);
    expect(table.stdout).toBe([
      'NAME                   DESCRIPTION                                     STARS     OFFICIAL',
      'library/alpine         A minimal Docker image based on Alpine Linux…   11000     [OK]',
      'someone/alpine-tools   tools on two lines                              3         ',
      'other/alpine-old                                                       0         ',
      '',
    ].join('\n'));
    const full = await stowage(['--root', root, 'search', '--no-trunc', '--format', '{{.Name}}|{{.Description}}|{{.IsOfficial}}', '--filter', 'is-official=true', `${indexHost}/alpine`]);
    expect(full.stdout).toBe(`library/alpine|${RESULTS[0]!.description}|[OK]\n`);
    const limited = await stowage(['--root', root, 'search', '--limit', '1', '--format', '{{.Name}}', `${reg.host}/team`]);
    expect(limited.stdout).toBe(`${reg.host}/team/alpha\n`);
    const bad = await stowage(['--root', root, 'search', '--filter', 'color=red', `${reg.host}/team`]);
    expect([bad.code, bad.stderr.trim()]).toEqual([1, "Error: invalid filter 'color'"]);
  });
});
