// A vitest reporter for CI (scripts/test.sh): after the run, the skipped tests with their reasons, then
// the failing tests (file and title) just above the last line, "N passed, N failed, N skipped".
// A file that failed to load, or an error outside any test, counts as one failure under its file name.
import path from 'node:path';
import type { Reporter, SerializedError, TestModule, TestRunEndReason } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<SerializedError>, _reason: TestRunEndReason): void {
    let passed = 0;
    const failed: string[] = [];
    const skipped: string[] = [];
    for (const m of modules) {
      const file = path.relative(process.cwd(), m.moduleId);
      let moduleFailed = false;
      for (const t of m.children.allTests()) {
        const r = t.result();
        const title = t.fullName;
        if (r.state === 'passed') passed++;
        else if (r.state === 'failed') { failed.push(`${file} > ${title}`); moduleFailed = true; }
        else if (r.state === 'skipped') skipped.push(`${file} > ${title}: ${r.note ?? 'skipped (no reason given)'}`);
      }
      // Errors in hooks or at import time, with no failed test to show for them.
      if (!moduleFailed && (m.state() === 'failed' || m.errors().length > 0)) failed.push(`${file} (the file failed: ${m.errors()[0]?.message ?? 'error outside a test'})`);
    }
    for (const e of errors) failed.push(`(unhandled error) ${e.message ?? String(e)}`);
    const out: string[] = [''];
    if (skipped.length > 0) out.push(`Skipped (${skipped.length}):`, ...skipped.map((s) => `  - ${s}`));
    if (failed.length > 0) out.push(`Failed (${failed.length}):`, ...failed.map((f) => `  ✗ ${f}`));
    out.push(`${passed} passed, ${failed.length} failed, ${skipped.length} skipped`);
    process.stdout.write(out.join('\n') + '\n');
  }
}
