// The reader of layer archives (src/snapshots/tar-reader.ts): where it says the archive ends, what it
// hashes, what each entry is and carries, fed in awkward chunk sizes. Its reading follows tar-stream's
// extractor, which the last case checks on archives tar-stream wrote.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { isStowageError } from '../../src/errors/index.js';
import { TarReader, type TarEntry } from '../../src/snapshots/tar-reader.js';
import { BLOCK, END, blockData, buildTar, file, paxRecords, rawHeader, sealHeader } from './helpers.js';

const pax = (kind: 'x' | 'g', records: [string, Buffer | string][]): Buffer => {
  const body = paxRecords(records);
  return Buffer.concat([rawHeader({ name: 'PaxHeader', type: kind, size: body.length }), blockData(body)]);
};

interface Seen { name: string; type: string | null; body: Buffer; xattrs: Record<string, string> | undefined }

/** Reads `archive` cut into chunks of the given sizes (cycled), as apply does. */
async function read(archive: Buffer, chunks: number[] = [archive.length || 1]): Promise<{ digest: string; size: number; entries: Seen[] }> {
  const entries: Seen[] = [];
  let body: Buffer[] = [];
  const reader = new TarReader({
    entry(h: TarEntry) {
      body = [];
      const xattrs = h.pax && [...h.pax].filter(([k]) => k.startsWith('SCHILY.xattr.'));
      entries.push({ name: h.name, type: h.type, body: Buffer.alloc(0), xattrs: xattrs?.length ? Object.fromEntries(xattrs.map(([k, v]) => [k.slice('SCHILY.xattr.'.length), v.toString('hex')])) : undefined });
    },
    // Slices are only valid during the call: keep copies.
    data(c: Buffer) { body.push(Buffer.from(c)); },
    endEntry() { entries[entries.length - 1]!.body = Buffer.concat(body); },
  });
  for (let o = 0, i = 0; o < archive.length; i++) {
    const n = chunks[i % chunks.length]!;
    const waiting = reader.write(archive.subarray(o, o + n));
    if (waiting) await waiting;
    o += n;
  }
  reader.end();
  return { digest: reader.digester.digest(), size: reader.digester.size, entries };
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('TarReader', () => {
  it('reads up to the end marker and hashes every byte after it too, however the stream is cut', async () => {
    const body = Buffer.concat([rawHeader({ name: 'a', size: 3 }), blockData('abc'), END]);
    const archive = Buffer.concat([body, Buffer.alloc(3000), Buffer.from('trailing garbage, not a header')]);
    for (const chunks of [[archive.length], [1], [511, 2, 1023], [7]]) {
      const r = await read(archive, chunks);
      expect([r.digest, r.size]).toEqual([sha(archive), archive.length]);
      expect(r.entries.map((e) => [e.name, e.body.toString()])).toEqual([['a', 'abc']]);
    }
  });

  it('does not take zero blocks inside entry data for the end marker', async () => {
    const archive = Buffer.concat([rawHeader({ name: 'zeros', size: 3 * BLOCK }), Buffer.alloc(3 * BLOCK), rawHeader({ name: 'after', size: 1 }), blockData('x'), END]);
    const r = await read(archive, [100]);
    expect(r.entries.map((e) => e.name)).toEqual(['zeros', 'after']);
  });

  it('skips data by the PAX size record, not the header field', async () => {
    // The header says 0 bytes; PAX says 1024: the 'hidden' header inside the data is data.
    const hidden = Buffer.concat([rawHeader({ name: 'hidden', size: 0 }), Buffer.alloc(BLOCK)]);
    const archive = Buffer.concat([pax('x', [['size', String(hidden.length)]]), rawHeader({ name: 'big', size: 0 }), hidden, rawHeader({ name: 'next', size: 1 }), blockData('n'), END]);
    const r = await read(archive, [300]);
    expect(r.entries.map((e) => [e.name, e.body.length])).toEqual([['big', hidden.length], ['next', 1]]);
  });

  it('reads base-256 numbers', async () => {
    const size = Buffer.alloc(12);
    size[0] = 0x80;
    size.writeUInt16BE(BLOCK + 1, 10);
    const archive = Buffer.concat([rawHeader({ name: 'b256', size }), blockData(Buffer.alloc(BLOCK + 1, 7)), END]);
    const r = await read(archive);
    expect(r.entries.map((e) => [e.name, e.body.length])).toEqual([['b256', BLOCK + 1]]);
  });

  it('gives a directory no data whatever its size field says, but an old-style name ending in / its data', async () => {
    // tar-stream (3.2.2) reads no data for type 5: the next block is the next header.
    const dirArchive = Buffer.concat([rawHeader({ name: 'd', type: '5', size: BLOCK }), rawHeader({ name: 'f', size: 1 }), blockData('f'), END]);
    const r = await read(dirArchive, [BLOCK]);
    expect(r.entries.map((e) => [e.name, e.type])).toEqual([['d', 'directory'], ['f', 'file']]);
    // A `0` entry named `d/` (or with only a ustar prefix) is a file with data to tar-stream, Go and GNU tar:
    // taking its zero-filled data for the end marker would hide the entries after it.
    for (const oldStyle of [rawHeader({ name: 'd/', size: 2 * BLOCK }), rawHeader({ name: '', prefix: 'pre/', size: 2 * BLOCK })]) {
      const archive = Buffer.concat([oldStyle, Buffer.alloc(2 * BLOCK), rawHeader({ name: 'hidden', size: 1 }), blockData('h'), END]);
      const o = await read(archive, [BLOCK]);
      expect(o.entries.map((e) => [e.type, e.body.length])).toEqual([['file', 2 * BLOCK], ['file', 1]]);
      expect(o.entries[1]!.name).toBe('hidden');
    }
  });

  it('skips a null header (only a checksum) with no data, as tar-stream does', async () => {
    const nul = Buffer.alloc(BLOCK);
    nul.write('0000400\0', 148, 'latin1');
    const archive = Buffer.concat([nul, rawHeader({ name: 'f', size: 1 }), blockData('f'), END]);
    const r = await read(archive);
    expect(r.entries.map((e) => e.name)).toEqual(['f']);
  });

  it('hands each entry the raw bytes of its xattr records, binary values intact', async () => {
    const capability = Buffer.from('0100000200200000ff00000000000000', 'hex'); // not valid UTF-8
    const archive = Buffer.concat([
      pax('x', [['SCHILY.xattr.security.capability', capability], ['SCHILY.xattr.user.a', 'first'], ['SCHILY.xattr.user.a', 'last wins']]),
      rawHeader({ name: 'cap', size: 1 }), blockData('c'),
      rawHeader({ name: 'plain', size: 1 }), blockData('p'),
      END,
    ]);
    const r = await read(archive, [13]);
    expect(r.entries.map((e) => [e.name, e.xattrs])).toEqual([
      ['cap', { 'security.capability': capability.toString('hex'), 'user.a': Buffer.from('last wins').toString('hex') }],
      ['plain', undefined],
    ]);
  });

  it('applies global records only through a local PAX header, and PAX waits past GNU long names', async () => {
    const hex = (s: string): string => Buffer.from(s).toString('hex');
    const longName = 'n'.repeat(150);
    const archive = Buffer.concat([
      pax('g', [['SCHILY.xattr.user.g', 'global']]),
      rawHeader({ name: 'no-local', size: 0 }),
      pax('x', [['SCHILY.xattr.user.l', 'local']]),
      rawHeader({ name: '././@LongLink', type: 'L', size: longName.length + 1 }), blockData(`${longName}\0`),
      rawHeader({ name: 'short', size: 0 }),
      END,
    ]);
    const r = await read(archive, [BLOCK + 1]);
    expect(r.entries.map((e) => [e.name, e.xattrs])).toEqual([
      ['no-local', undefined],
      [longName, { 'user.g': hex('global'), 'user.l': hex('local') }],
    ]);
  });

  it('refuses PAX data larger than tar-stream would read', async () => {
    const archive = Buffer.concat([rawHeader({ name: 'PaxHeader', type: 'x', size: 4 * 1024 * 1024 + 1 }), Buffer.alloc(BLOCK)]);
    await expect(read(archive)).rejects.toThrow(/max size/);
  });

  it('agrees with tar-stream on archives tar-stream wrote', async () => {
    const archive = await buildTar([
      file('a', 'x'.repeat(1000)),
      file('long/'.repeat(40) + 'name', 'deep'),
      file('x', 'v', 0o644, { pax: { 'SCHILY.xattr.user.k': 'v' } }),
      { name: 'd', type: 'directory' },
      file('empty'),
    ]);
    const withTrailer = Buffer.concat([archive, Buffer.alloc(BLOCK * 3)]);
    const r = await read(withTrailer, [64]);
    expect(r.digest).toBe(sha(withTrailer));
    const extract = tar.extract();
    const theirs: Array<[string, string | null | undefined, number]> = [];
    const reading = (async () => {
      for await (const e of extract) {
        let n = 0;
        if (e.header.type !== 'directory') for await (const c of e) n += (c as Buffer).length;
        theirs.push([e.header.name, e.header.type, n]);
      }
    })();
    Readable.from([archive]).pipe(extract);
    await reading;
    expect(r.entries.map((e) => [e.name, e.type, e.body.length])).toEqual(theirs);
    expect(r.entries.map((e) => [e.name, e.body.length])).toEqual([['a', 1000], ['long/'.repeat(40) + 'name', 4], ['x', 1], ['d', 0], ['empty', 0]]);
    expect(r.entries[2]!.xattrs).toEqual({ 'user.k': Buffer.from('v').toString('hex') });
  });

  it('refuses a bad checksum, an unknown format and a cut archive with InvalidArgument', async () => {
    const good = Buffer.concat([rawHeader({ name: 'a', size: 3 }), blockData('abc'), END]);
    const badSum = Buffer.from(good);
    badSum[0] = 0x62; // the name changes, the checksum does not
    const v7 = Buffer.from(good);
    v7.fill(0, 257, 265);
    sealHeader(v7);
    for (const [archive, why] of [[badSum, /checksum/], [v7, /unknown format/], [good.subarray(0, BLOCK + 2), /unexpected end/], [good.subarray(0, 100), /unexpected end/]] as const) {
      const e = await read(archive).then(() => undefined, (x: unknown) => x);
      expect(isStowageError(e, 'InvalidArgument'), String(e)).toBe(true);
      expect((e as Error).message).toMatch(why);
    }
    // Ending between entries, with no end marker, is an archive (as Go's reader takes it).
    expect((await read(good.subarray(0, 2 * BLOCK))).entries.map((e) => e.name)).toEqual(['a']);
  });

  it('waits for an entry the sink is not done with before reading on', async () => {
    const archive = Buffer.concat([rawHeader({ name: 'first', size: 1 }), blockData('1'), rawHeader({ name: 'second', size: 1 }), blockData('2'), END]);
    const order: string[] = [];
    let release!: () => void;
    const reader = new TarReader({
      entry(h) {
        order.push(`entry ${h.name}`);
        if (h.name === 'first') return new Promise<void>((r) => { release = r; });
        return undefined;
      },
      data(c) { order.push(`data ${c.toString()}`); },
      endEntry() { order.push('end'); },
    });
    const waiting = reader.write(archive);
    expect(waiting).toBeInstanceOf(Promise);
    expect(order).toEqual(['entry first']);
    release();
    await waiting;
    reader.end();
    expect(order).toEqual(['entry first', 'data 1', 'end', 'entry second', 'data 2', 'end']);
  });
});
