// Builds the page into dist/: index.html, app.js (src/main.ts bundled by esbuild for the browser,
// from the packages' published entry points) and the wasm backend's .wasm files in dist/wasm/,
// served beside the page so that nothing is fetched from elsewhere.
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'wasm'), { recursive: true });

const result = await build({
  entryPoints: [join(root, 'src', 'main.ts')],
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  outfile: join(dist, 'app.js'),
  logLevel: 'warning',
  metafile: true,
});
const bundled = Object.keys(result.metafile.inputs);
const deep = bundled.filter((f) => /packages\/[^/]+\/src\//.test(f));
if (deep.length) throw new Error(`the page bundles library sources instead of the published entry points: ${deep.slice(0, 3).join(', ')}`);

copyFileSync(join(root, 'index.html'), join(dist, 'index.html'));
const require = createRequire(import.meta.url);
const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
for (const f of readdirSync(join(wasmDir, 'dist'))) if (f.endsWith('.wasm')) copyFileSync(join(wasmDir, 'dist', f), join(dist, 'wasm', f));
const size = result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith('app.js'))].bytes;
console.log(`examples/browser: built dist/ (app.js ${(size / 1e6).toFixed(2)} MB)`);
