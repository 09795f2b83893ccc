// A plain copier of a tree in Node, as `cp -a`, on both cores: beside the checkout in bench/pull.ts, what
// copying from Node costs on this machine before a layer or a store is read (Node's start and its cost
// per call). One tree, no whiteouts, no ownership records: per entry one lstat, then mkdir, or copyFileSync (the
// kernel copies; EXCL, see src/snapshots/copy-pool.ts) and utimes, or readlink, symlink and lutimes;
// owners only where they differ from ours. Directories are handed to worker threads (one per core,
// at most 4), each filling a directory at a time, as `cp -a` of the tree's parts at once would.
//
//   node bench/support/node-copy.mjs SRC DEST
import fs from 'node:fs';
import os from 'node:os';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

function filler() {
  const euid = process.geteuid();
  const egid = process.getegid();
  const dirs = [];
  const own = (p, st) => { if (st.uid !== euid || st.gid !== egid) fs.lchownSync(p, st.uid, st.gid); };
  return {
    fill(src, dst) {
      const sub = [];
      for (const d of fs.readdirSync(src, { withFileTypes: true })) {
        const s = `${src}/${d.name}`;
        const t = `${dst}/${d.name}`;
        const st = fs.lstatSync(s);
        const at = st.atimeMs / 1000;
        const mt = st.mtimeMs / 1000;
        if (st.isDirectory()) {
          fs.mkdirSync(t, { mode: 0o700 });
          own(t, st);
          dirs.push([t, st.mode & 0o7777, at, mt]);
          sub.push([s, t]);
        } else if (st.isFile()) {
          fs.copyFileSync(s, t, fs.constants.COPYFILE_EXCL);
          own(t, st);
          if (st.mode & 0o6000) fs.chmodSync(t, st.mode & 0o7777); // chown cleared them
          fs.utimesSync(t, at, mt);
        } else if (st.isSymbolicLink()) {
          fs.symlinkSync(fs.readlinkSync(s), t);
          own(t, st);
          fs.lutimesSync(t, at, mt);
        }
      }
      return sub;
    },
    finish() { for (const [p, mode, at, mt] of dirs) { fs.chmodSync(p, mode); fs.utimesSync(p, at, mt); } },
  };
}

if (isMainThread) {
  const [src, dst] = process.argv.slice(2);
  fs.mkdirSync(dst);
  const n = Math.max(1, Math.min(4, os.availableParallelism()));
  const threads = Array.from({ length: n }, () => new Worker(new URL(import.meta.url)));
  const held = threads.map(() => 0);
  const queue = [[src, dst]];
  let busy = 0;
  await new Promise((resolve, reject) => {
    const pump = () => {
      for (let i = 0; i < n; i++) while (held[i] < 2 && queue.length > 0) { held[i]++; busy++; threads[i].postMessage(queue.pop()); }
      if (busy === 0 && queue.length === 0) resolve();
    };
    threads.forEach((w, i) => {
      w.on('message', (sub) => { held[i]--; busy--; for (const j of sub) queue.push(j); pump(); });
      w.on('error', reject);
    });
    pump();
  });
  await Promise.all(threads.map((w) => new Promise((resolve) => { w.once('message', resolve); w.postMessage('finish'); })));
  await Promise.all(threads.map((w) => w.terminate()));
} else {
  const f = filler();
  parentPort.on('message', (m) => {
    if (m === 'finish') { f.finish(); parentPort.postMessage([]); } else parentPort.postMessage(f.fill(m[0], m[1]));
  });
}
