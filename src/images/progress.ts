import type { Descriptor } from '../oci/index.js';
import type { ProgressEvent, ProgressFn } from './types.js';

/** 12 hex of a digest, the id docker prints per layer. */
export function progressId(digest: string): string {
  const i = digest.indexOf(':');
  return digest.slice(i + 1, i + 13);
}

/** Sends progress messages, throttling byte updates per id so a fast transfer does not flood the caller. */
export class ProgressSink {
  private readonly last = new Map<string, number>();
  constructor(private readonly fn: ProgressFn | undefined, private readonly intervalMs = 100) {}

  /** A message about the whole transfer with an id (the tag on 'Pulling from'): no progressDetail, as docker's. */
  message(status: string, id: string): void {
    if (this.fn) this.safe({ status, id });
  }

  /** A pure status update: of a layer id (with an empty progressDetail), or without id (no progressDetail). */
  status(status: string, id?: string): void {
    if (!this.fn) return;
    const ev: ProgressEvent = { status };
    if (id !== undefined) { ev.id = id; ev.progressDetail = {}; }
    this.safe(ev);
  }

  bytes(status: string, id: string, current: number, total: number, force = false): void {
    if (!this.fn) return;
    const now = Date.now();
    const key = `${status} ${id}`;
    if (!force && current < total && now - (this.last.get(key) ?? 0) < this.intervalMs) return;
    this.last.set(key, now);
    this.safe({ status, id, progressDetail: { current, total } });
  }

  /** A line of output text, as docker's load and build send (`{"stream":"Loaded image: x:1\n"}`). */
  stream(text: string): void { this.fn && this.safe({ stream: text }); }

  aux(aux: Record<string, unknown>): void { this.fn && this.safe({ aux }); }

  private safe(ev: ProgressEvent): void {
    try { this.fn!(ev); } catch { /* a failing listener never breaks the transfer */ }
  }
}

/** Tells `progress` that a new layer is stored: `Layer written`, id the digest's 12 hex, its bytes as progressDetail. */
export function layerWritten(progress: ProgressSink, layer: { descriptor: Descriptor }): void {
  progress.bytes('Layer written', progressId(layer.descriptor.digest), layer.descriptor.size, layer.descriptor.size, true);
}
