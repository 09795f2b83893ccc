// Runs benchmarks: `npm run bench -- <name>...` runs bench/<name>.ts for each name; no names runs them all
// (bench/support/ holds their shared pieces, not benchmarks).
// Each bench runs in its own process (clean memory figures), one after another; each adds rows to
// one summary table printed at the end (bench/support/summary.ts).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePeerTools } from './support/peer-tools.js';
import { formatSummary, machineLine, type SummaryRow } from './support/summary.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const all = fs.readdirSync(benchDir).filter((f) => f.endsWith('.ts') && f !== 'run.ts').map((f) => f.slice(0, -3)).sort();
const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const passThrough = process.argv.slice(2).filter((a) => a.startsWith('-'));
const chosen = names.length > 0 ? names : all;

const missing = ensurePeerTools();
if (missing.length > 0) console.log(`bench: peer tools missing (their columns will fail or be skipped): ${missing.join(', ')}`);

const summaryFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'stowage-bench-summary-')), 'rows.jsonl');
let failed = 0;
for (const name of chosen) {
  const file = path.join(benchDir, `${name}.ts`);
  if (!fs.existsSync(file)) {
    console.error(`bench: no such benchmark "${name}" (have: ${all.join(', ')})`);
    failed++;
    continue;
  }
  console.log(`\n=== bench ${name} ===`);
  // In-process benchmarks (the apply in bench/snapshots.ts) run with the V8 flag bin/stowage.js gives
  // the command line, so they measure what `stowage` does.
  const r = spawnSync(process.execPath, ['--initial-old-space-size=64', '--import', 'tsx', file, ...passThrough], {
    stdio: 'inherit', cwd: path.dirname(benchDir), env: { ...process.env, STOWAGE_BENCH_SUMMARY: summaryFile },
  });
  if (r.status !== 0) {
    console.error(`bench ${name} failed (${r.status ?? r.signal})`);
    failed++;
  }
}
const rows: SummaryRow[] = fs.existsSync(summaryFile)
  ? fs.readFileSync(summaryFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as SummaryRow)
  : [];
fs.rmSync(path.dirname(summaryFile), { recursive: true, force: true });
if (rows.length > 0) {
  console.log(`\n=== summary (${chosen.join(', ')}) ===\n${formatSummary(rows)}\n${machineLine()}`);
}
process.exit(failed > 0 ? 1 : 0);
