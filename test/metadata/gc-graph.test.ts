// TestGCRoots, TestGCRefs and the mark half of TestGCRemove (containerd core/metadata/gc_test.go),
// restated as data: one fixture of records and labels, and the exact root set, edges and survivors.
import { describe, expect, it } from 'vitest';
import { Graph, isKeyOf, keeps, labelRefs, type GraphData, type Node } from '../../src/metadata/gcgraph.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const PAST = '2026-11-22T11:00:00Z';
const FUTURE = '2026-11-22T13:00:00Z';
const G = 'containerd.io/gc.';

const fixture = {
  now: NOW,
  leases: [
    { id: 'l1', labels: {}, resources: [
      { type: 'content', id: 'c-l1' }, { type: 'ingests', id: 'ing-l1' },
      { type: 'images', id: 'img-lease' }, { type: 'snapshots/overlay', id: 'snap-l1' }] },
    { id: 'l2-expired', labels: { [`${G}expire`]: PAST }, resources: [
      { type: 'content', id: 'c-l2' }, { type: 'snapshots/overlay', id: 'snap-l2' }] },
    { id: 'l3-flat', labels: { [`${G}expire`]: FUTURE, [`${G}flat`]: '1' }, resources: [
      { type: 'content', id: 'c-l3' }, { type: 'images', id: 'img-flat' }, { type: 'snapshots/overlay', id: 'snap-l3' }] },
    { id: 'l4-bad-expiry', labels: { [`${G}expire`]: 'tomorrow' }, resources: [] },
  ],
  images: [
    { name: 'img1', target: 'c-img1', labels: {} },
    { name: 'img2-expired', target: 'c-img2', labels: { [`${G}expire`]: PAST } },
    { name: 'img3-future', target: 'c-img3', labels: { [`${G}expire`]: FUTURE, [`${G}ref.content.extra`]: 'c-img3-extra' } },
    { name: 'img-lease', target: 'c-imglease', labels: { [`${G}expire`]: PAST } },
    { name: 'img-flat', target: 'c-imgflat', labels: { [`${G}expire`]: PAST, [`${G}ref.content`]: 'c-flat-label' } },
    { name: 'img-by-ref', target: 'c-imgbyref', labels: { [`${G}expire`]: PAST } },
  ],
  blobs: [
    { digest: 'c-root', labels: { [`${G}root`]: '2026-01-01T00:00:00Z' } },
    { digest: 'c-root-empty', labels: { [`${G}root`]: '' } },
    { digest: 'c-img1', labels: {
      [`${G}ref.content.config`]: 'c-config',
      [`${G}ref.content.l.0`]: 'c-layer0',
      [`${G}ref.content/custom`]: 'c-slash',
      [`${G}ref.content`]: 'c-plain',
      [`${G}ref.contentbad`]: 'c-bad',
      [`${G}ref.snapshot.overlay`]: 'snap-top',
      [`${G}ref.snapshot.native/x`]: 'nsnap',
      [`${G}ref.snapshot.`]: 'nosnapshotter',
      [`${G}ref.image.by`]: 'img-by-ref',
      [`${G}ref.imagebad`]: 'img2-expired',
      'other.label': 'c-other',
    } },
    { digest: 'c-bref-content', labels: { [`${G}bref.content`]: 'c-img1' } },
    { digest: 'c-bref-content-dot', labels: { [`${G}bref.content.x`]: 'c-img1' } },
    { digest: 'c-bref-image', labels: { [`${G}bref.image`]: 'img3-future' } },
    { digest: 'c-bref-container', labels: { [`${G}bref.container`]: 'ctr1' } },
    { digest: 'c-bref-dead', labels: { [`${G}bref.content`]: 'c-img2' } },
    { digest: 'c-bref-bad', labels: { [`${G}bref.contentbad`]: 'c-img1' } },
    { digest: 'c-l3', labels: { [`${G}ref.content`]: 'c-l3-child' } },
    { digest: 'c-imgflat', labels: { [`${G}ref.content`]: 'c-imgflat-child' } },
    { digest: 'c-snapref', labels: {} },
  ],
  snapshots: [
    { snapshotter: 'overlay', key: 'snap-base', labels: {} },
    { snapshotter: 'overlay', key: 'snap-top', parent: 'snap-base', labels: { [`${G}ref.content.x`]: 'c-snapref' } },
    { snapshotter: 'overlay', key: 'snap-root', labels: { [`${G}root`]: 'yes' } },
    { snapshotter: 'overlay', key: 'snap-l1', labels: {} },
    { snapshotter: 'overlay', key: 'snap-l2', labels: {} },
    { snapshotter: 'overlay', key: 'snap-l3-parent', labels: {} },
    { snapshotter: 'overlay', key: 'snap-l3', parent: 'snap-l3-parent', labels: { [`${G}ref.content`]: 'c-from-flat-snap' } },
    { snapshotter: 'overlay', key: 'snap-bref', labels: { [`${G}bref.snapshot.overlay`]: 'snap-top' } },
    { snapshotter: 'overlay', key: 'snap-ctr', labels: {} },
    { snapshotter: 'overlay', key: 'snap-ctr2', labels: {} },
    { snapshotter: 'native', key: 'nsnap', labels: {} },
    { snapshotter: 'native', key: 'snap-top', labels: {} },
  ],
  containers: [
    { id: 'ctr1', snapshotter: 'overlay', snapshotKey: 'snap-ctr', labels: {
      [`${G}ref.content.any/thing`]: 'c-ctr',
      [`${G}ref.snapshot.overlay/anything`]: 'snap-ctr2',
    } },
  ],
  ingests: [
    { ref: 'ing-none', expected: 'c-ing-none' },
    { ref: 'ing-past', expected: 'c-ing-past', expiresAt: NOW - 1 },
    { ref: 'ing-future', expected: 'c-ing-future', expiresAt: NOW + 60_000 },
    { ref: 'ing-l1', expected: 'c-ing-l1' },
  ],
} as unknown as GraphData; // short names instead of digests: the graph never parses them

describe('TestGCRoots', () => {
  it('yields exactly the containerd root set', () => {
    const roots = new Graph(fixture).roots();
    expect(new Set(roots).size).toBe(roots.length);
    expect(roots.slice().sort()).toEqual(([
      'lease:l1', 'content:c-l1', 'ingest:ing-l1', 'image:img-lease', 'snapshot:overlay/snap-l1',
      'lease:l3-flat', 'flat-content:c-l3', 'flat-image:img-flat', 'flat-snapshot:overlay/snap-l3',
      'lease:l4-bad-expiry', // an unparsable expiry never expires
      'image:img1', 'image:img3-future', // expired images are not roots
      'content:c-root', // an empty gc.root is not a root
      'snapshot:overlay/snap-root',
      'ingest:ing-future', // no expiry and past expiry are not roots
      'container:ctr1',
    ] as Node[]).sort());
  });
});

describe('TestGCRefs', () => {
  const g = new Graph(fixture);
  const cases: [Node, Node[]][] = [
    ['content:c-img1', [
      'content:c-config', 'content:c-layer0', 'content:c-slash', 'content:c-plain',
      'snapshot:overlay/snap-top', 'snapshot:native/nsnap', 'image:img-by-ref',
      // back-references: children that name c-img1 (the `contentbad` one does not count)
      'content:c-bref-content', 'content:c-bref-content-dot',
    ]],
    ['content:c-root', []],
    ['content:unknown', []],
    ['flat-content:c-l3', []],                                   // flat content follows nothing
    ['content:c-l3', ['content:c-l3-child']],
    ['image:img1', ['content:c-img1']],
    ['image:img3-future', ['content:c-img3', 'content:c-img3-extra', 'content:c-bref-image']],
    ['image:img-flat', ['content:c-imgflat', 'content:c-flat-label']],
    ['flat-image:img-flat', ['flat-content:c-imgflat']],         // target only, as flat content
    ['snapshot:overlay/snap-top', ['snapshot:overlay/snap-base', 'content:c-snapref', 'snapshot:overlay/snap-bref']],
    ['snapshot:native/snap-top', []],                             // same key, other snapshotter
    ['snapshot:overlay/snap-l3', ['snapshot:overlay/snap-l3-parent', 'content:c-from-flat-snap']],
    ['flat-snapshot:overlay/snap-l3', ['flat-snapshot:overlay/snap-l3-parent']], // flat: parents only
    ['container:ctr1', ['snapshot:overlay/snap-ctr', 'content:c-ctr', 'snapshot:overlay/snap-ctr2', 'content:c-bref-container']],
    ['ingest:ing-none', ['content:c-ing-none']],
    ['ingest:unknown', []],
    ['lease:l1', []],
  ];
  it.each(cases)('%s', (n, want) => {
    expect(g.refs(n).slice().sort()).toEqual(want.slice().sort());
  });

  it('matches keys exactly: prefix, then end, "." or "/"', () => {
    const p = 'containerd.io/gc.ref.content';
    expect(isKeyOf(p, p)).toBe(true);
    expect(isKeyOf(`${p}.x`, p)).toBe(true);
    expect(isKeyOf(`${p}/x`, p)).toBe(true);
    expect(isKeyOf(`${p}bad`, p)).toBe(false);
    expect(isKeyOf(`${p}-x`, p)).toBe(false);
    expect(labelRefs({ [`${G}ref.content.a`]: '' })).toEqual([]); // empty values state no edge
  });
});

describe('TestGCRemove (mark)', () => {
  it('keeps exactly what is reachable', () => {
    const k = keeps(new Graph(fixture).mark());
    const all = (xs: string[], f: (x: string) => boolean) => xs.filter(f).sort();
    const blobs = [...new Set([
      ...fixture.blobs.map((b) => b.digest), ...fixture.images.map((i) => i.target),
      'c-config', 'c-layer0', 'c-slash', 'c-plain', 'c-bad', 'c-other', 'c-l1', 'c-l2', 'c-ing-none', 'c-ing-past', 'c-ing-future', 'c-ing-l1',
      'c-ctr', 'c-l3-child', 'c-imgflat-child', 'c-flat-label', 'c-from-flat-snap', 'c-img3-extra',
    ])];
    expect(all(blobs, (d) => !k.blob(d))).toEqual([
      'c-bad', 'c-bref-bad', 'c-bref-dead', 'c-flat-label', 'c-from-flat-snap', 'c-img2', 'c-imgflat-child', 'c-ing-none', 'c-ing-past',
      'c-l2', 'c-l3-child', 'c-other', 'c-root-empty',
    ].sort());
    expect(all(fixture.images.map((i) => i.name), (n) => !k.image(n))).toEqual(['img2-expired']);
    expect(all(fixture.snapshots.map((s) => `${s.snapshotter}/${s.key}`), (s) => {
      const [sn, ...key] = s.split('/'); return !k.snapshot(sn!, key.join('/'));
    })).toEqual(['native/snap-top', 'overlay/snap-l2']);
    expect(all(fixture.leases.map((l) => l.id), (id) => !k.lease(id))).toEqual(['l2-expired']);
    expect(all(fixture.ingests.map((i) => i.ref), (r) => !k.ingest(r))).toEqual(['ing-none', 'ing-past']);
  });

  it('an expired lease stops protecting; a live one protects', () => {
    const data = { ...fixture, leases: [{ id: 'x', labels: { [`${G}expire`]: FUTURE }, resources: [{ type: 'content', id: 'c-l2' }] }] } as GraphData;
    expect(keeps(new Graph(data).mark()).blob('c-l2')).toBe(true);
    expect(keeps(new Graph({ ...data, now: Date.parse(FUTURE) + 1 }).mark()).blob('c-l2')).toBe(false);
  });
});
