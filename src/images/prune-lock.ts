import fs from 'node:fs';
import path from 'node:path';
import { ConflictError, fromSystemError } from '../errors/index.js';
import { pidExists } from '../owners/index.js';

/**
 * One prune at a time per store root, across processes: an O_EXCL lock file holding the owner's pid.
 * A lock left by a dead process is taken over.
 */
export class PruneLock {
  private constructor(private readonly file: string, private readonly token: string) {}

  static acquire(root: string): PruneLock {
    const file = path.join(root, 'prune.lock');
    const token = `${process.pid} ${Date.now()} ${Math.random().toString(36).slice(2)}`;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.writeFileSync(file, token, { flag: 'wx' });
        return new PruneLock(file, token);
      } catch (e) {
        const err = fromSystemError(e, 'prune lock');
        if (err.code !== 'AlreadyExists') throw err;
        let owner = '';
        try { owner = fs.readFileSync(file, 'utf8'); } catch { continue; }
        const pid = Number(owner.split(' ')[0]);
        if (pid > 0 && pidExists(pid)) throw new ConflictError('a prune operation is already running');
        // Stale: remove only if it is still the same stale owner.
        try { if (fs.readFileSync(file, 'utf8') === owner) fs.unlinkSync(file); } catch { /* raced; retry */ }
      }
    }
    throw new ConflictError('a prune operation is already running');
  }

  release(): void {
    try { if (fs.readFileSync(this.file, 'utf8') === this.token) fs.unlinkSync(this.file); } catch { /* gone */ }
  }
}
