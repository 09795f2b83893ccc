/**
 * docker's JSON message stream (pull, push, import, load): one object per line, `\r\n` after each,
 * written as soon as it exists. Fields go out in the order of docker's JSONMessage struct, with the
 * pre-rendered `progress` bar that dockerd 20.10 still sends for clients that print it as is.
 * A failure before the first line is an HTTP error; after it, an in-stream `errorDetail`/`error` line.
 */
import type http from 'node:http';
import type { JSONMessage } from '../../images/index.js';
import { messageOf, writeError } from './errors.js';

/** go-units HumanSize: 1000-based, 4 significant digits (`%.4g`). */
function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < units.length - 1) { size /= 1000; i++; }
  return `${Number(size.toPrecision(4))}${units[i]}`;
}

/** The bar a daemon renders for a client 200 columns wide (jsonmessage.JSONProgress.String). */
export function progressBar(p: NonNullable<JSONMessage['progressDetail']>): string {
  const current = p.current ?? 0;
  const total = p.total ?? 0;
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return p.units ? `${current} ${p.units}` : humanSize(current).padStart(8);
  const half = Math.min(50, Math.trunc(Math.trunc((current / total) * 100) / 2));
  const bar = `[${'='.repeat(half)}>${' '.repeat(Math.max(0, 50 - half))}] `;
  let numbers = '';
  if (!p.hidecounts) {
    if (!p.units) numbers = current > total ? humanSize(current).padStart(8) : `${humanSize(current).padStart(8)}/${humanSize(total)}`;
    else numbers = current > total ? `${current} ${p.units}` : `${current}/${total} ${p.units}`;
  }
  return bar + numbers;
}

/** One message in docker's field order; `progressDetail` keeps Go's omitempty (a zero `current` is left out). */
export function encodeMessage(m: JSONMessage): string {
  const o: Record<string, unknown> = {};
  if (m.stream) o.stream = m.stream;
  if (m.status) o.status = m.status;
  if (m.progressDetail) {
    const d = m.progressDetail;
    const detail: Record<string, unknown> = {};
    if (d.current) detail.current = d.current;
    if (d.total) detail.total = d.total;
    if (d.hidecounts) detail.hidecounts = d.hidecounts;
    if (d.units) detail.units = d.units;
    o.progressDetail = detail;
    const bar = progressBar(d);
    if (bar) o.progress = bar;
  }
  if (m.id) o.id = m.id;
  if (m.errorDetail) o.errorDetail = m.errorDetail;
  if (m.error) o.error = m.error;
  if (m.aux) o.aux = m.aux;
  return JSON.stringify(o) + '\r\n';
}

export class MessageStream {
  private started = false;

  constructor(private readonly res: http.ServerResponse) {}

  get hasStarted(): boolean { return this.started; }

  /** Sends the 200 and the headers now (load answers 200 whatever happens next). */
  open(): void { this.start(); }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(200, { 'Content-Type': 'application/json' });
    this.res.flushHeaders();
  }

  write(m: JSONMessage): void {
    if (this.res.destroyed || this.res.writableEnded) return;
    this.start();
    this.res.write(encodeMessage(m));
  }

  /** Ends the stream: in-stream error line once started, an HTTP error before. */
  fail(e: unknown): void {
    if (this.res.destroyed || this.res.writableEnded) return;
    if (!this.started) { writeError(this.res, e); return; }
    const message = messageOf(e);
    this.res.end(encodeMessage({ errorDetail: { message }, error: message }));
  }

  /** Ends the stream, starting it first so that an empty stream is still a 200. */
  end(): void {
    if (this.res.destroyed || this.res.writableEnded) return;
    this.start();
    this.res.end();
  }
}
