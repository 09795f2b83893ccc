// Registry authentication: bearer tokens shared by concurrent requests (and their aborts), and the
// token endpoint's GET fallback next to Basic credentials. In-process fake registries (test/distribution/fake-transport.ts).
import { describe, expect, it } from 'vitest';
import { AbortedError } from '../../src/errors/index.js';
import { MediaType, digestOf } from '../../src/oci/index.js';
import { RegistryClient, type Transport } from '../../src/distribution/index.js';
import { codeOf } from '../harness/expect.js';
import { manifest, response } from './fake-transport.js';

describe('token fetches shared by concurrent requests', () => {
  it('one caller aborting does not abort the token fetch another caller waits on', async () => {
    let tokenRequests = 0;
    let releaseToken!: () => void;
    const tokenGate = new Promise<void>((r) => { releaseToken = r; });
    let tokenSeen!: () => void;
    const tokenStarted = new Promise<void>((r) => { tokenSeen = r; });
    const anonymous: string[] = [];
    const transport: Transport = async (req) => {
      if (req.url.host === 'auth.test') {
        tokenRequests++;
        tokenSeen();
        await new Promise<void>((resolve, reject) => {
          if (req.signal?.aborted) { reject(new AbortedError('request aborted')); return; }
          req.signal?.addEventListener('abort', () => reject(new AbortedError('request aborted')), { once: true });
          void tokenGate.then(resolve);
        });
        return response(req, 200, { 'content-type': 'application/json' }, JSON.stringify({ token: 'tok' }));
      }
      if (req.headers.authorization !== 'Bearer tok') {
        anonymous.push(req.method);
        return response(req, 401, { 'www-authenticate': 'Bearer realm="https://auth.test/token",service="reg.test"' });
      }
      return response(req, 200, {
        'content-type': MediaType.OciManifest, 'docker-content-digest': digestOf(manifest), 'content-length': String(manifest.length),
      });
    };
    const client = new RegistryClient({ transport, credentials: {} });
    const ac = new AbortController();
    const a = client.resolve('reg.test/app:v1', { signal: ac.signal });
    const aCode = codeOf(a);
    await tokenStarted;
    const b = client.resolve('reg.test/app:v1');
    // b (whose host is now known to want Bearer) joins the same scope's token fetch: joining takes no
    // I/O, so it is done once the promise jobs queued so far have run (a macrotask later).
    await new Promise((r) => setImmediate(r));
    ac.abort();
    expect(await aCode).toBe('Aborted');
    releaseToken();
    const rb = await b;
    expect(rb.descriptor.digest).toBe(digestOf(manifest));
    expect(anonymous).toHaveLength(1);
    // One token fetch, shared: a's abort did not cancel it (else b would have started a second).
    expect(tokenRequests).toBe(1);
  });

  it('when every waiter is gone the shared fetch is aborted, and the next caller starts afresh', async () => {
    let tokenRequests = 0;
    let aborted = 0;
    const transport: Transport = async (req) => {
      if (req.url.host === 'auth.test') {
        tokenRequests++;
        if (tokenRequests === 1) {
          await new Promise<void>((_resolve, reject) => {
            req.signal?.addEventListener('abort', () => { aborted++; reject(new AbortedError('request aborted')); }, { once: true });
          });
        }
        return response(req, 200, { 'content-type': 'application/json' }, JSON.stringify({ token: 'tok' }));
      }
      if (req.headers.authorization !== 'Bearer tok') return response(req, 401, { 'www-authenticate': 'Bearer realm="https://auth.test/token",service="reg.test"' });
      return response(req, 200, { 'content-type': MediaType.OciManifest, 'docker-content-digest': digestOf(manifest), 'content-length': String(manifest.length) });
    };
    const client = new RegistryClient({ transport, credentials: {} });
    const ac = new AbortController();
    const a = codeOf(client.resolve('reg.test/app:v1', { signal: ac.signal }));
    while (tokenRequests === 0) await new Promise((r) => setImmediate(r));
    ac.abort();
    expect(await a).toBe('Aborted');
    expect(aborted).toBe(1); // no socket left waiting on the token server
    expect((await client.resolve('reg.test/app:v1')).descriptor.digest).toBe(digestOf(manifest));
    expect(tokenRequests).toBe(2);
  });
});

describe('token GET fallback', () => {
  it('names the account, as docker does, next to Basic credentials', async () => {
    const tokenGets: URL[] = [];
    const transport: Transport = async (req) => {
      if (req.url.host === 'auth.test') {
        if (req.method === 'POST') return response(req, 404);
        tokenGets.push(req.url);
        return response(req, 200, { 'content-type': 'application/json' }, JSON.stringify({ token: 'tok' }));
      }
      if (req.headers.authorization !== 'Bearer tok') return response(req, 401, { 'www-authenticate': 'Bearer realm="https://auth.test/token",service="reg.test"' });
      return response(req, 200, { 'content-type': MediaType.OciManifest, 'docker-content-digest': digestOf(manifest), 'content-length': String(manifest.length) });
    };
    const client = new RegistryClient({ transport, credentials: { 'reg.test': { username: 'alice', password: 'pw' } } });
    await client.resolve('reg.test/app:v1');
    expect(tokenGets).toHaveLength(1);
    expect(tokenGets[0]!.searchParams.get('account')).toBe('alice');
    expect(tokenGets[0]!.searchParams.getAll('scope')).toEqual(['repository:app:pull']);
    expect(tokenGets[0]!.searchParams.get('service')).toBe('reg.test');
  });
});
