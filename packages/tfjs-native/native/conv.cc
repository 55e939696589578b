// 2-D convolution kernels (NHWC activations, HWIO filters, as tfjs stores them) on oneDNN:
// forward (with optional bias + activation), backward-data and backward-weights; the
// weight-dominated ones as im2col + matmul (see useIm2col).
//
// Every entry point takes a parameter block (Int32Array, 15 entries):
//   [N, IH, IW, IC, KH, KW, OC, OH, OW, SH, SW, DH, DW, padTop, padLeft]
// DH/DW are tfjs dilation rates (1 = dense). The bottom/right paddings are derived here
// from the output size: out[o] = sum_k in[o*S - padTop + k*D] * w[k] with out-of-range
// inputs reading as zero is fully determined by padTop and OH, which is exactly the
// semantics of tfjs's computeConv2DInfo for 'same', 'valid' and explicit paddings.
#include <cstdlib>
#include <vector>

#include "common.h"
#include "simd.h"

namespace tfn {
namespace {

using dnnl::algorithm;
using dnnl::memory;
using dnnl::prop_kind;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

struct ConvGeom {
  int64_t N, IH, IW, IC, KH, KW, OC, OH, OW, SH, SW, DH, DW, PT, PL, PB, PR;

  size_t srcSize() const { return size_t(N) * IH * IW * IC; }
  size_t dstSize() const { return size_t(N) * OH * OW * OC; }
  size_t wSize() const { return size_t(KH) * KW * IC * OC; }
  // Multiply-adds x 2 (the same for forward, backward-data and backward-weights).
  int64_t flops() const { return 2 * N * OH * OW * OC * KH * KW * IC; }

  // oneDNN logical dims are always (N, C, H, W) / (O, I, H, W); the format tags below say
  // that the memory is physically NHWC / HWIO.
  // `t` is bf16 for the operands a bf16 primitive reads (see Precision in common.h).
  memory::desc srcMd(dt t = dt::f32) const { return memory::desc({N, IC, IH, IW}, t, tag::nhwc); }
  memory::desc dstMd(dt t = dt::f32) const { return memory::desc({N, OC, OH, OW}, t, tag::nhwc); }
  memory::desc userWMd() const { return memory::desc({OC, IC, KH, KW}, dt::f32, tag::hwio); }
  memory::desc wMd(dt t = dt::f32) const {
    return memory::desc({OC, IC, KH, KW}, t, weightsMode() == 0 ? tag::any : tag::hwio);
  }
  memory::dims strides() const { return {SH, SW}; }
  memory::dims dilates() const { return {DH - 1, DW - 1}; }  // oneDNN counts dilation from 0
  memory::dims padL() const { return {PT, PL}; }
  memory::dims padR() const { return {PB, PR}; }

  std::string key(char kind) const {
    std::string k(1, kind);
    k += '|';
    for (int64_t v : {N, IH, IW, IC, KH, KW, OC, OH, OW, SH, SW, DH, DW, PT, PL}) keyAppend(k, v);
    keyAppend(k, weightsMode());
    keyAppend(k, omp_get_max_threads());  // inside a SmallWorkScope: 1 for small problems
    keyAppend(k, precision());
    return k;
  }
};

ConvGeom parseGeom(const Napi::Value& v) {
  const int32_t* p = intsArg(v, "params", 15);
  ConvGeom g{p[0], p[1], p[2],  p[3],  p[4],  p[5],  p[6], p[7], p[8],
             p[9], p[10], p[11], p[12], p[13], p[14], 0,    0};
  for (int i = 0; i < 13; ++i) {
    if (p[i] < 1) {
      throw Napi::RangeError::New(v.Env(), "tfjs-native conv: every size, stride and dilation must be >= 1");
    }
  }
  if (g.PT < 0 || g.PL < 0) throw Napi::RangeError::New(v.Env(), "tfjs-native conv: negative padding");
  g.PB = (g.OH - 1) * g.SH + (g.KH - 1) * g.DH + 1 - g.IH - g.PT;
  g.PR = (g.OW - 1) * g.SW + (g.KW - 1) * g.DW + 1 - g.IW - g.PL;
  // oneDNN accepts a negative right padding (unused trailing input) only down to -(stride-1).
  if (g.PB <= -g.SH || g.PR <= -g.SW) {
    throw Napi::RangeError::New(v.Env(), "tfjs-native conv: output size inconsistent with input/filter/stride/padding");
  }
  return g;
}

// Forward descriptor shared by the forward kernel and (as the hint) by the backward ones.
// `t`: the type of src and weights (bf16 in mixed precision); bias and dst are always f32.
dnnl::convolution_forward::desc fwdDesc(const ConvGeom& g, bool withBias, dt t = dt::f32) {
  if (withBias) {
    return dnnl::convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct,
                                           g.srcMd(t), g.wMd(t), memory::desc({g.OC}, dt::f32, tag::x),
                                           g.dstMd(), g.strides(), g.dilates(), g.padL(), g.padR());
  }
  return dnnl::convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, g.srcMd(t),
                                         g.wMd(t), g.dstMd(), g.strides(), g.dilates(), g.padL(), g.padR());
}

// Reorder between the user's HWIO weights and the primitive's preferred layout. Holds the
// buffer in the primitive's layout; it is rewritten on every call (weights change every
// training step, so nothing is reused across calls except the allocation).
struct WeightsReorder {
  bool needed = false;
  memory internal;
  dnnl::reorder prim;

  void init(const memory::desc& user, const memory::desc& wanted, bool toUser) {
    needed = user != wanted;
    if (!needed) return;
    internal = memory(wanted, cpuEngine());
    prim = toUser ? dnnl::reorder(dnnl::reorder::primitive_desc(cpuEngine(), wanted, cpuEngine(), user))
                  : dnnl::reorder(dnnl::reorder::primitive_desc(cpuEngine(), user, cpuEngine(), wanted));
  }
};

// `bf16`: the primitive reads bf16 activations (rounded by toBf16 on each call) and bf16
// weights (the weights reorder converts them along with the layout); it writes f32.
struct FwdEntry {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
  WeightsReorder w;
  bool bf16;
};
struct BwdDataEntry {
  dnnl::convolution_backward_data::primitive_desc pd;
  dnnl::convolution_backward_data prim;
  WeightsReorder w;
  bool bf16;
};
struct BwdWeightsEntry {
  dnnl::convolution_backward_weights::primitive_desc pd;
  dnnl::convolution_backward_weights prim;
  WeightsReorder w;  // for the diff weights (always f32): primitive layout -> user HWIO
  bool bf16;
};

Lru<FwdEntry>& fwdCache() {
  static Lru<FwdEntry> c(kCacheCapacity);
  return c;
}
Lru<BwdDataEntry>& bwdDataCache() {
  static Lru<BwdDataEntry> c(kCacheCapacity);
  return c;
}
Lru<BwdWeightsEntry>& bwdWeightsCache() {
  static Lru<BwdWeightsEntry> c(kCacheCapacity);
  return c;
}

// --- Weight-dominated convolutions as im2col + matmul ---------------------------------------
//
// When the filter is much larger than the im2col matrix (few output pixels, many channels:
// ResNet50's last stage, 3x3 512->512 on 2x2 outputs at batch 16 has M = 64 rows against a
// 9.4 MB filter), the conv primitives spend their time reordering the filter into a blocked
// layout and then run at ~150 GFLOP/s. A matmul on the plain HWIO filter read as
// [KH*KW*IC, OC] against the [M, KH*KW*IC] im2col matrix skips the reorder: 1.3-2x faster
// there. FAD_TFJS_NATIVE_IM2COL=0 turns it off.
bool useIm2col(const ConvGeom& g) {
  static const bool disabled = [] {
    const char* v = std::getenv("FAD_TFJS_NATIVE_IM2COL");
    return v != nullptr && std::string(v) == "0";
  }();
  const int64_t M = g.N * g.OH * g.OW;
  return !disabled && weightsMode() == 0 && g.KH * g.KW > 1 && 4 * M <= g.OC;
}

std::vector<float>& colBuffer(size_t n) {
  static std::vector<float> buf;  // used under globalLock()
  if (buf.size() < n) buf.resize(n);
  return buf;
}

// col[r, (kh, kw, ic)] = x[n, oh*SH - PT + kh*DH, ow*SW - PL + kw*DW, ic] (0 outside), r = (n, oh, ow).
void im2col(const ConvGeom& g, const float* x, float* col) {
  const int64_t M = g.N * g.OH * g.OW, K = g.KH * g.KW * g.IC;
  parallelRange(M, M * K, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / (g.OH * g.OW), oh = (r / g.OW) % g.OH, ow = r % g.OW;
      float* out = col + r * K;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t ih = oh * g.SH - g.PT + kh * g.DH;
        for (int64_t kw = 0; kw < g.KW; ++kw, out += g.IC) {
          const int64_t iw = ow * g.SW - g.PL + kw * g.DW;
          if (ih < 0 || ih >= g.IH || iw < 0 || iw >= g.IW) {
            std::memset(out, 0, sizeof(float) * size_t(g.IC));
          } else {
            std::memcpy(out, x + ((n * g.IH + ih) * g.IW + iw) * g.IC, sizeof(float) * size_t(g.IC));
          }
        }
      }
    }
  });
}

// The adjoint of im2col: dx = 0, then dx[n, ih, iw, :] += dcol[r, (kh, kw, :)]. Samples are
// independent, so threads split the batch.
void col2im(const ConvGeom& g, const float* dcol, float* dx) {
  const int64_t K = g.KH * g.KW * g.IC, sample = g.IH * g.IW * g.IC;
  parallelRange(g.N, g.N * g.OH * g.OW * K, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      float* dxs = dx + n * sample;
      std::memset(dxs, 0, sizeof(float) * size_t(sample));
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const float* in = dcol + ((n * g.OH + oh) * g.OW + ow) * K;
          for (int64_t kh = 0; kh < g.KH; ++kh) {
            const int64_t ih = oh * g.SH - g.PT + kh * g.DH;
            for (int64_t kw = 0; kw < g.KW; ++kw, in += g.IC) {
              const int64_t iw = ow * g.SW - g.PL + kw * g.DW;
              if (ih < 0 || ih >= g.IH || iw < 0 || iw >= g.IW) continue;
              float* o = dxs + (ih * g.IW + iw) * g.IC;
              for (int64_t c = 0; c < g.IC; ++c) o[c] += in[c];
            }
          }
        }
      }
    }
  });
}

}  // namespace

// conv2d(x, w, bias | null, y, params, activation, alpha): y = act(conv(x, w) + bias)
Napi::Value Conv2D(const Napi::CallbackInfo& info) {
  if (info.Length() != 7) throw Napi::TypeError::New(info.Env(), "conv2d: expected 7 arguments");
  const ConvGeom g = parseGeom(info[4]);
  const F32 x = f32Arg(info[0], "x", g.srcSize());
  const F32 w = f32Arg(info[1], "filter", g.wSize());
  const bool withBias = !info[2].IsNull() && !info[2].IsUndefined();
  const F32 bias = withBias ? f32Arg(info[2], "bias", size_t(g.OC)) : F32{};
  const F32 y = f32Arg(info[3], "y", g.dstSize());
  const int32_t act = info[5].As<Napi::Number>().Int32Value();
  const float alpha = info[6].As<Napi::Number>().FloatValue();

  return guarded(info, "conv2d", [&] {
    if (useIm2col(g)) {
      const int64_t M = g.N * g.OH * g.OW, K = g.KH * g.KW * g.IC;
      float* col = colBuffer(size_t(M * K)).data();
      im2col(g, x.data, col);
      runMatmul({col, w.data, withBias ? bias.data : nullptr, y.data, 1, 1, M, g.OC, K, false, false, act, alpha});
      return;
    }
    const SmallWorkScope threads(g.flops());
    std::string key = g.key('F');
    keyAppend(key, withBias);
    keyAppend(key, act);
    keyAppendFloat(key, alpha);
    FwdEntry* e = fwdCache().get(key);
    if (!e) {
      e = fwdCache().put(key, makeForPrecision([&](bool bf16) {
        dnnl::convolution_forward::primitive_desc pd(fwdDesc(g, withBias, bf16 ? dt::bf16 : dt::f32),
                                                     makeAttr(act, alpha), cpuEngine());
        FwdEntry entry{pd, dnnl::convolution_forward(pd), {}, bf16};
        entry.w.init(g.userWMd(), pd.weights_desc(), /*toUser=*/false);
        return entry;
      }));
    }
    dnnl::stream& s = cpuStream();
    memory userW(g.userWMd(), cpuEngine(), w.data);
    if (e->w.needed) e->w.prim.execute(s, {{DNNL_ARG_FROM, userW}, {DNNL_ARG_TO, e->w.internal}});
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, e->bf16 ? memory(g.srcMd(dt::bf16), cpuEngine(), toBf16(0, x.data, g.srcSize()))
                               : memory(g.srcMd(), cpuEngine(), x.data)},
        {DNNL_ARG_WEIGHTS, e->w.needed ? e->w.internal : userW},
        {DNNL_ARG_DST, memory(g.dstMd(), cpuEngine(), y.data)},
        {DNNL_ARG_SCRATCHPAD, scratchpadMemory(e->pd)},
    };
    if (withBias) args[DNNL_ARG_BIAS] = memory(memory::desc({g.OC}, dt::f32, tag::x), cpuEngine(), bias.data);
    e->prim.execute(s, args);
    s.wait();
  });
}

// conv2dBackpropInput(dy, w, dx, params): dx = gradient of conv wrt its input.
Napi::Value Conv2DBackpropInput(const Napi::CallbackInfo& info) {
  if (info.Length() != 4) throw Napi::TypeError::New(info.Env(), "conv2dBackpropInput: expected 4 arguments");
  const ConvGeom g = parseGeom(info[3]);
  const F32 dy = f32Arg(info[0], "dy", g.dstSize());
  const F32 w = f32Arg(info[1], "filter", g.wSize());
  const F32 dx = f32Arg(info[2], "dx", g.srcSize());

  return guarded(info, "conv2dBackpropInput", [&] {
    if (useIm2col(g)) {
      // dcol [M, K] = dy [M, OC] x filter^T (filter [K, OC]), then scattered back.
      const int64_t M = g.N * g.OH * g.OW, K = g.KH * g.KW * g.IC;
      float* dcol = colBuffer(size_t(M * K)).data();
      runMatmul({dy.data, w.data, nullptr, dcol, 1, 1, M, K, g.OC, false, true, 0, 0.f});
      col2im(g, dcol, dx.data);
      return;
    }
    const SmallWorkScope threads(g.flops());
    const std::string key = g.key('D');
    BwdDataEntry* e = bwdDataCache().get(key);
    if (!e) {
      e = bwdDataCache().put(key, makeForPrecision([&](bool bf16) {
        const dt t = bf16 ? dt::bf16 : dt::f32;  // of dy and the filter; dx is f32
        dnnl::convolution_forward::primitive_desc hint(fwdDesc(g, false, t), cpuEngine());
        dnnl::convolution_backward_data::desc d(algorithm::convolution_direct, g.srcMd(), g.wMd(t), g.dstMd(t),
                                                g.strides(), g.dilates(), g.padL(), g.padR());
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        dnnl::convolution_backward_data::primitive_desc pd(d, attr, cpuEngine(), hint);
        BwdDataEntry entry{pd, dnnl::convolution_backward_data(pd), {}, bf16};
        entry.w.init(g.userWMd(), pd.weights_desc(), /*toUser=*/false);
        return entry;
      }));
    }
    dnnl::stream& s = cpuStream();
    memory userW(g.userWMd(), cpuEngine(), w.data);
    if (e->w.needed) e->w.prim.execute(s, {{DNNL_ARG_FROM, userW}, {DNNL_ARG_TO, e->w.internal}});
    e->prim.execute(s, {
                           {DNNL_ARG_DIFF_DST, e->bf16 ? memory(g.dstMd(dt::bf16), cpuEngine(), toBf16(0, dy.data, g.dstSize()))
                                                       : memory(g.dstMd(), cpuEngine(), dy.data)},
                           {DNNL_ARG_WEIGHTS, e->w.needed ? e->w.internal : userW},
                           {DNNL_ARG_DIFF_SRC, memory(g.srcMd(), cpuEngine(), dx.data)},
                           {DNNL_ARG_SCRATCHPAD, scratchpadMemory(e->pd)},
                       });
    s.wait();
  });
}

// conv2dBackpropFilter(x, dy, dw, params): dw = gradient of conv wrt its filter (HWIO).
Napi::Value Conv2DBackpropFilter(const Napi::CallbackInfo& info) {
  if (info.Length() != 4) throw Napi::TypeError::New(info.Env(), "conv2dBackpropFilter: expected 4 arguments");
  const ConvGeom g = parseGeom(info[3]);
  const F32 x = f32Arg(info[0], "x", g.srcSize());
  const F32 dy = f32Arg(info[1], "dy", g.dstSize());
  const F32 dw = f32Arg(info[2], "dw", g.wSize());

  return guarded(info, "conv2dBackpropFilter", [&] {
    if (useIm2col(g)) {
      // dw [K, OC] (= HWIO) = col^T [K, M] x dy [M, OC].
      const int64_t M = g.N * g.OH * g.OW, K = g.KH * g.KW * g.IC;
      float* col = colBuffer(size_t(M * K)).data();
      im2col(g, x.data, col);
      runMatmul({col, dy.data, nullptr, dw.data, 1, 1, K, g.OC, M, true, false, 0, 0.f});
      return;
    }
    const SmallWorkScope threads(g.flops());
    const std::string key = g.key('W');
    BwdWeightsEntry* e = bwdWeightsCache().get(key);
    if (!e) {
      e = bwdWeightsCache().put(key, makeForPrecision([&](bool bf16) {
        const dt t = bf16 ? dt::bf16 : dt::f32;  // of x and dy; dw is f32
        dnnl::convolution_forward::primitive_desc hint(fwdDesc(g, false, t), cpuEngine());
        dnnl::convolution_backward_weights::desc d(algorithm::convolution_direct, g.srcMd(t), g.wMd(), g.dstMd(t),
                                                   g.strides(), g.dilates(), g.padL(), g.padR());
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        dnnl::convolution_backward_weights::primitive_desc pd(d, attr, cpuEngine(), hint);
        BwdWeightsEntry entry{pd, dnnl::convolution_backward_weights(pd), {}, bf16};
        entry.w.init(g.userWMd(), pd.diff_weights_desc(), /*toUser=*/true);
        return entry;
      }));
    }
    dnnl::stream& s = cpuStream();
    memory userDw(g.userWMd(), cpuEngine(), dw.data);
    e->prim.execute(s, {
                           {DNNL_ARG_SRC, e->bf16 ? memory(g.srcMd(dt::bf16), cpuEngine(), toBf16(0, x.data, g.srcSize()))
                                                  : memory(g.srcMd(), cpuEngine(), x.data)},
                           {DNNL_ARG_DIFF_DST, e->bf16 ? memory(g.dstMd(dt::bf16), cpuEngine(), toBf16(1, dy.data, g.dstSize()))
                                                       : memory(g.dstMd(), cpuEngine(), dy.data)},
                           {DNNL_ARG_DIFF_WEIGHTS, e->w.needed ? e->w.internal : userDw},
                           {DNNL_ARG_SCRATCHPAD, scratchpadMemory(e->pd)},
                       });
    if (e->w.needed) e->w.prim.execute(s, {{DNNL_ARG_FROM, e->w.internal}, {DNNL_ARG_TO, userDw}});
    s.wait();
  });
}

void clearConvCache() {
  fwdCache().clear();
  bwdDataCache().clear();
  bwdWeightsCache().clear();
}

// {size, hits, misses, entries: [{key, impl, weightsReorder, bf16}]} for debugging and the benchmark.
Napi::Value convCacheInfo(Napi::Env env) {
  const auto reorder = [](Napi::Object& o, const auto& entry) {
    o.Set("weightsReorder", entry.w.needed);
    o.Set("bf16", entry.bf16);
  };
  return CacheInfoBuilder(env).add(fwdCache(), reorder).add(bwdDataCache(), reorder).add(bwdWeightsCache(), reorder).build();
}

}  // namespace tfn
