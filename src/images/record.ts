import { isStowageError } from '../errors/index.js';
import { familiarString, isIndexType, parseNormalizedNamed, type Descriptor, type Index, type Manifest } from '../oci/index.js';
import type { Ctx } from './context.js';
import { emitImageEvent } from './events.js';
import { danglingName } from './names.js';
import { parseTagTarget, setName } from './tag.js';
import type { TrackedContent } from './tracked-content.js';
import { setLabel } from './unpack.js';
import { GC_REF_CONFIG, gcRefLayer, gcRefManifest } from '../content/index.js';

/**
 * Gives a new target its record: under `ref` (docker's `tag` event) or, without one, as a dangling record
 * unless another record already holds the target. Returns the familiar name when one was given.
 */
export function recordImage(ctx: Ctx, target: Descriptor, ref: string | undefined, labels: Record<string, string> = {}, configLabels: Record<string, string> = {}): string | undefined {
  if (ref !== undefined && ref !== '') {
    const name = parseTagTarget(ref);
    setName(ctx, name, target, labels);
    const familiar = familiarString(parseNormalizedNamed(name));
    emitImageEvent(ctx, 'tag', target.digest, familiar, configLabels);
    return familiar;
  }
  if (ctx.md.images.list().some((r) => r.target.digest === target.digest)) return undefined;
  try {
    ctx.md.images.create({ name: danglingName(target.digest), target, labels });
  } catch (e) { if (!isStowageError(e, 'AlreadyExists')) throw e; }
  return undefined;
}

/** containerd's GC labels: an index holds its present children, a manifest its config and layers. */
export async function labelChildren(content: TrackedContent, desc: Descriptor, doc: Manifest | Index): Promise<void> {
  if (isIndexType(desc.mediaType) || 'manifests' in doc) {
    const manifests = (doc as Index).manifests;
    for (let i = 0; i < manifests.length; i++) await setLabel(content, desc.digest, gcRefManifest(i), manifests[i]!.digest);
    return;
  }
  const m = doc as Manifest;
  await setLabel(content, desc.digest, GC_REF_CONFIG, m.config.digest);
  for (let i = 0; i < m.layers.length; i++) await setLabel(content, desc.digest, gcRefLayer(i), m.layers[i]!.digest);
}
