/**
 * `images --tree`: docker 28's tree view (`docker image ls --tree`), one block per image with a row per
 * platform manifest: its own disk usage (content + unpacked) and content size, and `U` when a container
 * uses it. The image's row shows its Size (shared blobs counted once) and the sum of its platforms' content.
 */
import type { ImageSummary } from '../images/index.js';
import { humanSize, shortId } from './humanize.js';

const SPACING = 3;
/** docker lays the legend out for an 80-column terminal when the output is not one. */
const LEGEND_WIDTH = 80;
const LEGEND = 'Info ->  U In Use ';

function formatPlatform(p: { os: string; architecture: string; variant?: string }): string {
  return [p.os, p.architecture, p.variant].filter((s) => s).join('/');
}

interface TreeRow { names: string[]; id: string; disk: string; content: string; inUse: boolean; child?: 'mid' | 'last' }

export function renderImageTree(images: ImageSummary[], opts: { all: boolean }): string {
  const blocks: TreeRow[][] = [];
  for (const img of images) {
    if (!opts.all && img.RepoTags.length === 0) continue;
    const platforms = (img.Manifests ?? []).filter((m) => m.Kind === 'image' && m.ImageData);
    let content = 0;
    let inUse = img.Containers > 0;
    const children: TreeRow[] = platforms.map((m, i) => {
      content += m.Size.Content;
      const used = m.ImageData!.Containers.length > 0;
      if (used) inUse = true;
      return {
        names: [formatPlatform(m.ImageData!.Platform)], id: shortId(m.ID), disk: humanSize(m.Size.Total),
        content: humanSize(m.Size.Content), inUse: used, child: i === platforms.length - 1 ? 'last' : 'mid',
      };
    });
    const names = img.RepoTags.length ? img.RepoTags : ['<untagged>'];
    blocks.push([{ names, id: shortId(img.Id), disk: humanSize(img.Size), content: humanSize(content), inUse }, ...children]);
  }
  const label = (r: TreeRow, name: string): string => (r.child === 'mid' ? `├─ ${name}` : r.child === 'last' ? `└─ ${name}` : name);
  let nameWidth = 'IMAGE'.length;
  for (const b of blocks) for (const r of b) for (const n of r.names) nameWidth = Math.max(nameWidth, [...label(r, n)].length);
  const pad = (s: string, w: number): string => s + ' '.repeat(Math.max(0, w - [...s].length));
  const line = (name: string, id: string, disk: string, content: string, extra: string): string =>
    pad(name, nameWidth + SPACING) + pad(id, 12 + SPACING) + disk.padStart(10) + ' '.repeat(SPACING) + content.padStart(12) + ' '.repeat(SPACING) + pad(extra, 5);
  let out = `${' '.repeat(LEGEND_WIDTH - LEGEND.length)}${LEGEND}\n\n`;
  out += pad('IMAGE', nameWidth + SPACING) + pad('ID', 12 + SPACING) + 'DISK USAGE' + ' '.repeat(SPACING) + 'CONTENT SIZE' + ' '.repeat(SPACING) + 'EXTRA\n';
  for (const b of blocks) {
    for (const r of b) {
      // Every name of the image on its own line; the figures go on the last one.
      for (const n of r.names.slice(0, -1)) out += `${label(r, n)}\n`;
      out += line(label(r, r.names[r.names.length - 1]!), r.id, r.disk, r.content, r.inUse ? 'U' : '') + '\n';
    }
    out += '\n';
  }
  return out;
}
