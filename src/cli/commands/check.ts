import type { CommandSpec } from '../command.js';
import type { StoreMaintenance } from '../../images/index.js';

export const check: CommandSpec = {
  name: 'check',
  usage: '[OPTIONS]',
  summary: 'Verify the store: images, blobs and snapshots are present and intact',
  options: [
    { name: 'repair', type: 'bool', help: 'Repair what is safe to repair (dangling records, stray files)' },
    { name: 'format', type: 'string', value: 'string', help: "'json': print the report as JSON" },
  ],
  async run(ctx, p) {
    const store: StoreMaintenance = await ctx.store();
    const report = await store.check({ repair: p.bool('repair') });
    if (p.string('format') === 'json') {
      ctx.io.stdout.write(JSON.stringify(report) + '\n');
    } else {
      // Damage first; then what gc reclaims and what a live operation is doing (information only).
      const order = { damage: 0, reclaimable: 1, 'in-progress': 2 } as const;
      const findings = [...report.problems].sort((a, b) => order[a.class] - order[b.class]);
      for (const f of findings) {
        const label = f.repaired ? 'repaired' : f.class === 'damage' ? 'problem' : f.class;
        ctx.io.stdout.write(`${label}: ${f.kind} ${f.subject}: ${f.message}\n`);
      }
      const damage = report.problems.filter((x) => x.class === 'damage');
      const fixed = damage.filter((x) => x.repaired).length;
      const info = report.problems.length - damage.length;
      const note = info > 0 ? ` (${info} finding(s) for information: not damage)` : '';
      if (damage.length === 0) ctx.io.stdout.write(`Store is consistent.${note}\n`);
      else ctx.io.stdout.write(`${damage.length} problem(s) found, ${fixed} repaired.${note}\n`);
    }
    return report.ok ? 0 : 1;
  },
};
