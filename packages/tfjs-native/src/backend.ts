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
 * again, e.g. to change the thread count.
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
  registerKernels(addon);
  registerBackend(NATIVE_BACKEND_NAME, () => new NativeBackend(), options.priority ?? 0);
  installEagerBackprop();
  registered = true;
  return true;
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
