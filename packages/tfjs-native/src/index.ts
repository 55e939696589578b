// @fad/tfjs-native: a TensorFlow.js backend named 'native' = the pure-JS cpu backend with
// the conv2d and matmul kernels replaced by oneDNN (Node-API addon). Explicit barrel.
export {
  ACTIVATION_CODES,
  loadNativeAddon,
  nativeBuildHint,
  type LoadNativeAddonResult,
  type NativeActivation,
  type NativeAddon,
  type NativeAddonInfo,
  type NativeCacheEntry,
  type NativeCacheStats,
} from './addon';
export {
  getNativePrecision,
  NATIVE_BACKEND_NAME,
  NATIVE_PRECISIONS,
  NativeBackend,
  nativeInfo,
  registerNativeBackend,
  setNativePrecision,
  setNativeThreads,
  type NativeInfo,
  type NativePrecision,
  type RegisterNativeBackendOptions,
} from './backend';
export { NATIVE_KERNEL_NAMES, ONEDNN_KERNEL_NAMES } from './kernels';
export { poolStats } from './buffer-pool';
export { BINARY_OPS, ELTWISE_KERNEL_NAMES, UNARY_OPS } from './eltwise-kernels';
export {
  FUSED_ADAM,
  FUSED_ATTENTION,
  FUSED_ATTENTION_GRAD,
  FUSED_BATCH_NORM,
  FUSED_BATCH_NORM_GRAD,
  FUSED_GROUP_NORM,
  FUSED_GROUP_NORM_GRAD,
  FUSED_KERNEL_NAMES,
  FUSED_SILU,
  FUSED_SILU_GRAD,
  type FusedAdamAttrs,
  type FusedAttentionAttrs,
  type FusedBatchNormAttrs,
  type FusedGroupNormAttrs,
} from './fused-ops';
