import type { Digest } from '../oci/index.js';
import { GC_BREF_PREFIX, GC_FLAT, GC_REF_PREFIX, GC_ROOT } from '../content/index.js';
import { expiryOf } from './labels.js';
import type { Labels, LeaseResource } from './types.js';

/**
 * The reference graph GC marks, as pure data: no SQL, no files. Nodes are strings `<type>:<key>`:
 * `content:<digest>`, `snapshot:<snapshotter>/<key>`, `image:<name>`, `container:<id>`,
 * `lease:<id>`, `ingest:<ref>`, and the flat variants `flat-content`, `flat-snapshot`, `flat-image`
 * (objects reached through a `gc.flat` lease: they keep their target/parents but not their label edges).
 */
export type NodeType = 'content' | 'snapshot' | 'image' | 'container' | 'lease' | 'ingest'
  | 'flat-content' | 'flat-snapshot' | 'flat-image';
export type Node = `${NodeType}:${string}`;

export interface GraphData {
  /** Time of the mark, ms since the epoch: expiry is judged against it. */
  now: number;
  leases: { id: string; labels: Labels; resources: LeaseResource[] }[];
  images: { name: string; target: Digest; labels: Labels }[];
  blobs: { digest: Digest; labels: Labels }[];
  snapshots: { snapshotter: string; key: string; parent?: string; labels: Labels }[];
  containers: { id: string; snapshotter: string; snapshotKey: string; labels: Labels }[];
  /** Ingests in progress; one with `expiresAt` in the future is a root (as containerd's `expireat`). */
  ingests: { ref: string; expected?: Digest; expiresAt?: number }[];
}

export const node = (type: NodeType, key: string): Node => `${type}:${key}`;
export function splitNode(n: Node): { type: NodeType; key: string } {
  const i = n.indexOf(':');
  return { type: n.slice(0, i) as NodeType, key: n.slice(i + 1) };
}

/** `key` is `prefix` exactly, or `prefix` followed by `.` or `/` (so `gc.ref.contentbad` is not a content ref). */
export function isKeyOf(key: string, prefix: string): boolean {
  if (!key.startsWith(prefix)) return false;
  const next = key[prefix.length];
  return next === undefined || next === '.' || next === '/';
}

/**
 * The nodes the labels under `prefix` name: `<prefix>content[…]`, `image[…]` and the other `kinds`, and
 * `<prefix>snapshot.<snapshotter>[/<anything>]` (the suffix after `/` is ignored). Empty values name nothing.
 */
function labelEdges(labels: Labels, prefix: string, kinds: readonly NodeType[]): Node[] {
  const out: Node[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (!k.startsWith(prefix) || v === '') continue;
    const rest = k.slice(prefix.length);
    const kind = kinds.find((t) => isKeyOf(rest, t));
    if (kind) out.push(node(kind, v));
    else if (rest.startsWith('snapshot.')) {
      const sn = rest.slice('snapshot.'.length).split('/')[0]!;
      if (sn !== '') out.push(node('snapshot', `${sn}/${v}`));
    }
  }
  return out;
}

/** The forward edges a set of labels states. */
export function labelRefs(labels: Labels): Node[] {
  return labelEdges(labels, GC_REF_PREFIX, ['content', 'image']);
}

/** Back-references a set of labels states: the parents whose reachability keeps this object. */
export function labelBackRefs(labels: Labels): Node[] {
  return labelEdges(labels, GC_BREF_PREFIX, ['content', 'image', 'container']);
}

function expired(labels: Labels, now: number): boolean {
  const t = expiryOf(labels);
  return t !== undefined && t <= now;
}

export class Graph {
  private readonly blobLabels = new Map<string, Labels>();
  private readonly imageOf = new Map<string, { target: Digest; labels: Labels }>();
  private readonly snapshotOf = new Map<string, { parent?: string; labels: Labels; snapshotter: string }>();
  private readonly containerOf = new Map<string, { snapshot: string; labels: Labels }>();
  private readonly ingestOf = new Map<string, Digest | undefined>();
  /** parent node -> children that name it in a `gc.bref.*` label. */
  private readonly backRefs = new Map<Node, Node[]>();

  constructor(readonly data: GraphData) {
    const addBack = (child: Node, labels: Labels) => {
      for (const p of labelBackRefs(labels)) {
        const list = this.backRefs.get(p);
        if (list) list.push(child); else this.backRefs.set(p, [child]);
      }
    };
    for (const b of data.blobs) { this.blobLabels.set(b.digest, b.labels); addBack(node('content', b.digest), b.labels); }
    for (const i of data.images) { this.imageOf.set(i.name, i); addBack(node('image', i.name), i.labels); }
    for (const s of data.snapshots) {
      const k = `${s.snapshotter}/${s.key}`;
      this.snapshotOf.set(k, { parent: s.parent, labels: s.labels, snapshotter: s.snapshotter });
      addBack(node('snapshot', k), s.labels);
    }
    for (const c of data.containers) this.containerOf.set(c.id, { snapshot: `${c.snapshotter}/${c.snapshotKey}`, labels: c.labels });
    for (const g of data.ingests) this.ingestOf.set(g.ref, g.expected);
  }

  /** The root set, as containerd's scanRoots. */
  roots(): Node[] {
    const { now } = this.data;
    const out: Node[] = [];
    for (const l of this.data.leases) {
      if (expired(l.labels, now)) continue;
      const flat = (l.labels[GC_FLAT] ?? '') !== '';
      out.push(node('lease', l.id));
      for (const r of l.resources) {
        if (r.type === 'content') out.push(node(flat ? 'flat-content' : 'content', r.id));
        else if (r.type === 'ingests') out.push(node('ingest', r.id));
        else if (r.type === 'images') out.push(node(flat ? 'flat-image' : 'image', r.id));
        else if (r.type.startsWith('snapshots/')) out.push(node(flat ? 'flat-snapshot' : 'snapshot', `${r.type.slice('snapshots/'.length)}/${r.id}`));
      }
    }
    for (const i of this.data.images) if (!expired(i.labels, now)) out.push(node('image', i.name));
    for (const b of this.data.blobs) if ((b.labels[GC_ROOT] ?? '') !== '') out.push(node('content', b.digest));
    for (const s of this.data.snapshots) if ((s.labels[GC_ROOT] ?? '') !== '') out.push(node('snapshot', `${s.snapshotter}/${s.key}`));
    for (const g of this.data.ingests) if (g.expiresAt !== undefined && g.expiresAt > now) out.push(node('ingest', g.ref));
    for (const c of this.data.containers) out.push(node('container', c.id));
    return out;
  }

  /** The edges out of one node, as containerd's references (back-references included). */
  refs(n: Node): Node[] {
    const { type, key } = splitNode(n);
    const out: Node[] = [];
    switch (type) {
      case 'content': {
        const labels = this.blobLabels.get(key);
        if (labels) out.push(...labelRefs(labels));
        break;
      }
      case 'snapshot': case 'flat-snapshot': {
        const s = this.snapshotOf.get(key);
        if (!s) break;
        if (s.parent !== undefined) out.push(node(type, `${s.snapshotter}/${s.parent}`));
        if (type === 'snapshot') out.push(...labelRefs(s.labels));
        break;
      }
      case 'image': case 'flat-image': {
        const i = this.imageOf.get(key);
        if (!i) break;
        out.push(node(type === 'image' ? 'content' : 'flat-content', i.target));
        if (type === 'image') out.push(...labelRefs(i.labels));
        break;
      }
      case 'container': {
        const c = this.containerOf.get(key);
        if (!c) break;
        if (!c.snapshot.endsWith('/')) out.push(node('snapshot', c.snapshot));
        out.push(...labelRefs(c.labels));
        break;
      }
      case 'ingest': {
        const expected = this.ingestOf.get(key);
        if (expected) out.push(node('content', expected));
        break;
      }
      default: break;
    }
    const back = this.backRefs.get(n);
    if (back) out.push(...back);
    return out;
  }

  /** Everything reachable from the roots (iterative depth-first; deterministic). */
  mark(): Set<Node> {
    const seen = new Set<Node>();
    const stack = this.roots().reverse();
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      const next = this.refs(n);
      for (let i = next.length - 1; i >= 0; i--) if (!seen.has(next[i]!)) stack.push(next[i]!);
    }
    return seen;
  }
}

/** What a mark keeps, per kind: an object survives when its plain or its flat node is marked. */
export function keeps(marked: Set<Node>) {
  return {
    blob: (d: string) => marked.has(node('content', d)) || marked.has(node('flat-content', d)),
    image: (name: string) => marked.has(node('image', name)) || marked.has(node('flat-image', name)),
    snapshot: (sn: string, key: string) => marked.has(node('snapshot', `${sn}/${key}`)) || marked.has(node('flat-snapshot', `${sn}/${key}`)),
    lease: (id: string) => marked.has(node('lease', id)),
    ingest: (ref: string) => marked.has(node('ingest', ref)),
  };
}
