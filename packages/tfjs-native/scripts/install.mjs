#!/usr/bin/env node
// Install hook of @fad/tfjs-native: try to compile the oneDNN addon, and never fail.
//
// The addon is optional: without it the package still loads and `registerNativeBackend()`
// returns false, so applications fall back to the pure-JS `cpu` backend. This script
// therefore always exits 0. npm hides install-script output, so the lines also go to the
// terminal (/dev/tty) when there is one: a compile is never silent. It only runs `node-gyp rebuild` when the toolchain (a C++
// compiler), oneDNN's headers (Debian: libdnnl-dev) and node-addon-api are present, and
// otherwise prints one line saying what is missing.
//
// Environment:
//   FAD_TFJS_NATIVE_SKIP_BUILD=1   do not try to build (e.g. on machines without oneDNN).
//   FAD_TFJS_NATIVE_BUILD_LOG=path where the full compiler output goes (default build/install.log).
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tag = '[@fad/tfjs-native]';
// npm (7+) hides the output of dependencies' install scripts unless they fail, so a compile of
// a minute looked like a hung `npm i`. Say what happens on the terminal itself when there is one
// (and on stdout, which `--foreground-scripts` and logs show).
let tty = null;
try {
  tty = process.stdout.isTTY ? null : openSync('/dev/tty', 'w');
} catch {
  tty = null;
}
const say = (msg) => {
  const line = `${tag} ${msg}`;
  console.log(line);
  if (tty !== null) {
    try {
      writeSync(tty, `${line}\n`);
    } catch {
      // best effort
    }
  }
};
// In the fad monorepo the workspace script; anywhere else this script by its absolute path.
const inMonorepo = !pkgDir.split(/[\\/]/).includes('node_modules') && existsSync(join(pkgDir, '..', '..', 'nx.json'));
const buildCmd = inMonorepo ? 'npm run build:native -w @fad/tfjs-native' : `node ${join(pkgDir, 'scripts', 'install.mjs')}`;
const howTo = `the JS falls back to the cpu backend; to build later: \`${buildCmd}\` (needs g++ and libdnnl-dev)`;

function main() {
  if (process.env.FAD_TFJS_NATIVE_SKIP_BUILD === '1') {
    say('FAD_TFJS_NATIVE_SKIP_BUILD=1: not building the native addon.');
    return;
  }
  const cxx = process.env.CXX || 'g++';
  if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status !== 0) {
    say(`no C++ compiler (${cxx}) found: native addon not built; ${howTo}.`);
    return;
  }
  // Does the compiler find oneDNN's C++ header? (Preprocess a one-line file.)
  const probe = spawnSync(cxx, ['-E', '-x', 'c++', '-'], {
    input: '#include <oneapi/dnnl/dnnl.hpp>\n',
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  if (probe.status !== 0) {
    say(`oneDNN headers not found (apt-get install libdnnl-dev): native addon not built; ${howTo}.`);
    return;
  }
  try {
    createRequire(join(pkgDir, 'package.json')).resolve('node-addon-api');
  } catch {
    say(`node-addon-api is not installed: native addon not built; ${howTo}.`);
    return;
  }
  // npm names its bundled node-gyp in npm_config_node_gyp for lifecycle scripts; when run
  // by hand, try npm's copy next to node (Debian/NodeSource layout), then PATH.
  const gypJs = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].find((p) => p && existsSync(p));
  const gypArgs = ['rebuild'];
  // Without internet node-gyp cannot download Node's headers: point it at the installed
  // ones (npm passes its `nodedir` config as npm_config_nodedir; by hand we look beside node).
  const prefix = resolve(dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
    gypArgs.push(`--nodedir=${prefix}`);
  }
  const [cmd, args] = gypJs ? [process.execPath, [gypJs, ...gypArgs]] : ['node-gyp', gypArgs];
  say('compiling the optional oneDNN addon (node-gyp rebuild; 10 s to a few minutes; FAD_TFJS_NATIVE_SKIP_BUILD=1 skips it)...');
  const started = Date.now();
  const res = spawnSync(cmd, args, { cwd: pkgDir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const log = process.env.FAD_TFJS_NATIVE_BUILD_LOG || join(pkgDir, 'build', 'install.log');
  try {
    mkdirSync(dirname(log), { recursive: true });
    writeFileSync(log, `${res.stdout ?? ''}\n${res.stderr ?? ''}\n${res.error ? String(res.error) : ''}`);
  } catch {
    // The log is a convenience; a read-only tree must not fail the install.
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (res.status === 0) {
    say(`native addon built in ${secs}s (build/Release/tfjs_native.node).`);
  } else {
    say(`native addon build FAILED after ${secs}s (log: ${log}); ${howTo}.`);
  }
}

try {
  main();
} catch (err) {
  say(`unexpected error while building the native addon (${err?.message ?? err}); ${howTo}.`);
}
if (tty !== null) closeSync(tty);
process.exit(0);
