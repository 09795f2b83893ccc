/**
 * Optional htpasswd Basic auth, as docker's registry does it: every request needs a user and password
 * from the file (bcrypt `$2y$` hashes, what `htpasswd -B` writes; `{SHA}` is also read), else
 * 401 UNAUTHORIZED with a Basic challenge. Checked passwords are remembered by a hash of the header,
 * so that bcrypt's cost is paid once per client, not per request.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import bcrypt from 'bcryptjs';
import { InvalidArgumentError, fromSystemError } from '../../errors/index.js';
import { RegistryError } from './errors.js';

export const REALM = 'stowage';

export class Htpasswd {
  private readonly users = new Map<string, string>();
  private readonly verified = new Map<string, string>();

  constructor(text: string, where = 'htpasswd') {
    text.split(/\r?\n/).forEach((line, i) => {
      const l = line.trim();
      if (l === '' || l.startsWith('#')) return;
      const colon = l.indexOf(':');
      if (colon <= 0) throw new InvalidArgumentError(`${where}:${i + 1}: not a user:hash line`);
      const hash = l.slice(colon + 1);
      if (!/^\$2[aby]\$/.test(hash) && !hash.startsWith('{SHA}')) {
        throw new InvalidArgumentError(`${where}:${i + 1}: only bcrypt ($2y$, htpasswd -B) and {SHA} hashes are supported`);
      }
      this.users.set(l.slice(0, colon), hash);
    });
  }

  static load(file: string): Htpasswd {
    let text: string;
    try { text = fs.readFileSync(file, 'utf8'); } catch (e) { throw fromSystemError(e, `htpasswd file ${file}`); }
    return new Htpasswd(text, file);
  }

  /** The user an Authorization header proves, or a 401 RegistryError. */
  async authenticate(header: string | undefined): Promise<string> {
    const challenge = { headers: { 'www-authenticate': `Basic realm="${REALM}"` } };
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
    if (!m) throw new RegistryError('UNAUTHORIZED', 'authentication required', undefined, challenge);
    const key = createHash('sha256').update(m[1]!).digest('hex');
    const known = this.verified.get(key);
    if (known !== undefined && this.users.has(known)) return known;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon >= 0 ? decoded.slice(0, colon) : decoded;
    const password = colon >= 0 ? decoded.slice(colon + 1) : '';
    const hash = this.users.get(user);
    if (hash === undefined || !(await check(password, hash))) {
      throw new RegistryError('UNAUTHORIZED', 'invalid username or password', undefined, challenge);
    }
    if (this.verified.size > 1024) this.verified.clear();
    this.verified.set(key, user);
    return user;
  }
}

async function check(password: string, hash: string): Promise<boolean> {
  if (hash.startsWith('{SHA}')) {
    const want = Buffer.from(hash.slice(5), 'base64');
    const got = createHash('sha1').update(password).digest();
    return want.length === got.length && timingSafeEqual(want, got);
  }
  return bcrypt.compare(password, hash);
}
