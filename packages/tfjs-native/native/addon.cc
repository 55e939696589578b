// Node-API entry of tfjs-native: module registration, shared oneDNN state, argument
// helpers, thread control and introspection. Kernels live in conv.cc and matmul.cc.
#include <omp.h>

#include <cstdlib>
#include <memory>

#include "common.h"
#include "simd.h"

namespace tfn {

dnnl::engine& cpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& cpuStream() {
  static dnnl::stream stream(cpuEngine());
  return stream;
}

std::mutex& globalLock() {
  static std::mutex m;
  return m;
}

void* scratchpad(size_t bytes) {
  static std::unique_ptr<void, decltype(&std::free)> buf(nullptr, &std::free);
  static size_t capacity = 0;
  if (bytes > capacity) {
    const size_t rounded = ((bytes + 4095) / 4096) * 4096;  // aligned_alloc wants a multiple of the alignment
    buf.reset();                                           // free first: peak memory matters more than speed here
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw std::bad_alloc();
    buf.reset(p);
    capacity = rounded;
  }
  return buf.get();
}

F32 f32Arg(const Napi::Value& v, const char* name, size_t expected) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(v.Env(), std::string("tfjs-native: ") + name + " must be a Float32Array");
  }
  auto arr = v.As<Napi::Float32Array>();
  if (arr.ElementLength() != expected) {
    throw Napi::RangeError::New(v.Env(), std::string("tfjs-native: ") + name + " has " +
                                             std::to_string(arr.ElementLength()) + " elements, expected " +
                                             std::to_string(expected));
  }
  return F32{arr.Data(), arr.ElementLength()};
}

F32 f32Any(const Napi::Value& v, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(v.Env(), std::string("tfjs-native: ") + name + " must be a Float32Array");
  }
  auto arr = v.As<Napi::Float32Array>();
  return F32{arr.Data(), arr.ElementLength()};
}

const int32_t* intsArg(const Napi::Value& v, const char* name, size_t n) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      v.As<Napi::Int32Array>().ElementLength() != n) {
    throw Napi::TypeError::New(v.Env(), std::string("tfjs-native: ") + name + " must be an Int32Array of length " +
                                            std::to_string(n));
  }
  return v.As<Napi::Int32Array>().Data();
}

dnnl::primitive_attr makeAttr(int32_t activation, float alpha) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::post_ops ops;
  switch (activation) {
    case kLinear:
      break;
    case kRelu:
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      break;
    case kRelu6:  // min(max(x, 0), 6)
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_clip, 0.f, 6.f);
      break;
    case kLeakyRelu:  // x > 0 ? x : alpha * x  (oneDNN's relu takes the negative slope)
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, alpha, 0.f);
      break;
    case kSigmoid:
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_logistic, 0.f, 0.f);
      break;
    case kElu:  // tfjs elu: x > 0 ? x : exp(x) - 1
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_elu, 1.f, 0.f);
      break;
    default:
      throw dnnl::error(dnnl_invalid_arguments, "unknown activation code");
  }
  attr.set_post_ops(ops);
  return attr;
}

namespace {
int gWeightsMode = 0;
int gPrecision = kFp32;

// Round to nearest even, like oneDNN's and the CPU's (vcvtneps2bf16) conversion; NaN stays a
// (quiet) NaN. Written branch-free so that it vectorises.
FAD_CLONES void floatsToBf16(const float* __restrict x, uint16_t* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, sizeof u);
    const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    const bool nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
    y[i] = uint16_t(nan ? ((u >> 16) | 0x40u) : rounded);
  }
}
}  // namespace

int precision() { return gPrecision; }

bool bf16Supported() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  return (isa & unsigned(dnnl_cpu_isa_avx512_core_bf16)) == unsigned(dnnl_cpu_isa_avx512_core_bf16);
}

uint16_t* toBf16(int slot, const float* x, size_t n) {
  struct Buf {
    std::unique_ptr<void, decltype(&std::free)> p{nullptr, &std::free};
    size_t capacity = 0;
  };
  static Buf bufs[2];
  Buf& b = bufs[slot];
  const size_t bytes = n * sizeof(uint16_t);
  if (bytes > b.capacity) {
    const size_t rounded = ((bytes + 4095) / 4096) * 4096;
    b.p.reset();
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw std::bad_alloc();
    b.p.reset(p);
    b.capacity = rounded;
  }
  uint16_t* out = static_cast<uint16_t*>(b.p.get());
  parallelRange(int64_t(n), int64_t(n), [&](int64_t i0, int64_t i1) { floatsToBf16(x + i0, out + i0, i1 - i0); });
  return out;
}
int weightsMode() { return gWeightsMode; }
void setWeightsMode(int mode) { gWeightsMode = mode; }

namespace {

const char* isaName(dnnl::cpu_isa isa) {
  switch (static_cast<dnnl_cpu_isa_t>(isa)) {
    case dnnl_cpu_isa_all: return "all";
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    default: return "unknown";
  }
}

void clearCaches() {
  clearConvCache();
  clearMatmulCache();
  clearAttentionCache();
}

// setThreads(n): OpenMP thread count used by oneDNN (and cached primitives are dropped,
// because oneDNN fixes the work split when it creates a primitive).
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  const int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) throw Napi::RangeError::New(info.Env(), "tfjs-native: threads must be >= 1");
  if (n != omp_get_max_threads()) {
    omp_set_num_threads(n);
    std::lock_guard<std::mutex> lock(globalLock());
    clearCaches();
  }
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}

// setWeightsMode(0 | 1): 0 lets oneDNN pick the filter layout (reordered every call),
// 1 forces plain HWIO. For benchmarking; the default (0) was measured to be faster.
Napi::Value SetWeightsMode(const Napi::CallbackInfo& info) {
  const int mode = info[0].As<Napi::Number>().Int32Value();
  if (mode != 0 && mode != 1) throw Napi::RangeError::New(info.Env(), "tfjs-native: weights mode is 0 or 1");
  std::lock_guard<std::mutex> lock(globalLock());
  if (mode != gWeightsMode) {
    gWeightsMode = mode;
    clearCaches();
  }
  return info.Env().Undefined();
}

// setPrecision(0 | 1): 0 fp32, 1 bf16 mixed precision for convolutions and matmuls (see
// common.h). bf16 throws on a CPU (or oneDNN ISA cap) without AVX512-BF16.
Napi::Value SetPrecision(const Napi::CallbackInfo& info) {
  const int mode = info[0].As<Napi::Number>().Int32Value();
  if (mode != kFp32 && mode != kBf16) throw Napi::RangeError::New(info.Env(), "tfjs-native: precision is 0 (fp32) or 1 (bf16)");
  if (mode == kBf16 && !bf16Supported()) {
    throw Napi::Error::New(info.Env(), std::string("tfjs-native: bf16 precision needs a CPU with AVX512-BF16 (oneDNN ISA "
                                                   "avx512_core_bf16 or newer); oneDNN reports ") +
                                           isaName(dnnl::get_effective_cpu_isa()));
  }
  std::lock_guard<std::mutex> lock(globalLock());
  gPrecision = mode;  // every primitive cache key holds the precision: nothing to clear
  return Napi::Number::New(info.Env(), gPrecision);
}

Napi::Value GetPrecision(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), gPrecision); }

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dnnl_version_t* v = dnnl_version();
  Napi::Object out = Napi::Object::New(env);
  out.Set("dnnlVersion", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
  out.Set("dnnlHash", v->hash ? v->hash : "");
  out.Set("dnnlCpuRuntime", v->cpu_runtime == DNNL_RUNTIME_OMP ? "omp" : std::to_string(v->cpu_runtime));
  out.Set("isa", isaName(dnnl::get_effective_cpu_isa()));
  out.Set("threads", omp_get_max_threads());
  out.Set("cores", omp_get_num_procs());
  out.Set("openmp", double(_OPENMP));
  out.Set("weightsMode", gWeightsMode);
  out.Set("precision", gPrecision == kBf16 ? "bf16" : "fp32");
  out.Set("bf16Supported", bf16Supported());
  out.Set("napiVersion", double(NAPI_VERSION));
  return out;
}

Napi::Value CacheInfo(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(globalLock());
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("conv", convCacheInfo(info.Env()));
  out.Set("matmul", matmulCacheInfo(info.Env()));
  out.Set("attention", attentionCacheInfo(info.Env()));
  return out;
}

Napi::Value ClearCache(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(globalLock());
  clearCaches();
  return info.Env().Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("conv2d", Napi::Function::New(env, Conv2D, "conv2d"));
  exports.Set("conv2dBackpropInput", Napi::Function::New(env, Conv2DBackpropInput, "conv2dBackpropInput"));
  exports.Set("conv2dBackpropFilter", Napi::Function::New(env, Conv2DBackpropFilter, "conv2dBackpropFilter"));
  exports.Set("matmul", Napi::Function::New(env, MatMul, "matmul"));
  exports.Set("binary", Napi::Function::New(env, Binary, "binary"));
  exports.Set("unary", Napi::Function::New(env, Unary, "unary"));
  exports.Set("reduce", Napi::Function::New(env, Reduce, "reduce"));
  exports.Set("softmax", Napi::Function::New(env, Softmax, "softmax"));
  exports.Set("transpose", Napi::Function::New(env, Transpose, "transpose"));
  exports.Set("slice", Napi::Function::New(env, Slice, "slice"));
  exports.Set("concat", Napi::Function::New(env, Concat, "concat"));
  exports.Set("tile", Napi::Function::New(env, Tile, "tile"));
  exports.Set("addN", Napi::Function::New(env, AddN, "addN"));
  exports.Set("fill", Napi::Function::New(env, Fill, "fill"));
  exports.Set("batchNorm", Napi::Function::New(env, BatchNorm, "batchNorm"));
  exports.Set("maxPool", Napi::Function::New(env, MaxPool, "maxPool"));
  exports.Set("maxPoolGrad", Napi::Function::New(env, MaxPoolGrad, "maxPoolGrad"));
  exports.Set("groupNorm", Napi::Function::New(env, GroupNorm, "groupNorm"));
  exports.Set("groupNormGrad", Napi::Function::New(env, GroupNormGrad, "groupNormGrad"));
  exports.Set("silu", Napi::Function::New(env, Silu, "silu"));
  exports.Set("siluGrad", Napi::Function::New(env, SiluGrad, "siluGrad"));
  exports.Set("adam", Napi::Function::New(env, Adam, "adam"));
  exports.Set("attention", Napi::Function::New(env, Attention, "attention"));
  exports.Set("attentionGrad", Napi::Function::New(env, AttentionGrad, "attentionGrad"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads, "getThreads"));
  exports.Set("setWeightsMode", Napi::Function::New(env, SetWeightsMode, "setWeightsMode"));
  exports.Set("setPrecision", Napi::Function::New(env, SetPrecision, "setPrecision"));
  exports.Set("getPrecision", Napi::Function::New(env, GetPrecision, "getPrecision"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("cacheInfo", Napi::Function::New(env, CacheInfo, "cacheInfo"));
  exports.Set("clearCache", Napi::Function::New(env, ClearCache, "clearCache"));
  return exports;
}

}  // namespace tfn

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return tfn::Init(env, exports); }

NODE_API_MODULE(tfjs_native, InitModule)
