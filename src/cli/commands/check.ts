import type { CommandSpec } from '../command.js';

export const check: CommandSpec = {
  name: 'check',
  usage: '[OPTIONS]',
  summary: 'Verify the store: images, blobs and snapshots are present and intact',
  options: [
    { name: 'repair', type: 'bool', help: 'Repair what is safe to repair (dangling records, stray files)' },
    { name: 'format', type: 'string', value: 'string', help: "'json': print the report as JSON" },
  ],
  async run(ctx, p) {
    const store = await ctx.store();
    const report = await store.check({ repair: p.bool('repair') });
    if (p.string('format') === 'json') {
      ctx.io.stdout.write(JSON.stringify(report) + '\n');
    } else {
      for (const problem of report.problems) {
        ctx.io.stdout.write(`${problem.repaired ? 'repaired' : 'problem'}: ${problem.kind} ${problem.subject}: ${problem.message}\n`);
      }
      const open = report.problems.filter((x) => !x.repaired).length;
      const fixed = report.problems.length - open;
      if (report.problems.length === 0) ctx.io.stdout.write('Store is consistent.\n');
      else ctx.io.stdout.write(`${report.problems.length} problem(s) found, ${fixed} repaired.\n`);
    }
    return report.problems.some((x) => !x.repaired) ? 1 : 0;
  },
};
