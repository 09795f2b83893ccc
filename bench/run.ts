// Runs benchmarks: `npm run bench -- <name>...` runs bench/<name>.ts for each name; no names runs them all
// (bench/support/ holds their shared pieces, not benchmarks).
// Each bench runs in its own process (clean memory figures), one after another.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const all = fs.readdirSync(benchDir).filter((f) => f.endsWith('.ts') && f !== 'run.ts').map((f) => f.slice(0, -3)).sort();
const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const passThrough = process.argv.slice(2).filter((a) => a.startsWith('-'));
const chosen = names.length > 0 ? names : all;

let failed = 0;
for (const name of chosen) {
  const file = path.join(benchDir, `${name}.ts`);
  if (!fs.existsSync(file)) {
    console.error(`bench: no such benchmark "${name}" (have: ${all.join(', ')})`);
    failed++;
    continue;
  }
  console.log(`\n=== bench ${name} ===`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file, ...passThrough], { stdio: 'inherit', cwd: path.dirname(benchDir) });
  if (r.status !== 0) {
    console.error(`bench ${name} failed (${r.status ?? r.signal})`);
    failed++;
  }
}
process.exit(failed > 0 ? 1 : 0);
