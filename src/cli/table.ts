/**
 * Column alignment as docker's formatter does it: Go's tabwriter with minwidth 10, padding 3,
 * and the last cell of a line left unpadded. Widths count characters, not bytes.
 */
const MIN_WIDTH = 10;
const PADDING = 3;

/** Aligns tab-separated cells of consecutive lines; returns the text with a newline after every line. */
export function alignTabs(lines: string[]): string {
  const rows = lines.map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const cells of rows) {
    // Only tab-terminated cells form columns; the last cell of each line is free.
    for (let i = 0; i < cells.length - 1; i++) {
      const w = Math.max(MIN_WIDTH, width(cells[i]!) + PADDING);
      if (w > (widths[i] ?? 0)) widths[i] = w;
    }
  }
  return rows.map((cells) => cells.map((c, i) => (i < cells.length - 1 ? pad(c, widths[i]!) : c)).join('') + '\n').join('');
}

/** A table with a header row; every cell is already a string. */
export function renderTable(header: string[], rows: string[][]): string {
  return alignTabs([header.join('\t'), ...rows.map((r) => r.join('\t'))]);
}

function width(s: string): number { return [...s].length; }
function pad(s: string, w: number): string { return s + ' '.repeat(Math.max(0, w - width(s))); }
