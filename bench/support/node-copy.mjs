// A plain copier of a tree in Node, as `cp -a`, on both cores: beside the checkout in bench/pull.ts, what
// copying from Node costs on this machine before a layer or a store is read (Node's start and its cost
// per call). One tree, no whiteouts, no ownership records: per entry one lstat, then mkdir, or copyFileSync (the
// kernel copies; EXCL, see src/snapshots/checkout-walk.ts) and utimes, or readlink, symlink and lutimes;
// owners only where they differ from ours; names of one inode stay one inode, as with `cp -a`.
// Directories are handed to worker threads (one per core, at most 4), each filling a directory at a
// time, as `cp -a` of the tree's parts at once would; files with other names are placed after the walk.
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
  const copy = (s, t, st) => {
    fs.copyFileSync(s, t, fs.constants.COPYFILE_EXCL);
    own(t, st);
    if (st.mode & 0o6000) fs.chmodSync(t, st.mode & 0o7777); // chown cleared them
    fs.utimesSync(t, st.atimeMs / 1000, st.mtimeMs / 1000);
  };
  return {
    /** Names of one inode: the first copied, the others linked to it. */
    placeShared(names) {
      const st = fs.lstatSync(names[0][0]);
      copy(names[0][0], names[0][1], st);
      for (const [, t] of names.slice(1)) fs.linkSync(names[0][1], t);
    },
    fill(src, dst) {
      const sub = [];
      const shared = [];
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
          if (st.nlink > 1) shared.push([s, t, `${st.dev}:${st.ino}`]);
          else copy(s, t, st);
        } else if (st.isSymbolicLink()) {
          fs.symlinkSync(fs.readlinkSync(s), t);
          own(t, st);
          fs.lutimesSync(t, at, mt);
        }
      }
      return { sub, shared };
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
  const shared = new Map();
  let busy = 0;
  await new Promise((resolve, reject) => {
    const pump = () => {
      for (let i = 0; i < n; i++) while (held[i] < 2 && queue.length > 0) { held[i]++; busy++; threads[i].postMessage(queue.pop()); }
      if (busy === 0 && queue.length === 0) resolve();
    };
    threads.forEach((w, i) => {
      w.on('message', ({ sub, shared: names }) => {
        held[i]--; busy--;
        for (const j of sub) queue.push(j);
        for (const [s, t, key] of names) { const g = shared.get(key); if (g) g.push([s, t]); else shared.set(key, [[s, t]]); }
        pump();
      });
      w.on('error', reject);
    });
    pump();
  });
  // Each inode's names on one thread, the inodes spread over all of them.
  const groups = [...shared.values()];
  await Promise.all(threads.map((w, i) => new Promise((resolve) => {
    w.once('message', resolve);
    w.postMessage({ shared: groups.filter((_, k) => k % n === i) });
  })));
  await Promise.all(threads.map((w) => new Promise((resolve) => { w.once('message', resolve); w.postMessage('finish'); })));
  await Promise.all(threads.map((w) => w.terminate()));
} else {
  const f = filler();
  parentPort.on('message', (m) => {
    if (m === 'finish') f.finish();
    else if (m.shared) for (const names of m.shared) f.placeShared(names);
    else { parentPort.postMessage(f.fill(m[0], m[1])); return; }
    parentPort.postMessage({ sub: [], shared: [] });
  });
}
