// A static file server for the built page (dist/), on 127.0.0.1 only. It sends the
// cross-origin-isolation headers (COOP/COEP) so that the wasm backend can use threads.
//   node scripts/serve.mjs [--port 8080] [--models DIR]   (DIR is served under /models/)
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.safetensors': 'application/octet-stream',
  '.png': 'image/png',
};

/**
 * Serves `root` (and each `mounts[prefix]` folder under `/prefix/`) on 127.0.0.1:`port` (0: any
 * free port). Resolves to { url, close }.
 */
export function serveStatic({ root, port = 0, mounts = {} }) {
  const folders = [['/', resolve(root)], ...Object.entries(mounts).map(([p, d]) => [`/${p.replace(/^\/|\/$/g, '')}/`, resolve(d)])]
    .sort((a, b) => b[0].length - a[0].length);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
    const [prefix, dir] = folders.find(([p]) => path.startsWith(p));
    let file = normalize(join(dir, path.slice(prefix.length)));
    if (file !== dir && !file.startsWith(dir + sep)) {
      res.writeHead(403).end();
      return;
    }
    try {
      if (statSync(file).isDirectory()) file = join(file, 'index.html');
      const size = statSync(file).size;
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'content-length': size,
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp',
        'cache-control': 'no-cache',
      });
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const { port: p } = server.address();
      ok({ url: `http://127.0.0.1:${p}/`, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (k, d) => {
    const i = process.argv.indexOf(k);
    return i >= 0 ? process.argv[i + 1] : d;
  };
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
  const models = arg('--models');
  const { url } = await serveStatic({ root, port: Number(arg('--port', 8080)), mounts: models ? { models } : {} });
  console.log(`examples/browser: serving ${root} at ${url}${models ? ` (models from ${models} at ${url}models/)` : ''}; Ctrl-C stops it`);
}
