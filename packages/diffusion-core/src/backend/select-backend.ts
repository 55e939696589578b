/**
 * Picks the fastest TensorFlow.js backend installed and says which one it chose
 * (`@fad/diffusion-core/backend`). Libraries never choose a backend; applications (the CLI, the
 * examples, your program) call this once at start-up. Every backend package is optional and is
 * imported only when tried.
 *
 * Preference order: `tensorflow` (@tensorflow/tfjs-node-gpu or tfjs-node, when installed),
 * `native` (@fad/tfjs-native: oneDNN kernels, when its addon is built), `wasm`
 * (@tensorflow/tfjs-backend-wasm), then the pure-JS `cpu` backend, which always works.
 */
import * as tf from '@tensorflow/tfjs-core';

export type BackendName = 'tensorflow' | 'native' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'native', 'wasm', 'cpu'];

export interface BackendAttempt {
  name: BackendName;
  ok: boolean;
  /** Why it was not used (or details of the one chosen). */
  detail: string;
}

export interface SelectBackendParams {
  /** 'auto' (default) tries every backend in order; a name forces that one (an error if unavailable). */
  preferred?: BackendName | 'auto';
  /** Threads for the native backend (default: all cores). */
  threads?: number;
  /** Where the one-line choice is reported (default: stderr). Pass `() => {}` to silence. */
  log?: (message: string) => void;
}

export interface SelectedBackend {
  name: BackendName;
  detail: string;
  attempts: BackendAttempt[];
}

type Loader = (threads?: number) => Promise<string>;

/** A variable, so that bundlers and TypeScript leave the optional package alone. */
const NATIVE_PACKAGE: string = '@fad/tfjs-native';

/** The part of @fad/tfjs-native's API used here. */
interface NativeBackendModule {
  nativeInfo(): { available: boolean; reason?: string | null; addon?: { dnnlVersion: string; isa: string; threads: number } | null };
  registerNativeBackend(params?: { threads?: number }): boolean;
}

/** Each loader registers its backend and resolves with a detail line, or rejects with the reason. */
const LOADERS: Record<BackendName, Loader> = {
  async tensorflow() {
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      try {
        await import(pkg);
        return `${pkg}`;
      } catch (e) {
        if (!isNotFound(e)) {
          throw new Error(`${pkg} is installed but failed to load: ${(e as Error).message.split('\n')[0]}`);
        }
      }
    }
    throw new Error('neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed');
  },
  async native(threads?: number) {
    // Optional: typed locally so that @fad/diffusion-core does not depend on @fad/tfjs-native.
    let mod: NativeBackendModule;
    try {
      mod = (await import(NATIVE_PACKAGE)) as NativeBackendModule;
    } catch (e) {
      if (isNotFound(e)) throw new Error(`${NATIVE_PACKAGE} is not installed (optional: \`npm i ${NATIVE_PACKAGE}\` adds oneDNN kernels)`);
      throw new Error(`${NATIVE_PACKAGE} is installed but failed to load: ${(e as Error).message.split('\n')[0]}`);
    }
    const info = mod.nativeInfo();
    if (!info.available) throw new Error(info.reason ?? 'the native addon is not available');
    if (!mod.registerNativeBackend({ threads })) throw new Error('the native backend could not be registered');
    const a = mod.nativeInfo().addon;
    return a ? `oneDNN ${a.dnnlVersion} (${a.isa}), ${a.threads} threads` : 'oneDNN';
  },
  async wasm() {
    try {
      await import('@tensorflow/tfjs-backend-wasm');
    } catch (e) {
      throw new Error(`@tensorflow/tfjs-backend-wasm is not installed (${(e as Error).message.split('\n')[0]})`);
    }
    return 'XNNPACK, 1 thread (Node has no wasm threads)';
  },
  async cpu() {
    await import('@tensorflow/tfjs-backend-cpu');
    return 'pure JavaScript (slow: about 1 GFLOP/s)';
  },
};

/** Whether a dynamic import failed because the package is absent (Node's or a bundler's wording). */
function isNotFound(e: unknown): boolean {
  const code = (e as { code?: string }).code ?? '';
  const msg = (e as Error).message ?? '';
  return /NOT_FOUND|ERR_LOAD_URL/.test(code) || /Cannot find (package|module)|Failed to (load|resolve)|Could not resolve/.test(msg);
}

/** Selects and activates a backend (calls `tf.setBackend`). */
export async function selectBackend(params: SelectBackendParams = {}): Promise<SelectedBackend> {
  const preferred = params.preferred ?? 'auto';
  const log = params.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  if (preferred !== 'auto' && !BACKEND_NAMES.includes(preferred)) {
    throw new RangeError(`selectBackend: preferred must be one of auto, ${BACKEND_NAMES.join(', ')}, got ${JSON.stringify(preferred)}`);
  }
  if (params.threads !== undefined && !(Number.isInteger(params.threads) && params.threads > 0)) {
    throw new RangeError(`selectBackend: threads must be a positive integer, got ${params.threads}`);
  }
  const order = preferred === 'auto' ? BACKEND_NAMES : [preferred];
  const attempts: BackendAttempt[] = [];
  for (const name of order) {
    try {
      const detail = await LOADERS[name](params.threads);
      const ok = await tf.setBackend(name);
      if (!ok) throw new Error(`tf.setBackend('${name}') failed`);
      await tf.ready();
      attempts.push({ name, ok: true, detail });
      const skipped = attempts.filter((a) => !a.ok).map((a) => `${a.name} (${a.detail})`);
      log(`fad: using the "${name}" backend: ${detail}${skipped.length ? `; not available: ${skipped.join('; ')}` : ''}`);
      return { name, detail, attempts };
    } catch (e) {
      attempts.push({ name, ok: false, detail: (e as Error).message });
    }
  }
  const why = attempts.map((a) => `${a.name}: ${a.detail}`).join('; ');
  throw new Error(`selectBackend: no usable backend (${why})`);
}
