// Loading the compiled Node-API addon (build/Release/tfjs_native.node). Loading never
// throws: callers get `{ ok: false, reason }` with a one-line reason and fall back to the
// pure-JS cpu backend.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Fused activations understood by the addon, by tfjs name. `prelu` is not fused (falls back). */
export const ACTIVATION_CODES = {
  linear: 0,
  relu: 1,
  relu6: 2,
  leakyrelu: 3,
  sigmoid: 4,
  elu: 5,
} as const;

/** Name of a fused activation the addon implements. */
export type NativeActivation = keyof typeof ACTIVATION_CODES;

/** What `info()` of the addon reports. */
export interface NativeAddonInfo {
  /** oneDNN version, e.g. "2.6.3". */
  dnnlVersion: string;
  dnnlHash: string;
  /** oneDNN's CPU threading runtime ("omp" for Debian's build). */
  dnnlCpuRuntime: string;
  /** Instruction set oneDNN dispatches to, e.g. "avx512_core". */
  isa: string;
  /** OpenMP threads oneDNN uses. */
  threads: number;
  /** Processors OpenMP sees. */
  cores: number;
  /** _OPENMP date of the OpenMP spec the addon was compiled against. */
  openmp: number;
  /** 0: oneDNN chooses the filter layout (reorder per call); 1: plain HWIO. */
  weightsMode: number;
  /** Precision of convolutions and matmuls (see `setNativePrecision`). */
  precision: 'fp32' | 'bf16';
  /** Whether oneDNN's ISA has AVX512-BF16, which bf16 precision needs. */
  bf16Supported: boolean;
  napiVersion: number;
}

/** One cached oneDNN primitive: its cache key and the implementation oneDNN picked. */
export interface NativeCacheEntry {
  key: string;
  impl: string;
  weightsReorder?: boolean;
  /** Whether the primitive reads bf16 inputs (false in fp32 mode, or where bf16 had only oneDNN's reference kernel). */
  bf16?: boolean;
}

/** Statistics of one primitive cache. */
export interface NativeCacheStats {
  size: number;
  hits: number;
  misses: number;
  entries: NativeCacheEntry[];
}

/**
 * The raw addon. All arrays are read and written in place (zero-copy); shapes travel as an
 * Int32Array parameter block. Prefer the `native` tfjs backend over calling this directly.
 */
export interface NativeAddon {
  /**
   * y = act(conv2d(x, w) + bias), NHWC / HWIO.
   * params: [N, IH, IW, IC, KH, KW, OC, OH, OW, strideH, strideW, dilationH, dilationW, padTop, padLeft]
   */
  conv2d(
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | null,
    y: Float32Array,
    params: Int32Array,
    activation: number,
    alpha: number,
  ): void;
  /** dx = gradient of conv2d wrt x, given dy and w (same params as conv2d). */
  conv2dBackpropInput(dy: Float32Array, w: Float32Array, dx: Float32Array, params: Int32Array): void;
  /** dw = gradient of conv2d wrt w (HWIO), given x and dy (same params as conv2d). */
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, params: Int32Array): void;
  /**
   * c = act(a @ b + bias). params: [batchA, batchB, M, N, K, transposeA, transposeB]; the
   * batches are equal or one of them is 1 (broadcast); bias has N entries.
   */
  matmul(
    a: Float32Array,
    b: Float32Array,
    bias: Float32Array | null,
    c: Float32Array,
    params: Int32Array,
    activation: number,
    alpha: number,
  ): void;
  /** out = a (op) b with broadcasting; op codes: BINARY_OPS in eltwise-kernels.ts. */
  binary(op: number, a: Float32Array, aShape: Int32Array, b: Float32Array, bShape: Int32Array, out: Float32Array, outShape: Int32Array): void;
  /** out = op(x) elementwise; op codes: UNARY_OPS; alpha is Step's value for x <= 0. */
  unary(op: number, x: Float32Array, out: Float32Array, alpha: number): void;
  /** Reduces the axes whose mask entry is 1 (op: 0 sum, 1 mean, 2 max, 3 min); out has the kept axes. */
  reduce(op: number, x: Float32Array, shape: Int32Array, mask: Int32Array, out: Float32Array): void;
  /** Softmax over the last axis of a [rows, cols] array. */
  softmax(x: Float32Array, rows: number, cols: number, out: Float32Array): void;
  /** out = x transposed by perm (out.shape[i] = shape[perm[i]]). */
  transpose(x: Float32Array, shape: Int32Array, perm: Int32Array, out: Float32Array): void;
  /** out = the box [begin, begin + size) of x. */
  slice(x: Float32Array, shape: Int32Array, begin: Int32Array, size: Int32Array, out: Float32Array): void;
  /** Concatenation of [outer, inner_i] arrays along their second axis. */
  concat(inputs: Float32Array[], outer: number, inner: Int32Array, out: Float32Array): void;
  /** out = x tiled reps times along each axis. */
  tile(x: Float32Array, shape: Int32Array, reps: Int32Array, out: Float32Array): void;
  /** Sets every element of out to value. */
  fill(out: Float32Array, value: number): void;
  /** out = sum of the (same-size) inputs. */
  addN(inputs: Float32Array[], out: Float32Array): void;
  /** Inference batch norm over the last axis (C channels); parameters have C entries or 1. */
  batchNorm(
    x: Float32Array,
    channels: number,
    mean: Float32Array,
    variance: Float32Array,
    offset: Float32Array | null,
    scale: Float32Array | null,
    epsilon: number,
    out: Float32Array,
  ): void;
  /**
   * Group norm of x [N, S, C] then an activation (0 or false: none, 1 or true: SiLU, 2: ReLU);
   * params [N, S, C, G]; writes y, mean [N, G], rstd [N, G].
   */
  groupNorm(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    y: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    params: Int32Array,
    epsilon: number,
    activation: number | boolean,
  ): void;
  /** Gradients of groupNorm: dx, dgamma, dbeta from dy and the forward's inputs and statistics. */
  groupNormGrad(
    dy: Float32Array,
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
    params: Int32Array,
    activation: number | boolean,
  ): void;
  /** y = x * sigmoid(x). */
  silu(x: Float32Array, y: Float32Array): void;
  /** dx = dy * d silu(x) / dx. */
  siluGrad(x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  /**
   * One Adam step: mOut = b1 m + (1-b1) g, vOut = b2 v + (1-b2) g^2,
   * xOut = x - stepSize mOut / (sqrt(vOut) + epsHat) - decay x.
   */
  adam(
    x: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    xOut: Float32Array,
    mOut: Float32Array,
    vOut: Float32Array,
    beta1: number,
    beta2: number,
    stepSize: number,
    epsHat: number,
    decay: number,
  ): void;
  /**
   * Multi-head attention out = softmax(scale Q K^T) V per head; q [B,L,D], k/v [B,S,D],
   * out [B,L,D], probs [B,H,L,S] (the softmax, for the backward). params [B, L, S, D, H].
   */
  attention(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, probs: Float32Array, params: Int32Array, scale: number): void;
  /** Gradients of attention wrt q, k, v from dy and the forward's inputs and probs. */
  attentionGrad(
    dy: Float32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    probs: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    params: Int32Array,
    scale: number,
  ): void;
  /** Max pooling, NHWC; params [N, H, W, C, OH, OW, KH, KW, strideH, strideW, padTop, padLeft]. */
  maxPool(x: Float32Array, params: Int32Array, y: Float32Array): void;
  /** Gradient of maxPool: dy routed to the first maximum of each window. */
  maxPoolGrad(dy: Float32Array, x: Float32Array, params: Int32Array, dx: Float32Array): void;
  /** Sets the OpenMP thread count (drops cached primitives); returns the count in force. */
  setThreads(n: number): number;
  getThreads(): number;
  /** 0: let oneDNN choose the filter layout (default, faster); 1: force plain HWIO. */
  setWeightsMode(mode: 0 | 1): void;
  /**
   * 0: fp32; 1: bf16 mixed precision for convolutions and matmuls (throws without AVX512-BF16).
   * Returns the precision in force.
   */
  setPrecision(mode: 0 | 1): number;
  getPrecision(): number;
  info(): NativeAddonInfo;
  cacheInfo(): { conv: NativeCacheStats; matmul: NativeCacheStats; attention: NativeCacheStats };
  clearCache(): void;
}

/** Result of {@link loadNativeAddon}. */
export type LoadNativeAddonResult = { ok: true; addon: NativeAddon; path: string } | { ok: false; reason: string };

/**
 * How to build the addon from where this package sits: in the fad monorepo the workspace script,
 * anywhere else (an installed package) the install script by its absolute path, which needs no
 * npm lifecycle and prints what it does.
 */
export function nativeBuildHint(dir: string = packageDir()): string {
  const inMonorepo = !dir.split(/[\\/]/).includes('node_modules') && existsSync(join(dir, '..', '..', 'nx.json'));
  const cmd = inMonorepo ? 'npm run build:native -w @fad/tfjs-native' : `node ${join(dir, 'scripts', 'install.mjs')}`;
  return `run \`${cmd}\` (needs g++ and libdnnl-dev)`;
}

/** Directory of this package (src/ and dist/ both sit one level below it). */
function packageDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..');
}

let cached: LoadNativeAddonResult | undefined;

/**
 * Loads the compiled addon once and returns it, or why it is not available. Never throws.
 *
 * Environment: `FAD_TFJS_NATIVE_DISABLE=1` pretends the addon is missing (to test the
 * fallback); `FAD_TFJS_NATIVE_PATH=/path/to/tfjs_native.node` loads another build.
 *
 * OpenMP's idle threads spin only briefly (`GOMP_SPINCOUNT=10000`, ~0.1 ms, then sleep) unless the
 * user set `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY`. libgomp's default spins for milliseconds, which
 * on a busy machine steals the cores that the rest of the team (or other processes) need: under
 * load (load average 8 on 2 cores) a tiny U-Net step took 1.2 s with the default, 0.22 s with the
 * short spin and 0.06 s with `OMP_WAIT_POLICY=passive`, and the ResNet50 expert step ran at
 * 1.75 img/s spinning against 20 img/s passive. On an idle machine passive waits cost 10-20%
 * (U-Net forward 47.6 against 52.7 img/s, expert step 50 against 62) and the short spin nothing
 * measurable (50.9 and 60.3). libgomp reads the variables when it loads, so they are set before
 * the addon is.
 */
export function loadNativeAddon(): LoadNativeAddonResult {
  if (cached) return cached;
  cached = tryLoad();
  return cached;
}

function tryLoad(): LoadNativeAddonResult {
  try {
    if (process.env.FAD_TFJS_NATIVE_DISABLE === '1') {
      return { ok: false, reason: 'native addon disabled by FAD_TFJS_NATIVE_DISABLE=1' };
    }
    const dir = packageDir();
    const candidates = process.env.FAD_TFJS_NATIVE_PATH
      ? [resolve(process.env.FAD_TFJS_NATIVE_PATH)]
      : [join(dir, 'build', 'Release', 'tfjs_native.node'), join(dir, 'build', 'Debug', 'tfjs_native.node')];
    const path = candidates.find((p) => existsSync(p));
    if (!path) return { ok: false, reason: `native addon not built: ${nativeBuildHint()}` };
    if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) process.env.GOMP_SPINCOUNT = '10000';
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    if (typeof addon?.conv2d !== 'function' || typeof addon.matmul !== 'function' || typeof addon.groupNorm !== 'function' || typeof addon.setPrecision !== 'function') {
      return { ok: false, reason: `native addon at ${path} is incomplete (stale build?): ${nativeBuildHint()}` };
    }
    return { ok: true, addon, path };
  } catch (err) {
    // Typically "libdnnl.so.2: cannot open shared object file" when the runtime library is gone.
    const first = String((err as Error)?.message ?? err).split('\n')[0];
    return { ok: false, reason: `native addon failed to load (${first}): install libdnnl2 or ${nativeBuildHint()}` };
  }
}
