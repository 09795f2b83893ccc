// The body of a checkout thread (see checkout-threads.ts). It may start ahead of its checkout; then it
// fills the directories it is given, gives work away while another walker is idle, and reports what
// it did when the walk is done.
import { parentPort, type MessagePort } from 'node:worker_threads';
import { errorToWire } from '../errors/index.js';
import { CTL, drain, type FromThread, type ToThread } from './checkout-threads.js';
import { TreeWalker, type DirTask } from './checkout-walk.js';

parentPort!.once('message', (setup: Extract<ToThread, { type: 'setup' }>) => {
  const ctl = new Int32Array(setup.ctl);
  const walker = new TreeWalker(setup.setup);
  const port: MessagePort = setup.port;
  const stack: DirTask[] = [];
  const send = (m: FromThread): void => { port.postMessage(m); Atomics.add(ctl, CTL.mail, 1); };
  /** Waiting for work: counted first, so that busy walkers start sharing before the message arrives. */
  const idle = (): void => {
    Atomics.add(ctl, CTL.hungry, 1);
    send({ type: 'idle' });
  };
  port.on('message', (m: ToThread) => {
    if (m.type === 'finish') { send({ type: 'report', report: walker.report }); return; }
    if (m.type !== 'tasks') return;
    stack.push(...m.tasks);
    try {
      drain(walker, stack, ctl, (tasks) => send({ type: 'share', tasks }));
    } catch (e) {
      Atomics.store(ctl, CTL.stop, 1);
      send({ type: 'failed', error: errorToWire(e) });
      return;
    }
    stack.length = 0; // what a stop left
    idle();
  });
  idle();
});
