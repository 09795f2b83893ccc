// Several stowage processes on one root, no daemon: real child processes.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { checkStore, collectGarbage, openMetadata, type Metadata } from '../../src/metadata/index.js';
import type { ContentStore } from '../../src/content/index.js';
import { age, blobPath, contentFor, exists, putBlob } from './backends.js';
import { tempRoot } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');

interface Child { proc: ChildProcess; out: string[]; exit: Promise<{ code: number | null; signal: string | null; stderr: string }> }

function spawnFixture(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const stdin = Object.keys(env).length > 0 ? 'pipe' : 'ignore';
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', `${name}.ts`), ...args], { cwd: repo, stdio: [stdin, 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const out: string[] = [];
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => out.push(...s.split('\n').filter(Boolean)));
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const exit = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => {
    proc.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
  return { proc, out, exit };
}

async function waitForLine(c: Child, line: string | ((l: string) => boolean), ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  const found = () => (typeof line === 'string' ? c.out.includes(line) : c.out.some(line));
  while (!found()) {
    if (Date.now() > until) throw new Error(`no "${line}" from child; stderr: ${await Promise.race([c.exit.then((e) => e.stderr), Promise.resolve('(running)')])}`);
    if (c.proc.exitCode !== null) throw new Error(`child exited before "${line}": ${(await c.exit).stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let root: string; let cleanup: () => void; let md: Metadata; let cs: ContentStore;
const children: Child[] = [];
beforeEach(async () => { ({ root, cleanup } = tempRoot()); md = openMetadata(root); cs = await contentFor(md); });
afterEach(async () => {
  for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) { c.proc.kill('SIGKILL'); await c.exit; }
  md.close();
  cleanup();
});

describe('multi-process', () => {
  it('four processes writing images at once lose no write', async () => {
    md.images.create({ name: 'shared', target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'0'.repeat(64)}`, size: 1 } });
    const N = 150;
    const ac = new AbortController();
    const seen: string[] = [];
    const following = (async () => {
      for await (const e of md.events.follow({ after: md.events.lastSeq(), signal: ac.signal, pollMs: 20 })) {
        seen.push(e.id);
        if (seen.length === 4) ac.abort();
      }
    })();
    const kids = ['1', '2', '3', '4'].map((who) => spawnFixture('writer', [root, who, String(N)]));
    children.push(...kids);
    const exits = await Promise.all(kids.map((k) => k.exit));
    for (const e of exits) expect(e, e.stderr).toMatchObject({ code: 0 });
    await following;
    ac.abort();
    expect(seen.sort()).toEqual(['writer-1', 'writer-2', 'writer-3', 'writer-4']); // followed across processes
    expect(md.images.list('name~=^p[1-4]/')).toHaveLength(4 * N);
    expect(Object.keys(md.images.get('shared').labels)).toHaveLength(4 * N);
  });

  it('a GC looping in this process never loses a blob another process is pulling', async () => {
    // Garbage on disk that the puller will reuse: unrecorded, old, so GC wants it.
    const pool: string[] = [];
    for (let i = 0; i < 12; i++) {
      const content = `pooled layer ${i}`;
      const b = await putBlob(cs, content);
      age(blobPath(md, b.digest), 3_600_000);
      pool.push(content);
    }
    const images = 25;
    const puller = spawnFixture('puller', [root, String(images), ...pool], { STOWAGE_TEST_HANDSHAKE: '1' });
    children.push(puller);
    let runs = 0;
    let removedDuring = 0;
    let exited = false;
    void puller.exit.then(() => { exited = true; });
    // One collection meets the puller head-on: the puller protects a pooled blob while GC's tombstone
    // for it stands (after the record sweep, before the file goes). It must wait, then write it again.
    await waitForLine(puller, (l) => l.startsWith('ready '));
    const contested = puller.out.find((l) => l.startsWith('ready '))!.slice('ready '.length);
    const first = await collectGarbage(md, { content: cs }, {
      gracePeriodMs: 0,
      beforeFileDeletes: async () => { puller.proc.stdin!.write('go\n'); await waitForLine(puller, `blocked ${contested}`); },
    });
    expect(first.candidates.blobs).toContain(contested);
    removedDuring += first.removed.blobs;
    runs++;
    while (!exited) {
      const r = await collectGarbage(md, { content: cs }, { gracePeriodMs: 0 }); // no grace: only the protocol protects
      removedDuring += r.removed.blobs;
      runs++;
    }
    const e = await puller.exit;
    expect(e, e.stderr).toMatchObject({ code: 0 });
    expect(runs).toBeGreaterThan(1);
    const stats = JSON.parse(puller.out.find((l) => l.startsWith('stats '))!.slice(6)) as { retries: number; existed: number };
    // The race was real: GC deleted the contested blob while the puller waited to protect it, and the
    // puller wrote it again (it is there, kept by its image).
    expect(removedDuring).toBeGreaterThan(0);
    expect(stats.retries).toBeGreaterThan(0);
    expect(exists(blobPath(md, contested as `sha256:${string}`))).toBe(true);
    console.log(`gc runs ${runs}, removed during pull ${removedDuring}, puller ${JSON.stringify(stats)}`);
    expect(md.images.list()).toHaveLength(images);
    const report = await checkStore(md, cs);
    expect(report.problems).toEqual([]);
    // Everything still reachable survives one more collection; the unused pool goes.
    await collectGarbage(md, { content: cs }, { gracePeriodMs: 0 });
    expect((await checkStore(md, cs)).problems).toEqual([]);
  });

  it('a process SIGKILLed inside a write transaction leaves a consistent database and no lock', async () => {
    const k = spawnFixture('killed', [root, 'txn']);
    children.push(k);
    await waitForLine(k, 'in-txn');
    // While it holds the write lock, our writes wait (busy timeout), reads go on (WAL).
    expect(md.images.list()).toEqual([]);
    k.proc.kill('SIGKILL');
    expect((await k.exit).signal).toBe('SIGKILL');
    // The write lock died with it: a writer that will not wait at all gets it at once.
    const probe = new Database(path.join(root, 'metadata.db'));
    probe.pragma('busy_timeout = 0');
    probe.exec('BEGIN IMMEDIATE');
    probe.exec('ROLLBACK');
    probe.close();
    md.images.create({ name: 'after', target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'d'.repeat(64)}`, size: 1 } });
    expect(md.images.list().map((i) => i.name)).toEqual(['after']); // the killed transaction left nothing
    const raw = new Database(path.join(root, 'metadata.db'), { readonly: true });
    expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
    raw.close();
  });

  it('a GC SIGKILLed with tombstones standing is finished by the next one', async () => {
    const doomed = await putBlob(cs, 'doomed by a collector that dies');
    md.content.recordBlob(doomed.digest, doomed.size);
    const k = spawnFixture('killed', [root, 'gc']);
    children.push(k);
    await waitForLine(k, 'tombstoned');
    expect(() => md.content.recordBlob(doomed.digest, doomed.size)).toThrow(/garbage collected/);
    k.proc.kill('SIGKILL');
    await k.exit;
    const r = await collectGarbage(md, { content: cs }); // takes over the dead collector's lock
    expect(r.removed.blobs).toBe(1);
    expect(exists(blobPath(md, doomed.digest))).toBe(false);
    const again = await putBlob(cs, 'doomed by a collector that dies');
    md.content.recordBlob(again.digest, again.size); // writable again
    expect(exists(blobPath(md, doomed.digest))).toBe(true);
  });
});
