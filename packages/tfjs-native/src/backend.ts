// The `native` tfjs backend: the pure-JS cpu backend (same class, same data layout: every
// tensor is a Float32Array in JS memory) with all of cpu's kernels, of which the heavy ones
// (conv2d and matmul families) are replaced by oneDNN kernels from the addon.
import { availableParallelism } from 'node:os';

import {
  findBackendFactory,
  getKernel,
  getKernelsForBackend,
  registerBackend,
  registerKernel,
  version_core,
  type BackendValues,
  type DataId,
  type DataType,
  type KernelFunc,
} from '@tensorflow/tfjs-core';
import { MathBackendCPU, version_cpu } from '@tensorflow/tfjs-backend-cpu';

import { loadNativeAddon, type NativeAddon, type NativeAddonInfo } from './addon';
import { drainPool, isPooled, release, retain } from './buffer-pool';
import { installEagerBackprop } from './eager-backprop';
import { makeEltwiseKernels } from './eltwise-kernels';
import { makeFusedKernels, registerFusedGradients } from './fused-ops';
import { makeNativeKernels, NATIVE_KERNEL_NAMES } from './kernels';

import { NATIVE_BACKEND_NAME } from './backend-name';

export { NATIVE_BACKEND_NAME };

/** The backend class: MathBackendCPU, minus its "install tfjs-node" hint (we are the native path). */
export class NativeBackend extends MathBackendCPU {
  constructor() {
    super();
    // MathBackendCPU prints a one-time suggestion to install @tensorflow/tfjs-node on the
    // first write under Node; with oneDNN kernels in place that hint is misleading.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  // Reference counting of pooled output buffers (see ./buffer-pool.ts): every data entry
  // that holds a pooled array (or a view of one) retains it; deleting the entry releases it.
  override write(values: BackendValues, shape: number[], dtype: DataType): DataId {
    const id = super.write(values, shape, dtype);
    retain(values);
    return id;
  }

  override move(dataId: DataId, values: BackendValues, shape: number[], dtype: DataType, refCount: number): void {
    const old = this.data.get(dataId)?.values;
    super.move(dataId, values, shape, dtype, refCount);
    if (old !== undefined) release(old);
    retain(values);
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const values = this.data.get(dataId)?.values;
    const done = super.disposeData(dataId, force);
    if (values !== undefined && !this.data.has(dataId)) release(values);
    return done;
  }

  /** Arrays leaving the backend are copies when pooled: the pool reuses released buffers. */
  override readSync(dataId: DataId): BackendValues {
    const v = super.readSync(dataId);
    return isPooled(v) ? (v as Float32Array).slice() : v;
  }

  override dispose(): void {
    super.dispose();
    drainPool();
  }
}

/** Options of {@link registerNativeBackend}. */
export interface RegisterNativeBackendOptions {
  /**
   * OpenMP threads for oneDNN. Default: OMP_NUM_THREADS if set, else the number of cores
   * (`os.availableParallelism()`).
   */
  threads?: number;
  /**
   * tfjs backend priority, used only when the application never calls `tf.setBackend`.
   * Default 0: below cpu (1) and wasm (2), so registering never changes which backend an
   * application gets unless it asks for 'native'.
   */
  priority?: number;
}

let registered = false;
let warned = false;

/**
 * Registers the tfjs backend `native` (does NOT select it: call `tf.setBackend('native')`).
 * Returns false, and logs the reason once, when the addon is not available. Safe to call
 * again, e.g. to change the thread count. The first registration applies
 * `FAD_TFJS_NATIVE_PRECISION` (`fp32` | `bf16`, see {@link setNativePrecision}) and throws if it
 * is invalid or bf16 is not supported here.
 */
export function registerNativeBackend(options: RegisterNativeBackendOptions = {}): boolean {
  const loaded = loadNativeAddon();
  if (!loaded.ok) {
    if (!warned) {
      warned = true;
      console.warn(`[@fad/tfjs-native] backend '${NATIVE_BACKEND_NAME}' not registered: ${loaded.reason}`);
    }
    return false;
  }
  const { addon } = loaded;
  const threads = options.threads ?? (process.env.OMP_NUM_THREADS ? undefined : availableParallelism());
  if (threads !== undefined) setThreads(addon, threads);
  if (registered || findBackendFactory(NATIVE_BACKEND_NAME) !== null) {
    registered = true;
    return true;
  }
  // Read once, when the kernels are made (like the other FAD_TFJS_NATIVE_* switches); throws on
  // a bad value or bf16 without AVX512-BF16, before anything is registered.
  const envPrecision = precisionFromEnv();
  if (envPrecision !== undefined) setNativePrecision(envPrecision);
  registerKernels(addon);
  registerBackend(NATIVE_BACKEND_NAME, () => new NativeBackend(), options.priority ?? 0);
  installEagerBackprop();
  registered = true;
  return true;
}

/** Precision of the native convolutions and matmuls; see {@link setNativePrecision}. */
export type NativePrecision = 'fp32' | 'bf16';
export const NATIVE_PRECISIONS: readonly NativePrecision[] = ['fp32', 'bf16'];
const PRECISION_CODES: Record<NativePrecision, 0 | 1> = { fp32: 0, bf16: 1 };

/**
 * Sets the precision of the native backend's convolutions (forward, backward-data,
 * backward-weights), matmuls (`BatchMatMul`, `_FusedMatMul`, the pointwise and im2col
 * convolutions) and the two matmuls of `FadAttention` (four of its gradient):
 *
 * - `'fp32'` (default): float32 throughout; results are the same bits as before this setting existed.
 * - `'bf16'`: mixed precision, as diffusers' `--mixed_precision bf16`. Inputs and weights are
 *   rounded to bfloat16 (round to nearest even) inside the kernel, oneDNN accumulates in fp32 and
 *   writes fp32 outputs. Tensors stay float32, so master weights, gradients, optimizer state,
 *   norms, softmax and every other kernel stay fp32. Results differ from fp32 by about bf16's
 *   precision (relative error ~2^-8 per operand; see the README).
 *
 * Takes effect for the next kernel call (the primitive caches are keyed by precision).
 * Throws when `'bf16'` is asked for and oneDNN's ISA lacks AVX512-BF16, or the addon is not
 * available: bf16 never silently falls back to fp32 for a whole run. (Individual shapes for which
 * oneDNN has only its reference bf16 kernel do run in fp32; `addon.cacheInfo()` shows which.)
 * Returns the precision in force. Also settable with `FAD_TFJS_NATIVE_PRECISION=bf16`, read at
 * the first {@link registerNativeBackend}.
 */
export function setNativePrecision(precision: NativePrecision): NativePrecision {
  if (!NATIVE_PRECISIONS.includes(precision)) {
    throw new RangeError(`@fad/tfjs-native: precision must be one of ${NATIVE_PRECISIONS.join(', ')}, got ${JSON.stringify(precision)}`);
  }
  const loaded = loadNativeAddon();
  if (!loaded.ok) {
    if (precision === 'fp32') return 'fp32';
    throw new Error(`@fad/tfjs-native: precision 'bf16' needs the native addon: ${loaded.reason}`);
  }
  loaded.addon.setPrecision(PRECISION_CODES[precision]);
  return getNativePrecision();
}

/** The precision of the native convolutions and matmuls now in force ('fp32' without the addon). */
export function getNativePrecision(): NativePrecision {
  const loaded = loadNativeAddon();
  return loaded.ok && loaded.addon.getPrecision() === 1 ? 'bf16' : 'fp32';
}

/** FAD_TFJS_NATIVE_PRECISION (unset or empty: leave the precision as it is). */
function precisionFromEnv(): NativePrecision | undefined {
  const v = process.env.FAD_TFJS_NATIVE_PRECISION;
  if (v === undefined || v === '') return undefined;
  if (!NATIVE_PRECISIONS.includes(v as NativePrecision)) {
    throw new RangeError(`@fad/tfjs-native: FAD_TFJS_NATIVE_PRECISION must be one of ${NATIVE_PRECISIONS.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as NativePrecision;
}

/** Changes oneDNN's thread count after registration. Returns the count now in force (0 if no addon). */
export function setNativeThreads(threads: number): number {
  const loaded = loadNativeAddon();
  return loaded.ok ? setThreads(loaded.addon, threads) : 0;
}

function setThreads(addon: NativeAddon, threads: number): number {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`@fad/tfjs-native: threads must be a positive integer, got ${threads}`);
  }
  return addon.setThreads(threads);
}

/**
 * Re-registers every cpu kernel under `native`, then puts the native ones on top: oneDNN
 * convolutions and matmuls, the C++ elementwise / reduction / data-movement kernels and the
 * fused custom ops (with their gradients).
 */
function registerKernels(addon: NativeAddon): void {
  const cpuKernel = (name: string): KernelFunc => {
    const k = getKernel(name, 'cpu');
    if (!k) throw new Error(`@fad/tfjs-native: cpu kernel ${name} is not registered (import @tensorflow/tfjs-backend-cpu)`);
    return k.kernelFunc;
  };
  // FAD_TFJS_NATIVE_KERNELS=onednn registers only the oneDNN convolutions and matmuls (this
  // package's first version), e.g. to profile what the other native kernels bring.
  const onlyOnednn = process.env.FAD_TFJS_NATIVE_KERNELS === 'onednn';
  const native = onlyOnednn
    ? makeNativeKernels(addon, cpuKernel)
    : { ...makeEltwiseKernels(addon, cpuKernel), ...makeNativeKernels(addon, cpuKernel), ...makeFusedKernels(addon) };
  for (const config of getKernelsForBackend('cpu')) {
    if (config.kernelName in native) continue;
    registerKernel({ ...config, backendName: NATIVE_BACKEND_NAME });
  }
  for (const [kernelName, kernelFunc] of Object.entries(native)) {
    registerKernel({ kernelName, backendName: NATIVE_BACKEND_NAME, kernelFunc });
  }
  if (!onlyOnednn) registerFusedGradients();
}

/** What {@link nativeInfo} reports. */
export interface NativeInfo {
  /** Whether the addon loaded. */
  available: boolean;
  /** Why not, when `available` is false (one line). */
  reason?: string;
  /** Whether backend `native` is registered. */
  registered: boolean;
  /** Path of the loaded addon. */
  addonPath?: string;
  /** Addon details (oneDNN version, ISA, threads...), when available. */
  addon?: NativeAddonInfo;
  /** Kernels replaced by oneDNN (everything else is the cpu backend's). */
  nativeKernels: readonly string[];
  tfjsCore: string;
  tfjsBackendCpu: string;
}

/** Versions, ISA, threads and availability of the native backend. Never throws. */
export function nativeInfo(): NativeInfo {
  const loaded = loadNativeAddon();
  const base = {
    registered: registered || findBackendFactory(NATIVE_BACKEND_NAME) !== null,
    nativeKernels: NATIVE_KERNEL_NAMES,
    tfjsCore: version_core,
    tfjsBackendCpu: version_cpu,
  };
  if (!loaded.ok) return { available: false, reason: loaded.reason, ...base };
  return { available: true, addonPath: loaded.path, addon: loaded.addon.info(), ...base };
}
