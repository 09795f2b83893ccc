// docs/api is the API reference TypeDoc makes from the doc comments of the public entry points: it is
// regenerated here and must match what is committed (after changing a public doc comment: npm run docs).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { REPO } from '../cli/binary.js';

const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-docs-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) { const full = path.join(e.parentPath, e.name); out.set(path.relative(dir, full), fs.readFileSync(full, 'utf8')); }
  }
  return out;
}

it('docs/api is what TypeDoc generates from the current doc comments, without warnings', async () => {
  const typedoc = path.join(REPO, 'tools', 'typedoc', 'node_modules', 'typedoc', 'bin', 'typedoc');
  expect(fs.existsSync(typedoc), 'TypeDoc is not installed: npm run docs:setup').toBe(true);
  const out = path.join(tmp, 'api');
  await run(process.execPath, [typedoc, '--options', 'tools/typedoc/typedoc.json', '--out', out, '--treatWarningsAsErrors'], { cwd: REPO, timeout: 120_000 });
  const fresh = files(out);
  const committed = files(path.join(REPO, 'docs', 'api'));
  expect([...committed.keys()].sort(), 'docs/api is stale: npm run docs').toEqual([...fresh.keys()].sort());
  for (const [name, text] of fresh) expect(committed.get(name), `docs/api/${name} is stale: npm run docs`).toBe(text);
}, 180_000);
