import type { CommandSpec } from '../command.js';
import { humanSize4 } from '../humanize.js';
import type { StoreMaintenance } from '../../images/index.js';

export const gc: CommandSpec = {
  name: 'gc',
  usage: '[OPTIONS]',
  summary: 'Remove blobs, snapshots and ingests no image, lease or container needs',
  options: [{ name: 'format', type: 'string', value: 'string', help: "'json': print the report as JSON" }],
  async run(ctx, p) {
    const store: StoreMaintenance = await ctx.store();
    const report = await store.gc({ signal: ctx.signal });
    if (p.string('format') === 'json') {
      ctx.io.stdout.write(JSON.stringify(report) + '\n');
      return;
    }
    ctx.io.stdout.write(
      `Removed ${report.blobsRemoved} blob(s), ${report.snapshotsRemoved} snapshot(s), ${report.ingestsRemoved} ingest(s), ${report.leasesRemoved} lease(s)\n` +
      `Total reclaimed space: ${humanSize4(report.bytesReclaimed)}\n`,
    );
  },
};
