/**
 * Renders a stream of docker progress messages (the Engine API's JSON message shape) the way the docker CLI
 * does: on a terminal, one line per layer id redrawn in place with ANSI cursor moves and a bar
 * (`abc123def456: Downloading [=====>    ]  12.3MB/45.6MB`); elsewhere, only the lines without a byte count
 * (`abc123def456: Pull complete`), one per change, so logs stay readable.
 */
import type { JSONMessage } from '../images/index.js';
import { humanSize4 } from './humanize.js';

/**
 * One message: `status` for an `id` (a 12-hex layer id, a tag) or for the whole operation. Messages
 * without a status (pure data, such as `aux`) print nothing; those with a `progressDetail` (maybe `{}`)
 * are per-id updates, redrawn in place on a terminal.
 */
type ProgressMessage = JSONMessage;
type ProgressDetail = NonNullable<JSONMessage['progressDetail']>;

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Docker's progress bar text for a detail (`[==>   ]  1.2MB/3.4MB`), or '' when there are no numbers. */
export function progressBar(p: ProgressDetail, width: number, now = Date.now()): string {
  const current = p.current ?? 0;
  const total = p.total ?? 0;
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return p.units ? `${current} ${p.units}` : humanSize4(current).padStart(8);
  const percentage = Math.min(50, Math.trunc(Math.trunc((current / total) * 100) / 2));
  let bar = '';
  if (width > 110) bar = `[${'='.repeat(percentage)}>${' '.repeat(Math.max(0, 50 - percentage))}] `;
  let numbers = '';
  if (p.hidecounts) numbers = '';
  else if (!p.units) {
    numbers = current > total ? humanSize4(current).padStart(8) : `${humanSize4(current).padStart(8)}/${humanSize4(total)}`;
  } else {
    numbers = current > total ? `${current} ${p.units}` : `${current}/${total} ${p.units}`;
  }
  let timeLeft = '';
  if (current > 0 && p.start && p.start > 0 && percentage < 50 && width > 50) {
    const perByte = (now - p.start * 1000) / current;
    timeLeft = ` ${goDuration(Math.trunc(((total - current) * perByte) / 1000))}`;
  }
  return bar + numbers + timeLeft;
}

/** Go's time.Duration String for whole seconds: 45s, 1m5s, 2h0m3s. */
function goDuration(seconds: number): string {
  if (seconds <= 0) return '0s';
  const h = Math.trunc(seconds / 3600);
  const m = Math.trunc((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

const ESC = '\x1b[';

/** Stateful renderer for one operation's messages. */
export class ProgressDisplay {
  private readonly lineOf = new Map<string, number>();
  private readonly terminal: boolean;

  constructor(private readonly out: ProgressOutput, terminal?: boolean) {
    this.terminal = terminal ?? out.isTTY === true;
  }

  write(msg: ProgressMessage): void {
    if (msg.status === undefined || msg.status === '') return;
    const isProgress = msg.id !== undefined && msg.id !== '' && msg.progressDetail !== undefined;
    let diff = 0;
    if (isProgress) {
      let line = this.lineOf.get(msg.id!);
      if (line === undefined) {
        line = this.lineOf.size;
        this.lineOf.set(msg.id!, line);
        if (this.terminal) this.out.write('\n');
      }
      diff = this.lineOf.size - line;
      if (this.terminal && diff > 0) this.out.write(`${ESC}${diff}A`);
    } else {
      // A line that is not a layer's: earlier layer lines are never redrawn again.
      this.lineOf.clear();
    }
    this.display(msg as ProgressMessage & { status: string }, isProgress);
    if (isProgress && this.terminal && diff > 0) this.out.write(`${ESC}${diff}B`);
  }

  private display(msg: ProgressMessage & { status: string }, isProgress: boolean): void {
    const prefix = msg.id ? `${msg.id}: ` : '';
    if (isProgress && this.terminal) {
      const bar = progressBar(msg.progressDetail!, this.out.columns ?? 80);
      this.out.write(`${ESC}2K\r${prefix}${msg.status}${bar ? ' ' + bar : ' '}\r`);
      return;
    }
    // Off a terminal, byte-count updates would flood the log; only state changes are printed.
    if (isProgress && progressBar(msg.progressDetail!, 200) !== '') return;
    this.out.write(`${prefix}${msg.status}\n`);
  }
}
