import type { ContainerLayer, ContainerLayers, StoreMaintenance } from '../../images/index.js';
import type { CommandSpec } from '../command.js';
import { humanSize4, shortId, since } from '../humanize.js';
import { printList } from '../output.js';
import { renderTable } from '../table.js';
import { imageRows } from './images.js';

interface ContainerUsage { container: ContainerLayer; size: number }

async function containerUsage(store: Pick<ContainerLayers, 'listLayers' | 'layerSize'>): Promise<ContainerUsage[]> {
  const out: ContainerUsage[] = [];
  for (const container of await store.listLayers()) {
    out.push({ container, size: (await store.layerSize(container.id)).rw });
  }
  return out;
}

/** "7.796MB (100%)" — the share of the total that could be freed. */
function reclaimable(bytes: number, total: number): string {
  return total > 0 ? `${humanSize4(bytes)} (${Math.trunc((bytes * 100) / total)}%)` : humanSize4(bytes);
}

export const systemDf: CommandSpec = {
  name: 'system df',
  usage: '[OPTIONS]',
  summary: 'Show stowage disk usage',
  options: [
    { name: 'format', type: 'string', value: 'string', help: "Format output:\n'table':            Print output in table format with column headers (default)\n'json':             Print in JSON format (Engine API /system/df shape)" },
    { name: 'verbose', short: 'v', type: 'bool', help: 'Show detailed information on space usage' },
  ],
  async run(ctx, p) {
    const store: StoreMaintenance & ContainerLayers = await ctx.store();
    const verbose = p.bool('verbose');
    const usage = await store.diskUsage({ verbose });
    const containers = await containerUsage(store);
    const containersSize = containers.reduce((n, c) => n + c.size, 0);
    // Working containers never run, so all of them count as reclaimable.
    const containerSection = { ActiveCount: 0, TotalCount: containers.length, Reclaimable: containersSize, TotalSize: containersSize };
    const format = p.string('format');
    if (format === 'json') {
      const items = verbose ? usage.Items : undefined;
      ctx.io.stdout.write(JSON.stringify({ ImageUsage: { ...usage, Items: items }, ContainerUsage: containerSection }) + '\n');
      return;
    }
    if (format !== undefined && format !== '' && format !== 'table') {
      printList(ctx.io.stdout, format, {
        defaultTemplate: '', headers: { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' },
        rows: [
          { Type: 'Images', TotalCount: String(usage.TotalCount), Active: String(usage.ActiveCount), Size: humanSize4(usage.TotalSize), Reclaimable: reclaimable(usage.Reclaimable, usage.TotalSize) },
          { Type: 'Containers', TotalCount: String(containers.length), Active: '0', Size: humanSize4(containersSize), Reclaimable: reclaimable(containersSize, containersSize) },
        ],
        json: [],
      });
      return;
    }
    if (!verbose) {
      ctx.io.stdout.write(renderTable(['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], [
        ['Images', String(usage.TotalCount), String(usage.ActiveCount), humanSize4(usage.TotalSize), reclaimable(usage.Reclaimable, usage.TotalSize)],
        ['Containers', String(containers.length), '0', humanSize4(containersSize), reclaimable(containersSize, containersSize)],
      ]));
      return;
    }
    const rows = imageRows(usage.Items, { trunc: true, digests: false });
    let text = 'Images space usage:\n\n';
    text += renderTable(
      ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS'],
      rows.map((r) => [r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size, r.SharedSize, r.UniqueSize, r.Containers]),
    );
    text += '\nContainers space usage:\n\n';
    text += renderTable(['CONTAINER ID', 'IMAGE', 'SIZE', 'CREATED', 'NAMES'], containers.map(({ container: c, size }) => [
      shortId(c.id), c.image, humanSize4(size), since(Math.trunc(c.createdAt.getTime() / 1000)), c.name ?? '',
    ]));
    ctx.io.stdout.write(text);
  },
};
