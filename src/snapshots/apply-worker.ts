// The body of an apply pool thread (see apply-pool.ts): applies the layers the main thread sends, each
// from its LayerFile, and asks the main thread for a pending target's place when the apply needs it.
import { parentPort } from 'node:worker_threads';
import { errorFromWire, errorToWire } from '../errors/index.js';
import { applyHere, type PendingTarget } from './apply.js';
import type { FromWorker, ToWorker } from './apply-pool.js';
import { LayerFile } from './layer-file.js';

const port = parentPort!;
const places = new Map<number, (m: Extract<ToWorker, { type: 'place' }>) => void>();

function send(m: FromWorker): void { port.postMessage(m); }

port.on('message', (m: ToWorker) => {
  if (m.type === 'place') { places.get(m.id)?.(m); return; }
  const file = new LayerFile(m.fd, m.shared);
  const target: string | PendingTarget = typeof m.target === 'string' ? m.target : {
    staging: m.target.staging,
    ready: () => new Promise((resolve, reject) => {
      places.set(m.id, (reply) => {
        places.delete(m.id);
        if (reply.place) resolve(reply.place);
        else reject(errorFromWire(reply.error ?? { message: 'no place for the layer', name: 'Error' }));
      });
      send({ type: 'place', id: m.id });
    }),
  };
  applyHere(file, target, m.opts, true).then(
    (result) => send({ type: 'done', id: m.id, result }),
    (e: unknown) => send({ type: 'failed', id: m.id, error: errorToWire(e) }),
  );
});
