import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { throwIfAborted } from '../errors/index.js';
import { tarStream } from '../snapshots/index.js';
import type { LayerEntry } from './file-tree.js';
import type * as TarStream from 'tar-stream';

/** Files up to this size are read in one call; larger ones are streamed. */
const READ_WHOLE = 1 << 20;

/**
 * The uncompressed tar of a layer, written entry by entry as the reader pulls it. Headers carry numeric
 * owners only (no user or group names) and the given times, so the same entries make the same bytes.
 */
export function layerTar(entries: readonly LayerEntry[], signal?: AbortSignal): Readable {
  const pack = tarStream().pack();
  const write = async (): Promise<void> => {
    for (const e of entries) {
      throwIfAborted(signal);
      const common = { name: e.path, mtime: e.mtime, uname: '', gname: '' };
      if (e.kind === 'dir') {
        await entry(pack, { ...common, type: 'directory', mode: e.mode, uid: e.uid, gid: e.gid });
      } else if (e.kind === 'symlink') {
        await entry(pack, { ...common, type: 'symlink', linkname: e.target, mode: 0o777, uid: e.uid, gid: e.gid });
      } else if (e.kind === 'hardlink') {
        await entry(pack, { ...common, type: 'link', linkname: e.target, mode: 0o644, uid: 0, gid: 0 });
      } else if ('bytes' in e.body) {
        await entry(pack, { ...common, type: 'file', mode: e.mode, uid: e.uid, gid: e.gid, size: e.body.bytes.length }, Buffer.from(e.body.bytes.buffer, e.body.bytes.byteOffset, e.body.bytes.byteLength));
      } else if (e.body.size <= READ_WHOLE) {
        // Small files read whole: for them a per-file stream costs more than reading the bytes does.
        const bytes = fs.readFileSync(e.body.file);
        await entry(pack, { ...common, type: 'file', mode: e.mode, uid: e.uid, gid: e.gid, size: e.body.size }, bytes);
      } else {
        const { file, size } = e.body;
        const sink = pack.entry({ ...common, type: 'file', mode: e.mode, uid: e.uid, gid: e.gid, size });
        // A file that changed size since it was listed makes tar-stream fail the entry: the layer is refused, never wrong.
        await pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), sink);
      }
    }
    pack.finalize();
  };
  write().catch((err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))));
  return pack as unknown as Readable;
}

function entry(pack: TarStream.Pack, header: Parameters<TarStream.Pack["entry"]>[0], body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
    if (body !== undefined) pack.entry(header, body, cb);
    else pack.entry(header, cb);
  });
}
