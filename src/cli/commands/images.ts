import { InvalidArgumentError } from '../../errors/index.js';
import type { ImageSummary, LocalImages } from '../../images/index.js';
import { FORMAT_OPTION, type CommandSpec } from '../command.js';
import { FILTER_OPTION, parseFilterFlags } from '../filters.js';
import { goTime, humanSize, shortId, since } from '../humanize.js';
import { printList } from '../output.js';
import { renderImageTree } from '../image-tree.js';

/** One table row: docker's image formatter context (one per repository/tag of an image). */
export interface ImageRow {
  ID: string;
  Repository: string;
  Tag: string;
  Digest: string;
  CreatedSince: string;
  CreatedAt: string;
  Size: string;
  SharedSize: string;
  UniqueSize: string;
  VirtualSize: string;
  Containers: string;
}

export const IMAGE_HEADERS: Record<string, string> = {
  ID: 'IMAGE ID', Repository: 'REPOSITORY', Tag: 'TAG', Digest: 'DIGEST', CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT', Size: 'SIZE', SharedSize: 'SHARED SIZE', UniqueSize: 'UNIQUE SIZE',
  VirtualSize: 'VIRTUAL SIZE', Containers: 'CONTAINERS',
};

/** Fields are computed when a template asks for them: with 10,000 images, unused columns would cost more than the used ones. */
class Row implements ImageRow {
  constructor(private readonly img: ImageSummary, readonly Repository: string, readonly Tag: string, readonly Digest: string,
    private readonly trunc: boolean, private readonly now?: number) {}
  get ID(): string { return this.trunc ? shortId(this.img.Id) : this.img.Id; }
  get CreatedSince(): string { return since(this.img.Created, this.now); }
  get CreatedAt(): string { return goTime(this.img.Created); }
  get Size(): string { return humanSize(this.img.Size); }
  get SharedSize(): string { return this.img.SharedSize < 0 ? 'N/A' : humanSize(this.img.SharedSize); }
  get UniqueSize(): string { return this.img.SharedSize < 0 ? 'N/A' : humanSize(this.img.Size - this.img.SharedSize); }
  get VirtualSize(): string { return humanSize(this.img.Size, 4); }
  get Containers(): string { return this.img.Containers < 0 ? 'N/A' : String(this.img.Containers); }
  /** `{{json .}}` shows the columns, as docker's formatter context does. */
  toJSON(): ImageRow {
    const { ID, Repository, Tag, Digest, CreatedSince, CreatedAt, Size, SharedSize, UniqueSize, VirtualSize, Containers } = this;
    return { Containers, CreatedAt, CreatedSince, Digest, ID, Repository, SharedSize, Size, Tag, UniqueSize, VirtualSize };
  }
}

function isDangling(img: ImageSummary): boolean { return img.RepoTags.length === 0 && img.RepoDigests.length === 0; }

/**
 * docker's imageFormatTaggedAndDigest: a row per repository tag; digests as their own rows only when untagged.
 * `needDigest`: the format prints `{{.Digest}}` (docker's needDigest), so tagged rows carry their digests
 * even without --digests.
 */
export function imageRows(images: ImageSummary[], opts: { trunc: boolean; digests: boolean; needDigest?: boolean; now?: number }): ImageRow[] {
  const rows: ImageRow[] = [];
  for (const img of images) {
    const base = (repo: string, tag: string, digest: string): ImageRow => new Row(img, repo, tag, digest, opts.trunc, opts.now);
    if (isDangling(img)) { rows.push(base('<none>', '<none>', '<none>')); continue; }
    const tags = new Map<string, string[]>();
    const digests = new Map<string, string[]>();
    for (const s of img.RepoTags) {
      const t = splitTagged(s);
      if (t) pushTo(tags, t.repo, t.tag);
    }
    for (const s of img.RepoDigests) {
      const at = s.indexOf('@');
      if (at > 0) pushTo(digests, s.slice(0, at), s.slice(at + 1));
    }
    for (const [repo, repoTags] of tags) {
      const ds = opts.digests || opts.needDigest ? digests.get(repo) ?? [] : [];
      digests.delete(repo);
      for (const tag of repoTags) {
        if (ds.length === 0) rows.push(base(repo, tag, '<none>'));
        else for (const d of ds) rows.push(base(repo, tag, d));
      }
    }
    for (const [repo, ds] of digests) {
      if (opts.digests) for (const d of ds) rows.push(base(repo, '<none>', d));
      else rows.push(base(repo, '<none>', ''));
    }
  }
  return rows;
}

/**
 * `repo:tag` → its parts. The service already returns familiar names, so a split suffices (parsing 10,000
 * names again would cost more than printing them); digest-only names (`repo@sha256:…`) have no tag.
 */
function splitTagged(s: string): { repo: string; tag: string } | undefined {
  if (s.includes('@')) return undefined;
  const colon = s.lastIndexOf(':');
  if (colon <= s.lastIndexOf('/')) return undefined;
  return { repo: s.slice(0, colon), tag: s.slice(colon + 1) };
}

function pushTo(m: Map<string, string[]>, k: string, v: string): void {
  const list = m.get(k);
  if (list) list.push(v); else m.set(k, [v]);
}

export const images: CommandSpec = {
  name: 'images',
  aliases: ['image ls', 'image list'],
  usage: '[OPTIONS] [REPOSITORY[:TAG]]',
  summary: 'List images',
  options: [
    { name: 'all', short: 'a', type: 'bool', help: 'Show all images (default hides intermediate images)' },
    { name: 'digests', type: 'bool', help: 'Show digests' },
    FILTER_OPTION,
    FORMAT_OPTION,
    { name: 'no-trunc', type: 'bool', help: "Don't truncate output" },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Only show image IDs' },
    { name: 'tree', type: 'bool', help: 'List multi-platform images as a tree, a row per platform with its own size' },
  ],
  args: { min: 0, max: 1 },
  async run(ctx, p) {
    const filters = parseFilterFlags(p.list('filter'));
    if (p.args[0] !== undefined) (filters.reference ??= []).push(p.args[0]);
    const store: LocalImages = await ctx.store();
    if (p.bool('tree')) {
      if (p.bool('quiet') || p.string('format') !== undefined || p.bool('digests') || p.bool('no-trunc')) {
        throw new InvalidArgumentError('--tree cannot be combined with --quiet, --format, --digests or --no-trunc');
      }
      ctx.io.stdout.write(renderImageTree(await store.images({ all: p.bool('all'), filters, manifests: true }), { all: p.bool('all') }));
      return;
    }
    const list = await store.images({ all: p.bool('all'), filters });
    const digests = p.bool('digests');
    let format = p.string('format');
    if (p.bool('quiet')) format = '{{.ID}}';
    const rows = imageRows(list, { trunc: !p.bool('no-trunc'), digests, needDigest: format?.includes('{{.Digest}}') ?? false });
    const columns = ['{{.Repository}}', '{{.Tag}}', ...(digests ? ['{{.Digest}}'] : []), '{{.ID}}', '{{.CreatedSince}}', '{{.Size}}'];
    printList(ctx.io.stdout, format, { defaultTemplate: `table ${columns.join('\\t')}`, headers: IMAGE_HEADERS, rows, json: list });
  },
};
