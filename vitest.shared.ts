// Shared vitest settings. The "@fad/source" condition makes workspace packages resolve to their
// TypeScript sources (see each package's exports map), so tests never need a prior build.
import { defineConfig } from 'vitest/config';

export const fadVitestConfig = defineConfig({
  resolve: { conditions: ['@fad/source', 'module', 'node', 'import', 'default'] },
  ssr: { resolve: { conditions: ['@fad/source', 'module', 'node', 'import', 'default'] } },
  test: {
    include: ['src/**/*.spec.ts', 'test/**/*.spec.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
