import { FORMAT_OPTION, type CommandSpec } from '../command.js';
import { goTime, humanSize, shortId, since } from '../humanize.js';
import { printList } from '../output.js';
import type { ContainerLayers } from '../../images/index.js';

export const containerLs: CommandSpec = {
  name: 'container ls',
  aliases: ['container list', 'container ps'],
  usage: '[OPTIONS]',
  summary: 'List working containers',
  options: [
    FORMAT_OPTION,
    { name: 'no-trunc', type: 'bool', help: "Don't truncate output" },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Only display container IDs' },
    { name: 'size', short: 's', type: 'bool', help: 'Display total file sizes' },
  ],
  async run(ctx, p) {
    const store: ContainerLayers = await ctx.store();
    const layers = await store.listLayers();
    const trunc = !p.bool('no-trunc');
    const withSize = p.bool('size');
    const rows = [];
    for (const l of layers) {
      let size = '';
      if (withSize) {
        const s = await store.layerSize(l.id);
        size = `${humanSize(s.rw)} (virtual ${humanSize(s.rootfs)})`;
      }
      rows.push({
        ID: trunc ? shortId(l.id) : l.id,
        Image: l.image,
        ImageID: l.imageId === undefined ? '' : trunc ? shortId(l.imageId) : l.imageId,
        CreatedSince: since(Math.trunc(l.createdAt.getTime() / 1000)),
        // docker's CreatedAt: Go's time.String() (`2024-01-27 00:01:02 +0000 UTC`), as `images` prints it.
        CreatedAt: goTime(Math.trunc(l.createdAt.getTime() / 1000)),
        Names: l.name ?? '',
        Size: size,
      });
    }
    let format = p.string('format');
    if (p.bool('quiet')) format = '{{.ID}}';
    const cols = ['{{.ID}}', '{{.Image}}', '{{.CreatedSince}}', ...(withSize ? ['{{.Size}}'] : []), '{{.Names}}'];
    printList(ctx.io.stdout, format, {
      defaultTemplate: `table ${cols.join('\\t')}`,
      headers: { ID: 'CONTAINER ID', Image: 'IMAGE', ImageID: 'IMAGE ID', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', Names: 'NAMES', Size: 'SIZE' },
      rows,
      json: layers,
    });
  },
};
