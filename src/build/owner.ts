/**
 * `--chown=user[:group]`: numbers as given, names looked up in the image's own /etc/passwd and
 * /etc/group (never the host's), as docker's classic builder does.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError } from '../errors/index.js';
import { lookupMerged } from '../snapshots/index.js';
import type { Owner } from './copy.js';

function readInImage(upper: string, lowers: string[], rel: string): string | undefined {
  const own = path.join(upper, rel);
  if (fs.existsSync(own)) return fs.readFileSync(own, 'utf8');
  const e = lookupMerged(lowers, rel);
  if (!e || !e.st.isFile()) return undefined;
  return fs.readFileSync(e.src, 'utf8');
}

function lookupId(file: string | undefined, name: string, what: 'user' | 'group', fileName: string): { id: number } {
  if (file === undefined) throw new InvalidArgumentError(`unable to convert ${what} ${name} to id: no ${fileName} file in the image`, { [what]: name });
  for (const line of file.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 3) {
      return { id: Number(f[2]) };
    }
  }
  throw new InvalidArgumentError(`unable to find ${what} ${name}: no matching entries in ${what === 'user' ? 'passwd' : 'group'} file`, { [what]: name });
}

/** The uid and gid a `--chown` value names. A user given alone names the group too (docker reads `bin` as `bin:bin`). */
export function resolveOwner(spec: string, lowers: string[], upper: string): Owner {
  const [user = '', group] = spec.split(':');
  if (user === '') throw new InvalidArgumentError(`invalid --chown ${JSON.stringify(spec)}`, { chown: spec });
  const grp = group === undefined || group === '' ? user : group;
  const uid = /^\d+$/.test(user) ? Number(user) : lookupId(readInImage(upper, lowers, 'etc/passwd'), user, 'user', '/etc/passwd').id;
  const gid = /^\d+$/.test(grp) ? Number(grp) : lookupId(readInImage(upper, lowers, 'etc/group'), grp, 'group', '/etc/group').id;
  return { uid, gid };
}
