// The README's main job: the offline demo (scripts/demo.ts) runs the real command line end to end.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, ensureBuilt } from './binary.js';
import { freePort } from '../harness/registry.js';

const execFileP = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-cli-demo-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function demo(port: number): Promise<string> {
  const { stdout } = await execFileP(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
    cwd: REPO, env: { ...process.env, STOWAGE_ROOT: path.join(tmp, 'root'), STOWAGE_DEMO_PORT: String(port) }, timeout: 120_000,
  });
  return stdout;
}

describe('offline demo', () => {
  it('pulls a generated image from a loopback registry, lists it, and checks it out with the whiteout applied', async () => {
    // A port of this test's own (not the demo's default 50505, which another run may hold).
    const port = await freePort();
    const out = await demo(port);
    const host = /served at (127\.0\.0\.1:\d+)/.exec(out)?.[1];
    expect(host).toBe(`127.0.0.1:${port}`);
    expect(out).toContain(`$ stowage pull ${host}/demo/hello:latest\nlatest: Pulling from demo/hello\n`);
    expect(out).toContain(`Status: Downloaded newer image for ${host}/demo/hello:latest\n${host}/demo/hello:latest\n`);
    expect(out).toMatch(new RegExp(`${host!.replace(/\./g, '\\.')}/demo/hello +latest +[0-9a-f]{12} +`));
    expect(out).toMatch(/<missing> +\S.*COPY data \/srv\/data/);
    expect(out).toMatch(/sha256:[0-9a-f]{64} linux\/\w+ layers=3 cmd=\["\/bin\/hello"\]/);
    expect(out).toContain('l 0777  /bin/greet -> hello');
    expect(out).toContain('/usr/share/demo/old.txt (deleted by a whiteout in layer 2): absent, as it should be');
    expect(fs.existsSync(path.join(tmp, 'root'))).toBe(true);

    // The same registry address on a second run: the image is up to date.
    const again = await demo(port);
    expect(again).toContain(`served at ${host}`);
    expect(again).toContain(`Status: Image is up to date for ${host}/demo/hello:latest`);

    // The closing hint's commands work exactly as printed, right after `npm ci` (which builds dist/).
    const hint = /Done\. The image stays in the store: try (.*)\.\n/.exec(again)?.[1];
    const commands = [...(hint ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    expect(commands.map((c) => c.split(' ').slice(0, 3).join(' '))).toEqual(['npx stowage images', 'npx stowage system', 'npx stowage rmi']);
    await ensureBuilt();
    const env = { ...process.env, STOWAGE_ROOT: path.join(tmp, 'root') };
    const outputs = [];
    for (const c of commands) outputs.push((await execFileP('sh', ['-c', c], { cwd: REPO, env, timeout: 60_000 })).stdout);
    expect(outputs[0]).toMatch(/demo\/hello +latest/);
    expect(outputs[1]).toMatch(/^TYPE +TOTAL/);
    expect(outputs[2]).toContain('Untagged:');
  });
});
