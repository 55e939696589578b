import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The library (selectBackend and the reusable pieces): ESM, CJS and types.
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: false, // the build script empties dist/ first (the two builds run in parallel)
    target: 'node20',
    external: [/^@tensorflow\//, /^@fad\//],
  },
  {
    // The `fad` executable: ESM only, with a shebang.
    entry: { bin: 'src/bin.ts' },
    format: ['esm'],
    sourcemap: true,
    clean: false,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
    external: [/^@tensorflow\//, /^@fad\//],
  },
]);
