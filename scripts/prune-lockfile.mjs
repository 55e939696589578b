#!/usr/bin/env node
// Removes optional dependencies from package-lock.json that the lock has no entry for.
//
// Why: the npm registry this project is built against serves only the linux builds of packages
// like @rollup/rollup-* and @esbuild/*. `npm install` therefore records rollup's 24 optional
// platform packages as dependencies without lock entries, and `npm ci` then refuses the lock
// ("Missing: @rollup/rollup-android-arm-eabi@ from lock file"). Those packages are optional and
// never installed on linux anyway, so dropping the dangling references is safe.
//
// Run after every `npm install` that changes the lock:  node scripts/prune-lockfile.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8'));
const present = new Set(
  Object.keys(lock.packages)
    .filter((k) => k.includes('node_modules/'))
    .map((k) => k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length)),
);
let removed = 0;
for (const entry of Object.values(lock.packages)) {
  const opt = entry.optionalDependencies;
  if (!opt) continue;
  for (const name of Object.keys(opt)) {
    if (!present.has(name)) {
      delete opt[name];
      removed += 1;
    }
  }
  if (Object.keys(opt).length === 0) delete entry.optionalDependencies;
}
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`prune-lockfile: removed ${removed} optional dependencies with no lock entry`);
