// The README's code cannot rot: its vitest example is test/readme/example.test.ts, byte for byte (that
// file runs here and in a fresh project that installs the packed tarball, see test/packaging), and its
// library snippets, and the guides', are type-checked against the published declarations there too.
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { readmeBlocks } from './blocks.js';

const REPO = path.resolve(import.meta.dirname, '..', '..');

it('shows the vitest example exactly as test/readme/example.test.ts has it, in ten-odd lines', () => {
  const example = fs.readFileSync(path.join(REPO, 'test', 'readme', 'example.test.ts'), 'utf8');
  expect(readmeBlocks(fs.readFileSync(path.join(REPO, 'README.md'), 'utf8'), 'ts')).toContain(example);
  expect(example.trim().split('\n').length).toBeLessThanOrEqual(12);
  expect(readmeBlocks(fs.readFileSync(path.join(REPO, 'docs', 'guides', 'tests.md'), 'utf8'), 'ts')).toContain(example);
});
