import { createHash } from 'node:crypto';
import { isStowageError } from '../errors/index.js';
import { parseDigest, type Digest } from '../oci/index.js';
import type { Ctx } from './context.js';
import { platformManifests } from './manifest.js';
import { danglingName, isDanglingName, isDanglingRecord } from './names.js';
import type { ProgressSink } from './progress.js';
import type { CheckProblem, CheckReport } from './types.js';

async function verifyBlob(ctx: Ctx, digest: Digest, hash: boolean): Promise<'ok' | 'missing' | 'corrupt'> {
  if (!hash) return (await ctx.blobs().has(digest)) ? 'ok' : 'missing';
  let r;
  try { r = await ctx.content.readerAt({ digest }); } catch (e) {
    if (isStowageError(e, 'NotFound')) return 'missing';
    throw e;
  }
  try {
    const { algorithm } = parseDigest(digest);
    const h = createHash(algorithm);
    for await (const chunk of r.stream()) h.update(chunk as Buffer);
    return `${algorithm}:${h.digest('hex')}` === digest ? 'ok' : 'corrupt';
  } finally { await r.close(); }
}

/**
 * Image-level consistency: every record's target and the blobs its present manifests reach exist and
 * hash right; dangling records are only kept where needed; containers have their snapshots.
 * `repair` fixes what is safe: redundant dangling records and container records whose snapshot is gone.
 */
export async function checkImages(ctx: Ctx, opts: { repair?: boolean; hash?: boolean; progress?: ProgressSink } = {}): Promise<CheckReport> {
  const problems: CheckProblem[] = [];
  const add = (kind: string, subject: string, message: string, repaired = false, cls: CheckProblem['class'] = 'damage') => problems.push({ kind, class: cls, subject, message, repaired });
  const records = ctx.md.images.list();
  const blobs = ctx.blobs();
  const verified = new Map<Digest, 'ok' | 'missing' | 'corrupt'>();
  const verify = async (d: Digest) => {
    let v = verified.get(d);
    if (!v) { v = await verifyBlob(ctx, d, opts.hash ?? true); verified.set(d, v); }
    return v;
  };

  opts.progress?.status('Checking images');
  for (const r of records) {
    if (isDanglingName(r.name) && r.name !== danglingName(r.target.digest)) {
      add('dangling-name', r.name, `dangling record ${r.name} points at ${r.target.digest}`);
    }
    if (isDanglingRecord(r) && records.some((o) => o !== r && o.target.digest === r.target.digest && !isDanglingRecord(o))) {
      let repaired = false;
      if (opts.repair) { try { ctx.md.images.delete(r.name, { target: r.target.digest }); repaired = true; } catch { /* raced */ } }
      add('redundant-dangling', r.name, `dangling record kept although ${r.target.digest} still has a name`, repaired, 'reclaimable');
    }
  }
  const targets = new Set(records.map((r) => r.target.digest));
  let checked = 0;
  for (const digest of targets) {
    const rec = records.find((r) => r.target.digest === digest)!;
    opts.progress?.bytes('Checking image', digest, ++checked, targets.size, true);
    const t = await verify(digest);
    if (t !== 'ok') { add(`target-${t}`, digest, `image target ${digest} is ${t} (${rec.name})`); continue; }
    for (const m of await platformManifests(rec.target, blobs, ctx.sizes)) {
      if (!(await m.present())) continue; // platforms that were never pulled
      const mv = await verify(m.digest);
      if (mv !== 'ok') { add(`manifest-${mv}`, m.digest, `manifest ${m.digest} is ${mv}`); continue; }
      const doc = await m.manifestDoc();
      const cv = await verify(doc.config.digest);
      if (cv !== 'ok') add(`config-${cv}`, doc.config.digest, `config ${doc.config.digest} of ${m.digest} is ${cv}`);
      const unpacked = await m.isUnpacked().catch(() => false);
      for (const l of doc.layers) {
        const lv = await verify(l.digest);
        if (lv === 'corrupt' || (lv === 'missing' && !unpacked)) add(`layer-${lv}`, l.digest, `layer ${l.digest} of ${m.digest} is ${lv}`);
      }
    }
  }
  opts.progress?.status('Checking containers');
  for (const c of ctx.md.containers.list()) {
    try { await ctx.snaps.stat(c.snapshotKey); } catch (e) {
      if (!isStowageError(e, 'NotFound')) throw e;
      let repaired = false;
      if (opts.repair) { try { ctx.md.containers.delete(c.id); repaired = true; } catch { /* gone */ } }
      add('container-snapshot-missing', c.id, `container ${c.id} has no snapshot ${c.snapshotKey}`, repaired);
    }
  }
  return { ok: problems.every((p) => p.repaired || p.class !== 'damage'), problems };
}
