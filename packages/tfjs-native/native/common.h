// Shared helpers of the tfjs-native addon: the oneDNN engine/stream, the user scratchpad,
// an LRU cache for primitives, argument parsing and activation post-ops.
//
// Threading model: every entry point is called synchronously from the JS main thread (the
// tfjs cpu backend is synchronous), and oneDNN parallelises inside each call with OpenMP.
// Nothing here is therefore guarded by locks.
#pragma once

#include <napi.h>

#include <cstdint>
#include <cstring>
#include <list>
#include <mutex>
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>
#include <utility>

namespace tfn {

dnnl::engine& cpuEngine();
dnnl::stream& cpuStream();

// One scratchpad buffer shared by all primitives (they run one at a time). Grows, never
// shrinks. Returns a 64-byte aligned pointer to at least `bytes` bytes.
void* scratchpad(size_t bytes);

// Memory object over the shared scratchpad for a primitive descriptor (user scratchpad
// mode), so oneDNN does not malloc/free a scratchpad on every execution.
template <class PD>
dnnl::memory scratchpadMemory(const PD& pd) {
  const dnnl::memory::desc sd = pd.scratchpad_desc();
  return dnnl::memory(sd, cpuEngine(), scratchpad(sd.get_size()));
}

// Small LRU cache: string key -> value. Primitive creation in oneDNN costs 0.1-10 ms, so
// every primitive is cached by everything that determines it (shapes, strides, attrs).
template <class V>
class Lru {
 public:
  explicit Lru(size_t capacity) : capacity_(capacity) {}

  V* get(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) {
      ++misses_;
      return nullptr;
    }
    ++hits_;
    items_.splice(items_.begin(), items_, it->second);  // move to front
    return &it->second->second;
  }

  V* put(const std::string& key, V value) {
    items_.emplace_front(key, std::move(value));
    index_[key] = items_.begin();
    while (items_.size() > capacity_) {
      index_.erase(items_.back().first);
      items_.pop_back();
    }
    return &items_.front().second;
  }

  void clear() {
    items_.clear();
    index_.clear();
  }
  size_t size() const { return items_.size(); }
  size_t hits() const { return hits_; }
  size_t misses() const { return misses_; }
  const std::list<std::pair<std::string, V>>& items() const { return items_; }

 private:
  size_t capacity_;
  size_t hits_ = 0, misses_ = 0;
  std::list<std::pair<std::string, V>> items_;
  std::unordered_map<std::string, typename std::list<std::pair<std::string, V>>::iterator> index_;
};

constexpr size_t kCacheCapacity = 256;

// {size, hits, misses, entries: [{key, impl, ...}]} over one or more primitive caches whose
// entries hold a primitive descriptor `pd` (for debugging and the benchmarks). `extra` may add
// fields to an entry's object.
class CacheInfoBuilder {
 public:
  explicit CacheInfoBuilder(Napi::Env env) : env_(env), entries_(Napi::Array::New(env)) {}

  template <class V, class Extra>
  CacheInfoBuilder& add(const Lru<V>& cache, Extra extra) {
    size_ += cache.size();
    hits_ += cache.hits();
    misses_ += cache.misses();
    for (const auto& kv : cache.items()) {
      Napi::Object o = Napi::Object::New(env_);
      o.Set("key", kv.first);
      o.Set("impl", kv.second.pd.impl_info_str());
      extra(o, kv.second);
      entries_.Set(n_++, o);
    }
    return *this;
  }
  template <class V>
  CacheInfoBuilder& add(const Lru<V>& cache) {
    return add(cache, [](Napi::Object&, const V&) {});
  }

  Napi::Object build() const {
    Napi::Object out = Napi::Object::New(env_);
    out.Set("size", double(size_));
    out.Set("hits", double(hits_));
    out.Set("misses", double(misses_));
    out.Set("entries", entries_);
    return out;
  }

 private:
  Napi::Env env_;
  Napi::Array entries_;
  uint32_t n_ = 0;
  size_t size_ = 0, hits_ = 0, misses_ = 0;
};

// A Float32Array argument: pointer into the JS ArrayBuffer (zero-copy) and its length.
struct F32 {
  float* data = nullptr;
  size_t length = 0;
};

// Throws a JS TypeError unless `v` is a Float32Array of exactly `expected` elements.
F32 f32Arg(const Napi::Value& v, const char* name, size_t expected);
// Any Float32Array (length unchecked).
F32 f32Any(const Napi::Value& v, const char* name);
// Reads an Int32Array parameter block of exactly `n` entries.
const int32_t* intsArg(const Napi::Value& v, const char* name, size_t n);

// Fused activations, numbered as in src/addon.ts (ACTIVATION_CODES).
enum Activation : int32_t {
  kLinear = 0,
  kRelu = 1,
  kRelu6 = 2,
  kLeakyRelu = 3,
  kSigmoid = 4,
  kElu = 5,
};

// Primitive attributes: user scratchpad plus the activation as an eltwise post-op.
dnnl::primitive_attr makeAttr(int32_t activation, float alpha);

// Appends the shape/attr fields to a cache key.
inline void keyAppend(std::string& key, int64_t v) {
  key += std::to_string(v);
  key += ',';
}
// Floats go in by bit pattern, so that nearby values never share a primitive.
inline void keyAppendFloat(std::string& key, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  keyAppend(key, bits);
}

// Problems below this many floating-point operations run on one thread. Waking the second
// OpenMP thread costs microseconds on an idle machine and far more on a busy one (a descheduled
// team member stalls every barrier): a tiny U-Net's train step took 1.1-1.7 s with 2 threads and
// 0.1 s with 1 on a loaded 2-core machine. oneDNN plans its parallel split when a primitive is
// created, so the thread count is part of every primitive cache key (see threads()).
constexpr int64_t kSerialFlops = int64_t(1) << 23;  // ~8.4 MFLOP: ~0.1 ms on one core

// Sets OpenMP's thread count to 1 for the scope when `flops` is small (the ICV is per calling
// thread, so this is cheap and is undone on exit).
class SmallWorkScope {
 public:
  explicit SmallWorkScope(int64_t flops) : prev_(omp_get_max_threads()) {
    if (flops < kSerialFlops && prev_ > 1) {
      omp_set_num_threads(1);
      serial_ = true;
    }
  }
  ~SmallWorkScope() {
    if (serial_) omp_set_num_threads(prev_);
  }
  SmallWorkScope(const SmallWorkScope&) = delete;
  SmallWorkScope& operator=(const SmallWorkScope&) = delete;
  int threads() const { return serial_ ? 1 : prev_; }

 private:
  int prev_;
  bool serial_ = false;
};

// The caches and the scratchpad are process-wide; this lock makes concurrent use from
// several worker_threads safe (it is uncontended in the usual single-threaded case).
std::mutex& globalLock();

// Which weights layout the conv primitives are asked to use: 0 = let oneDNN choose
// (format_tag::any, then reorder from/to HWIO each call), 1 = plain HWIO (no reorder).
int weightsMode();
void setWeightsMode(int mode);

// Precision of the convolutions and matmuls (conv.cc, matmul.cc, attention.cc). kBf16 is mixed
// precision: inputs and weights are rounded to bf16 (round to nearest even) inside the kernel,
// oneDNN accumulates in fp32 and writes fp32 outputs; the tensors tfjs sees stay float32. Part of
// every primitive cache key. Only settable where oneDNN's ISA has AVX512-BF16 (bf16Supported()).
enum Precision : int { kFp32 = 0, kBf16 = 1 };
int precision();
bool bf16Supported();

// Rounds n floats to bf16 into the shared conversion buffer `slot` (0 or 1; grows, never shrinks)
// and returns it. Called with globalLock() held; a slot's contents live until its next use.
uint16_t* toBf16(int slot, const float* x, size_t n);

// The same plain or strided memory descriptor with bf16 elements (same dims and strides, in
// elements), for the bf16 copy toBf16 makes of the f32 array `md` describes.
inline dnnl::memory::desc asBf16(const dnnl::memory::desc& md) {
  dnnl::memory::desc r = md;
  r.data.data_type = dnnl_bf16;
  return r;
}
// Elements spanned by a plain/strided f32 descriptor (what toBf16 must convert).
inline size_t f32Span(const dnnl::memory::desc& md) { return md.get_size() / sizeof(float); }

// In bf16 mode, creates the bf16 variant of a primitive (make(true)) and keeps it unless oneDNN
// has only its reference implementation for that shape (orders of magnitude slower than the
// fp32 JIT kernel) or none at all: then the fp32 variant (make(false)) is used for that shape.
// The entry records which one it holds in its `bf16` field.
template <class Make>
auto makeForPrecision(Make&& make) -> decltype(make(false)) {
  if (precision() == kBf16) {
    try {
      auto e = make(true);
      if (std::string(e.pd.impl_info_str()).rfind("ref", 0) != 0) return e;
    } catch (const dnnl::error&) {
      // no bf16 implementation for this problem: fp32 below
    }
  }
  return make(false);
}

// Clears the primitive caches (needed after a thread-count change: oneDNN plans the
// parallel decomposition when a primitive is created).
void clearConvCache();
void clearMatmulCache();
Napi::Value convCacheInfo(Napi::Env env);
Napi::Value matmulCacheInfo(Napi::Env env);

// Turns oneDNN's C++ exceptions into JS errors (node-addon-api only converts Napi::Error).
template <class F>
Napi::Value guarded(const Napi::CallbackInfo& info, const char* what, F&& body) {
  try {
    std::lock_guard<std::mutex> lock(globalLock());
    body();
  } catch (const dnnl::error& e) {
    throw Napi::Error::New(info.Env(), std::string("tfjs-native ") + what + ": oneDNN error: " + e.what() +
                                           " (status " + std::to_string(int(e.status)) + ")");
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), std::string("tfjs-native ") + what + ": out of memory");
  }
  return info.Env().Undefined();
}

// One oneDNN matmul (cached primitive), as the `matmul` entry point describes: c[B, M, N] =
// act(a[BA, M, K] x b[BB, K, N] + bias[N]), a/b read transposed (as strides) when asked.
// Called with globalLock() held.
struct MatmulArgs {
  const float* a;
  const float* b;
  const float* bias;  // nullptr: none
  float* c;
  int64_t batchA, batchB, M, N, K;
  bool transposeA, transposeB;
  int32_t act;
  float alpha;
};
void runMatmul(const MatmulArgs& m);

// Entry points (see conv.cc / matmul.cc for argument layouts).
Napi::Value Conv2D(const Napi::CallbackInfo& info);
Napi::Value Conv2DBackpropInput(const Napi::CallbackInfo& info);
Napi::Value Conv2DBackpropFilter(const Napi::CallbackInfo& info);
Napi::Value MatMul(const Napi::CallbackInfo& info);
// eltwise.cc
Napi::Value Binary(const Napi::CallbackInfo& info);
Napi::Value Unary(const Napi::CallbackInfo& info);
Napi::Value Reduce(const Napi::CallbackInfo& info);
Napi::Value Softmax(const Napi::CallbackInfo& info);
Napi::Value Transpose(const Napi::CallbackInfo& info);
Napi::Value Slice(const Napi::CallbackInfo& info);
Napi::Value Concat(const Napi::CallbackInfo& info);
Napi::Value Tile(const Napi::CallbackInfo& info);
Napi::Value AddN(const Napi::CallbackInfo& info);
Napi::Value Fill(const Napi::CallbackInfo& info);
Napi::Value BatchNorm(const Napi::CallbackInfo& info);
Napi::Value MaxPool(const Napi::CallbackInfo& info);
Napi::Value MaxPoolGrad(const Napi::CallbackInfo& info);
// fused.cc
Napi::Value GroupNorm(const Napi::CallbackInfo& info);
Napi::Value GroupNormGrad(const Napi::CallbackInfo& info);
Napi::Value Silu(const Napi::CallbackInfo& info);
Napi::Value SiluGrad(const Napi::CallbackInfo& info);
Napi::Value Adam(const Napi::CallbackInfo& info);
// attention.cc
Napi::Value Attention(const Napi::CallbackInfo& info);
Napi::Value AttentionGrad(const Napi::CallbackInfo& info);
void clearAttentionCache();
Napi::Value attentionCacheInfo(Napi::Env env);

}  // namespace tfn
