// The one summary table of `npm run bench`: each benchmark (its own process) appends rows to the
// file named by $STOWAGE_BENCH_SUMMARY, and bench/run.ts prints them all at the end, with the
// machine and file systems they ran on. A benchmark run alone prints its own rows the same way.
import fs from 'node:fs';
import os from 'node:os';

export interface PeerFigure {
  /** The peer tool and what it did ('ctr images pull', 'cp -a'). */
  peer: string;
  value: number;
  rssMiB?: number;
}

export interface SummaryRow {
  /** What was measured ('pull + unpack, 5 layers'). */
  operation: string;
  /** 'ext4 (fresh loop mount)', 'tmpfs', or a note. */
  fs: string;
  unit: 's' | 'ms' | 'MB/s';
  stowage: number;
  stowageRssMiB?: number;
  peers: PeerFigure[];
  /** The target stowage ÷ peer must meet, by peer name, e.g. {'ctr images pull': 0.4}. */
  targets?: Record<string, number>;
}

/** Records a row for the final table (and prints it when no summary file collects rows). */
export function summarise(row: SummaryRow): void {
  const file = process.env.STOWAGE_BENCH_SUMMARY;
  if (file) fs.appendFileSync(file, `${JSON.stringify(row)}\n`);
  else console.log(`\n${formatSummary([row])}`);
}

const fmt = (v: number, unit: SummaryRow['unit']) => (unit === 's' ? v.toFixed(2) : unit === 'ms' ? v.toFixed(1) : v.toFixed(0));

/** One line per (row, peer): operation, file system, stowage, peer, ratio (and its target), peak RSS. */
export function formatSummary(rows: SummaryRow[]): string {
  const head = ['operation', 'fs', 'stowage', 'peer', 'peer value', 'stowage ÷ peer', 'target', 'RSS MiB (ours / peer)'];
  const lines: string[][] = [head];
  for (const r of rows) {
    for (const p of r.peers.length ? r.peers : [{ peer: '—', value: Number.NaN }]) {
      const ratio = r.stowage / p.value;
      const target = r.targets?.[p.peer];
      const verdict = target === undefined ? '' : `≤ ${target.toFixed(2)}× ${ratio <= target ? 'met' : 'NOT met'}`;
      lines.push([
        r.operation, r.fs, `${fmt(r.stowage, r.unit)} ${r.unit}`, p.peer, Number.isNaN(p.value) ? '' : `${fmt(p.value, r.unit)} ${r.unit}`,
        Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '', verdict,
        [r.stowageRssMiB, p.rssMiB].map((x) => (x === undefined ? '-' : x.toFixed(0))).join(' / '),
      ]);
    }
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => l.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** The machine line under the table. */
export function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `machine: ${os.cpus().length} × ${cpu}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}; `
    + `load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`;
}
