import path from 'node:path';
import { defineConfig } from 'vitest/config';

const src = path.join(import.meta.dirname, 'src');

export default defineConfig({
  // Tests written as a user would (the README example) import the package by name: here, its sources.
  resolve: {
    alias: [
      { find: /^stowage\/testing$/, replacement: path.join(src, 'testing', 'index.ts') },
      { find: /^stowage$/, replacement: path.join(src, 'index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
