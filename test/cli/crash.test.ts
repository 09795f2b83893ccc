// The crash harness: real `stowage` processes (pull, rmi, image prune, gc, load, import, commit) SIGKILLed at random points
// (a fixed seed picks the operations and the kill delays), `stowage check` after every kill, then every
// interrupted operation re-run to completion and the checked-out trees compared with umoci's.
// It prints the kills, the clean checks and the bytes the re-runs downloaded again.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startRegistry, type Registry } from '../harness/registry.js';
import { startFaultProxy, type FaultProxy } from '../harness/proxy.js';
import { heldBytes, refetchedBytes } from '../harness/redownload.js';
import { makeTestImage, pushRaw, tarOf, writeOciLayout, type TestImage } from '../harness/images.js';
import { describeTree, isRoot, linkGroups } from '../snapshots/helpers.js';
import { BIN, REPO, ensureBuilt } from './binary.js';
import { runCli } from './in-process.js';
import { skipUnless } from '../harness/skip.js';
import { prng } from '../harness/prng.js';

const SEED = 0x5eed_0009;
const MIN_KILLS = 100;
const hasUmoci = spawnSync('umoci', ['--version']).status === 0;

interface Outcome { killed: boolean; code: number | null; ms: number; out: string }

/** Runs `stowage --root ROOT ...args`; with `killAfterMs`, SIGKILLs it then unless it has exited. */
function run(root: string, args: string[], killAfterMs?: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // Its own process group: whatever it started (a helper that inherited its pipes) goes with it
    // once it has exited, so 'close' cannot wait on a straggler.
    const child = spawn(process.execPath, [BIN, '--root', root, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d; });
    let sent = false;
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => { sent = child.kill('SIGKILL'); }, killAfterMs);
    child.on('error', reject);
    child.on('exit', () => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* the group is gone */ } });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ killed: sent && signal === 'SIGKILL', code, ms: performance.now() - t0, out });
    });
  });
}

interface Finding { kind: string; class: string; subject: string; message: string; repaired: boolean }

describe('crash harness', () => {
  const it = skipUnless(hasUmoci, 'umoci is not installed (scripts/test.sh installs it as root)');
  let reg: Registry;
  let proxy: FaultProxy;
  let base: string;
  let imgA: TestImage;
  let imgB: TestImage;
  let imgC: TestImage;
  /** A docker-archive of C (written by skopeo) for `load`, and a plain root filesystem tar for `import`. */
  let archive: string;
  let rootfsTar: string;
  const theirs: Record<string, string> = {};

  beforeAll(async () => {
    if (!hasUmoci) return;
    await ensureBuilt();
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-crash-'));
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    // Five layers: incompressible bulk (so a pull takes long enough to be cut anywhere), small files,
    // symlinks, a deleted file and an opaque directory in later layers. B shares A's first two layers.
    const bulk = (i: number) => randomBytes(900_000 + i * 100_000);
    const layer = (i: number, extra: Parameters<typeof makeTestImage>[0]['layers'][number]['files'] = []) => ({
      files: [
        { path: `d${i}`, type: 'directory' as const },
        { path: `d${i}/bulk.bin`, content: bulk(i) },
        ...Array.from({ length: 20 }, (_, k) => ({ path: `d${i}/f${k}.txt`, content: `layer ${i} file ${k}\n`.repeat(k + 1) })),
        { path: `d${i}/link`, type: 'symlink' as const, linkname: `f${i}.txt` },
        ...(Array.isArray(extra) ? extra : []),
      ],
    });
    const shared = [layer(0, [{ path: 'etc', type: 'directory' }, { path: 'etc/os-release', content: 'ID=crash\n' }, { path: 'opq', type: 'directory' }, { path: 'opq/old', content: 'old' }]), layer(1)];
    imgA = await makeTestImage({ layers: [...shared, layer(2, [{ path: 'd0/.wh.f3.txt', content: '' }]), layer(3, [{ path: 'opq', type: 'directory' }, { path: 'opq/.wh..wh..opq', content: '' }, { path: 'opq/new', content: 'new' }]), layer(4)] });
    imgB = await makeTestImage({ layers: [...shared, layer(5), layer(6, [{ path: 'd1/.wh.link', content: '' }])] });
    await pushRaw(reg.url, 'crash/a', '1', imgA);
    await pushRaw(reg.url, 'crash/b', '1', imgB);
    imgC = await makeTestImage({ layers: [0, 1, 2].map((i) => layer(i)) });
    rootfsTar = path.join(base, 'rootfs.tar');
    fs.writeFileSync(rootfsTar, await tarOf([{ path: 'etc', type: 'directory' }, { path: 'etc/imported', content: 'yes\n' }, { path: 'bulk.bin', content: randomBytes(1_500_000) }]));
    for (const [name, img] of [['a', imgA], ['b', imgB], ['c', imgC]] as const) {
      const layout = writeOciLayout(path.join(base, `layout-${name}`), img);
      if (name === 'c') {
        archive = path.join(base, 'c.tar');
        execFileSync('skopeo', ['copy', '--quiet', `oci:${layout}:latest`, `docker-archive:${archive}:crash/c:1`], { stdio: 'pipe' });
      }
      const bundle = path.join(base, `umoci-${name}`);
      execFileSync('umoci', ['unpack', ...(isRoot ? [] : ['--rootless']), '--image', `${layout}:latest`, bundle], { stdio: 'pipe' });
      theirs[name] = path.join(bundle, 'rootfs');
    }
  }, 180_000);

  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (base) fs.rmSync(base, { recursive: true, force: true });
  });

  it(`survives ${MIN_KILLS}+ SIGKILLs of pull, rmi, image prune, gc, load, import and commit: check clean after each, re-runs complete, trees equal umoci's`, async () => {
    const rand = prng(SEED);
    const root = path.join(base, 'store');
    const ref = (n: 'a' | 'b') => `${proxy.host}/crash/${n}:1`;
    // What a pull fetches from /blobs/: the config and the layers (the manifest comes from /manifests/).
    const imageBytes = (img: TestImage) => img.layers.reduce((n, l) => n + l.size, 0) + img.config.size;
    const held = (img: TestImage) => heldBytes(root, img);
    const refetched = (from: number, had: Map<string, number>) => refetchedBytes(proxy.requests.slice(from), had);
    let kills = 0;
    let cleanChecks = 0;
    const damaged: string[] = [];

    const check = async (after: string): Promise<Finding[]> => {
      const r = await runCli(['--root', root, 'check', '--format', 'json']);
      const report = JSON.parse(r.out) as { ok: boolean; problems: Finding[] };
      const damage = report.problems.filter((p) => p.class === 'damage');
      if (r.code === 0 && report.ok && damage.length === 0) cleanChecks++;
      else damaged.push(`after ${after}: exit ${r.code}: ${JSON.stringify(damage)}`);
      return report.problems;
    };
    const mustSucceed = async (args: string[]) => {
      const o = await run(root, args);
      expect(o.code, `${args.join(' ')}: ${o.out}`).toBe(0);
      return o;
    };

    // Calibration: how long each operation takes here, uninterrupted (kills land inside that window).
    const startup = (await mustSucceed(['version'])).ms;
    let pullMs = (await mustSucceed(['pull', ref('a')])).ms;
    const rmiMs = (await mustSucceed(['rmi', ref('a')])).ms;
    const gcMs = (await mustSucceed(['gc'])).ms;
    const loadMs = (await mustSucceed(['load', '-i', archive])).ms;
    const importMs = (await mustSucceed(['import', rootfsTar, 'crash/imported:1'])).ms;
    // A working container on the imported image (which it keeps from prune) for `commit`.
    await mustSucceed(['container', 'create', '--name', 'work', 'crash/imported:1']);
    const commitMs = (await mustSucceed(['commit', 'work', 'crash/committed:1'])).ms;
    const window = (ms: number) => startup * 0.6 + rand() * Math.max(ms - startup * 0.6, 50);

    // Phase 1: each image pulled from empty through a run of kills to completion. What the registry
    // served beyond the image's own bytes is what the kills cost in downloads.
    const redownload: { name: string; kills: number; served: number; size: number; again: number }[] = [];
    for (const name of ['a', 'b', 'a', 'b'] as const) {
      await run(root, ['rmi', '-f', ref('a')]);
      await run(root, ['rmi', '-f', ref('b')]);
      await mustSucceed(['gc']);
      const img = name === 'a' ? imgA : imgB;
      const from = proxy.requests.length;
      let cycleKills = 0;
      let again = 0;
      for (;;) {
        // After six kills, let it finish: the cycle must end.
        const had = held(img);
        const at = proxy.requests.length;
        const o = await run(root, ['pull', ref(name)], cycleKills < 6 ? window(pullMs) : undefined);
        again += refetched(at, had);
        if (!o.killed) { expect(o.code, o.out).toBe(0); pullMs = Math.min(pullMs, o.ms); break; }
        kills++; cycleKills++;
        await check(`killed pull ${name}`);
      }
      const served = proxy.requests.slice(from).filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).reduce((n, r) => n + r.bytesSent, 0);
      redownload.push({ name, kills: cycleKills, served, size: imageBytes(img), again });
      // The re-run adopted the dead pulls' leases: nothing is left to reclaim.
      expect((await check(`pull ${name} completed`)).filter((p) => p.kind === 'lease-holder-dead')).toEqual([]);
    }

    // Phase 2: a random mix until enough kills; interrupted operations are remembered for the end.
    const ops: { args: string[]; ms: number }[] = [
      { args: ['pull', ref('a')], ms: pullMs }, { args: ['pull', ref('b')], ms: pullMs },
      { args: ['rmi', ref('a')], ms: rmiMs }, { args: ['rmi', '-f', ref('b')], ms: rmiMs },
      { args: ['image', 'prune', '-af'], ms: rmiMs }, { args: ['gc'], ms: gcMs },
      { args: ['load', '-i', archive], ms: loadMs }, { args: ['import', rootfsTar, 'crash/imported:1'], ms: importMs },
      { args: ['commit', 'work', 'crash/committed:1'], ms: commitMs },
    ];
    const interrupted: string[][] = [];
    const byOp = new Map<string, number>();
    let finished = 0;
    while (kills < MIN_KILLS) {
      const op = ops[Math.floor(rand() * ops.length)]!;
      const o = await run(root, op.args, window(op.ms));
      if (!o.killed) {
        // Finished first (or refused: rmi of an absent image): the window shrinks to what the operation
        // takes now (the calibration run may have been slower: cold caches, a loaded machine).
        finished++;
        op.ms = Math.min(op.ms, o.ms);
        continue;
      }
      kills++;
      const opName = op.args[0] === 'image' || op.args[0] === 'pull' || op.args[0] === 'rmi' ? op.args.slice(0, 2).join(' ') : op.args[0]!;
      byOp.set(opName, (byOp.get(opName) ?? 0) + 1);
      interrupted.push(op.args);
      await check(`killed ${op.args.join(' ')}`);
    }

    // Every interrupted operation re-run to completion, each distinct one once (a second identical
    // re-run has nothing left to do), in the order they were first interrupted; rmi may find its image gone.
    const distinct = [...new Map(interrupted.map((a) => [a.join(' '), a])).values()];
    for (const args of distinct) {
      const o = await run(root, args);
      if (args[0] === 'rmi') expect(o.code === 0 || /No such image/.test(o.out), o.out).toBe(true);
      else expect(o.code, `${args.join(' ')}: ${o.out}`).toBe(0);
    }
    await mustSucceed(['pull', ref('a')]);
    await mustSucceed(['pull', ref('b')]);
    await mustSucceed(['load', '-i', archive]);
    await mustSucceed(['gc']);
    expect(await check('the re-runs and gc')).toEqual([]);
    const imported = path.join(base, 'ours-imported');
    await mustSucceed(['checkout', 'crash/imported:1', imported]);
    expect(fs.readFileSync(path.join(imported, 'etc/imported'), 'utf8')).toBe('yes\n');
    for (const name of ['a', 'b', 'c'] as const) {
      const out = path.join(base, `ours-${name}`);
      await mustSucceed(['checkout', name === 'c' ? 'crash/c:1' : ref(name), out]);
      expect(await describeTree(out, { mtimes: true })).toEqual(await describeTree(theirs[name]!, { mtimes: true }));
      expect(linkGroups(out)).toEqual(linkGroups(theirs[name]!));
    }

    const pct = (n: number, of: number) => `${(100 * n / of).toFixed(2)}%`;
    // Two figures per cycle: bytes the store already held and fetched again (the re-run's waste), and
    // all bytes served beyond the image's size (adds what was in flight, in socket buffers, at each kill).
    console.log(`crash harness (seed ${SEED.toString(16)}): ${kills} kills (${[...byOp].map(([k, v]) => `${k.replace(proxy.host + '/', '')} ${v}`).join(', ')}, ` +
      `pull cycles ${redownload.map((r) => r.kills).join('+')}; ${finished} runs finished before their kill), ${cleanChecks} clean checks of ${kills + redownload.length + 1}; per pull cycle, ` +
      redownload.map((r) => `${r.name}: re-downloaded ${r.again} B (${pct(r.again, r.size)}), served beyond the image ${Math.max(0, r.served - r.size)} B (${pct(Math.max(0, r.served - r.size), r.size)}) of ${r.size} B`).join('; '));
    expect(damaged).toEqual([]);
    expect(kills).toBeGreaterThanOrEqual(MIN_KILLS);
    for (const r of redownload) expect(r.again, `${r.name}: re-downloaded ${r.again} of ${r.size} bytes`).toBeLessThanOrEqual(r.size * 0.05);
  }, 600_000);
});
