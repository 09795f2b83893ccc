/**
 * Prints a list the docker way: a table by default, `--format json` as one Engine API object per line,
 * `--format 'TEMPLATE'` / `--format 'table TEMPLATE'` through the Go-template subset.
 */
import { alignTabs } from './table.js';
import { parseTemplate } from './template.js';
import type { TextOutput } from './command.js';

export interface ListFormat<Row> {
  /** The default, e.g. `table {{.Repository}}\t{{.Tag}}\t{{.ID}}`. */
  defaultTemplate: string;
  /** Column titles by field: `{ID: 'IMAGE ID'}`. */
  headers: Record<string, string>;
  rows: Row[];
  /** What `--format json` prints, one line each (Engine API shapes). */
  json: unknown[];
}

export function renderList<Row>(format: string | undefined, list: ListFormat<Row>): string {
  const f = format === undefined || format === '' || format === 'table' ? list.defaultTemplate : format;
  if (f === 'json') return list.json.map((item) => JSON.stringify(item) + '\n').join('');
  const template = parseTemplate(f);
  const lines = list.rows.map((row) => template.execute(row));
  if (!template.table) return lines.map((l) => l + '\n').join('');
  // Unknown header fields print empty, so custom table templates still get a header line.
  const header = template.execute(new Proxy(list.headers, { get: (t, k) => (typeof k === 'string' ? t[k] ?? '' : undefined) }));
  return alignTabs([header, ...lines]);
}

export function printList<Row>(out: TextOutput, format: string | undefined, list: ListFormat<Row>): void {
  const text = renderList(format, list);
  if (text !== '') out.write(text);
}
