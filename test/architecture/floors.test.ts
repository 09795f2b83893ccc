/**
 * The README's floor table against the real import graph of `src/`: a folder imports only folders on
 * lower floors (or on its own floor where the table's last column names them), always through their
 * `index.ts`; the table lists every folder; the library's front door does not reach into the test
 * helpers' entry. Imports are found by the scanner of imports.ts (static, type, `export … from`, and
 * dynamic `import()`), which is itself checked on tricky text first.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findImports } from './imports.js';

const repo = path.resolve(import.meta.dirname, '..', '..');
const src = path.join(repo, 'src');

interface Floor { floor: number; sameFloor: Set<string> }

/** The table under "## Layout" in the README: folder name (`images`) → its floor and same-floor allowances. */
function readFloorTable(readme: string): Map<string, Floor> {
  const layout = readme.slice(readme.indexOf('\n## Layout'));
  const rows = layout.split('\n').filter((l) => /^\|\s*\d/.test(l));
  const table = new Map<string, Floor>();
  for (const row of rows) {
    const cells = row.split('|').slice(1, -1).map((c) => c.trim());
    const folder = /^`src\/([\w-]+)`$/.exec(cells[1] ?? '')?.[1];
    if (!folder) throw new Error(`README floor table: cannot read the folder of row ${row}`);
    const allowed = [...(cells[3] ?? '').matchAll(/`src\/([\w-]+)`/g)].map((m) => m[1]!);
    table.set(folder, { floor: Number(cells[0]), sameFloor: new Set(allowed) });
  }
  return table;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

interface Edge { file: string; line: number; specifier: string; from: string; to: string; target: string }

/** Every import of a file under src/ that leaves its folder (`from` is '' for the front door src/index.ts). */
function crossFolderImports(): Edge[] {
  const edges: Edge[] = [];
  for (const file of sourceFiles(src)) {
    const rel = path.relative(src, file);
    const from = rel.includes(path.sep) ? rel.split(path.sep)[0]! : '';
    for (const imp of findImports(fs.readFileSync(file, 'utf8'))) {
      if (!imp.specifier.startsWith('.')) continue;
      const target = path.relative(src, path.resolve(path.dirname(file), imp.specifier)).split(path.sep).join('/');
      const to = target.includes('/') ? target.split('/')[0]! : '';
      if (to === from) continue;
      edges.push({ file: rel.split(path.sep).join('/'), line: imp.line, specifier: imp.specifier, from, to, target });
    }
  }
  return edges;
}

/** What is wrong with one edge, or undefined when it keeps the rules. */
function offence(e: Edge, table: Map<string, Floor>): string | undefined {
  if (e.to === '') return 'imports a file at the top of src/ (the front door is for users, not for folders)';
  const to = table.get(e.to);
  if (!to) return `imports src/${e.to}, which the README floor table does not list`;
  if (e.target !== `${e.to}/index.js`) return `goes past src/${e.to}/index.ts (to ${e.target})`;
  if (e.from === '') return e.to === 'testing' ? 'the library front door exports the test helpers (they belong to stowage/testing only)' : undefined;
  const from = table.get(e.from)!;
  if (to.floor > from.floor) return `reaches up: src/${e.from} (floor ${from.floor}) imports src/${e.to} (floor ${to.floor})`;
  if (to.floor === from.floor && !from.sameFloor.has(e.to)) return `imports src/${e.to} on its own floor ${from.floor}, which the table does not allow`;
  return undefined;
}

describe('the import scanner', () => {
  it('finds static, type, side-effect, export-from and dynamic imports, and nothing in comments, strings or regexes', () => {
    const text = [
      "import fs from 'node:fs';",
      "import type { A } from '../a/index.js';",
      "import {",
      "  b, type C,",
      "} from \"../b/index.js\";",
      "import '../side/index.js';",
      "export { d } from '../d/index.js';",
      "export * from './e.js';",
      "export type * from './f.js';",
      "export const notAnImport = 1; const from = 'x';",
      "// import x from '../comment/index.js';",
      "/* export { y } from '../block/index.js'; */",
      "const s = \"import z from '../string/index.js'\";",
      "const t = `import w from '../template/index.js' ${fn(`import('../nested/index.js')`)}`;",
      "const re = /import v from '\\.\\.\\/regex\\/index.js'/;",
      "const n = a / b; const m = c / d;",
      "async function later() { const { g } = await import('../g/index.js'); return g; }",
      "type T = typeof import('../h/index.js');",
      "const meta = import.meta.url;",
    ].join('\n');
    expect(findImports(text)).toEqual([
      { specifier: 'node:fs', kind: 'static', line: 1 },
      { specifier: '../a/index.js', kind: 'static', line: 2 },
      { specifier: '../b/index.js', kind: 'static', line: 5 },
      { specifier: '../side/index.js', kind: 'static', line: 6 },
      { specifier: '../d/index.js', kind: 'export-from', line: 7 },
      { specifier: './e.js', kind: 'export-from', line: 8 },
      { specifier: './f.js', kind: 'export-from', line: 9 },
      { specifier: '../g/index.js', kind: 'dynamic', line: 17 },
      { specifier: '../h/index.js', kind: 'dynamic', line: 18 },
    ]);
  });

  it('finds as many import clauses in src/ as there are `from` clauses and import() calls', () => {
    // A cross-check with a plainer count, so the scanner cannot silently miss statements.
    let scanned = 0;
    let counted = 0;
    let scannedDynamic = 0;
    let countedDynamic = 0;
    for (const file of sourceFiles(src)) {
      const text = fs.readFileSync(file, 'utf8');
      const found = findImports(text);
      scanned += found.filter((i) => i.kind !== 'dynamic').length;
      counted += (text.match(/^(?:import|export)\b[^;]*?\bfrom\s+['"][^'"]+['"]/gms) ?? []).length
        + (text.match(/^import\s+['"][^'"]+['"]/gm) ?? []).length;
      scannedDynamic += found.filter((i) => i.kind === 'dynamic').length;
      countedDynamic += (text.match(/\bimport\(\s*['"][^'"]+['"]\s*\)/g) ?? []).length;
    }
    expect(scanned).toBe(counted);
    expect(scanned).toBeGreaterThan(500);
    expect(scannedDynamic).toBe(countedDynamic);
    expect(scannedDynamic).toBeGreaterThan(5);
  });
});

describe('floors (README "Layout" table)', () => {
  const table = readFloorTable(fs.readFileSync(path.join(repo, 'README.md'), 'utf8'));

  it('the table lists every folder of src/, and only those', () => {
    const folders = fs.readdirSync(src, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    expect([...table.keys()].sort()).toEqual(folders);
    for (const [name, f] of table) {
      expect(Number.isFinite(f.floor), `floor of src/${name}`).toBe(true);
      for (const other of f.sameFloor) expect(table.get(other)?.floor, `src/${name} may import src/${other} on its own floor`).toBe(f.floor);
    }
  });

  it('no folder imports a higher floor, its own floor unless allowed, or past an index.ts', () => {
    const edges = crossFolderImports();
    expect(edges.some((e) => e.specifier.startsWith('../') && e.from === 'cli')).toBe(true); // the graph is not empty
    const bad = edges.flatMap((e) => {
      const why = offence(e, table);
      return why ? [`src/${e.file}:${e.line} imports '${e.specifier}': ${why}`] : [];
    });
    expect(bad, `imports that break the floor rule:\n${bad.join('\n')}`).toEqual([]);
  });
});
