// Elementwise, reduction and data-movement kernels for float32 tensors, multi-threaded with
// OpenMP. They replace the cpu backend's pure-JS loops (which run at 5-50 M elements/s
// with broadcasting) for the ops a diffusion U-Net and its training step spend time in.
//
// Entry points (all arrays are read/written in place; shapes are Int32Arrays):
//   binary(op, a, aShape, b, bShape, out, outShape)    numpy/tfjs broadcasting
//   unary(op, x, out, alpha)                           same-size in/out
//   reduce(op, x, shape, reducedMask, out)             sum / mean / max / min over any axes
//   softmax(x, rows, cols, out)                        over the last axis
//   transpose(x, shape, perm, out)
//   slice(x, shape, begin, size, out)                  strided copy of a box
//   concat([arrays], outer, [inner sizes], out)        along one axis, as [outer, inner_i]
//   tile(x, shape, reps, out)
//   addN([arrays], out)
//   batchNorm(x, C, mean, variance, offset|null, scale|null, eps, out)  per last-axis channel
//   maxPool(x, params, y) / maxPoolGrad(dy, x, params, dx)   NHWC, params
//       [N, H, W, C, OH, OW, KH, KW, SH, SW, padTop, padLeft]; out-of-range window cells are
//       skipped (-inf padding); the gradient goes to the first maximum of each window (tfjs)
#include <vector>

#include "common.h"
#include "simd.h"

namespace tfn {
namespace {

constexpr int kMaxRank = 8;

std::vector<int64_t> shapeArg(const Napi::Value& v, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw Napi::TypeError::New(v.Env(), std::string("tfjs-native: ") + name + " must be an Int32Array");
  }
  auto a = v.As<Napi::Int32Array>();
  if (a.ElementLength() > kMaxRank) {
    throw Napi::RangeError::New(v.Env(), std::string("tfjs-native: ") + name + " has rank > 8");
  }
  std::vector<int64_t> out(a.ElementLength());
  for (size_t i = 0; i < out.size(); ++i) {
    if (a[i] < 0) throw Napi::RangeError::New(v.Env(), std::string("tfjs-native: ") + name + " has a negative entry");
    out[i] = a[i];
  }
  return out;
}

int64_t sizeOf(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}


// ---------------------------------------------------------------------------------------
// Binary ops with broadcasting.

enum BinOp : int32_t { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3, kSqDiff = 4, kMax = 5, kMin = 6, kPow = 7 };

// Math.max / Math.min semantics: NaN if either operand is NaN.
inline float jsMax(float a, float b) { return (a != a || b != b) ? NAN : (a > b ? a : b); }
inline float jsMin(float a, float b) { return (a != a || b != b) ? NAN : (a < b ? a : b); }

// One inner loop per (op, broadcast pattern): vv = both contiguous, vs = b broadcast
// (stride 0), sv = a broadcast.
#define FAD_BIN_LOOPS(NAME, EXPR)                                                                    \
  FAD_CLONES void NAME##_vv(const float* __restrict a, const float* __restrict b, float* __restrict o, \
                            int64_t n) {                                                             \
    for (int64_t i = 0; i < n; ++i) {                                                                \
      const float x = a[i], y = b[i];                                                                \
      o[i] = (EXPR);                                                                                 \
    }                                                                                                \
  }                                                                                                  \
  FAD_CLONES void NAME##_vs(const float* __restrict a, const float* __restrict b, float* __restrict o, \
                            int64_t n) {                                                             \
    const float y = *b;                                                                              \
    for (int64_t i = 0; i < n; ++i) {                                                                \
      const float x = a[i];                                                                          \
      o[i] = (EXPR);                                                                                 \
    }                                                                                                \
  }                                                                                                  \
  FAD_CLONES void NAME##_sv(const float* __restrict a, const float* __restrict b, float* __restrict o, \
                            int64_t n) {                                                             \
    const float x = *a;                                                                              \
    for (int64_t i = 0; i < n; ++i) {                                                                \
      const float y = b[i];                                                                          \
      o[i] = (EXPR);                                                                                 \
    }                                                                                                \
  }

FAD_BIN_LOOPS(add, x + y)
FAD_BIN_LOOPS(sub, x - y)
FAD_BIN_LOOPS(mul, x * y)
FAD_BIN_LOOPS(div, x / y)
FAD_BIN_LOOPS(sqdiff, (x - y) * (x - y))
FAD_BIN_LOOPS(max, jsMax(x, y))
FAD_BIN_LOOPS(min, jsMin(x, y))
FAD_BIN_LOOPS(pow, std::pow(x, y))
#undef FAD_BIN_LOOPS

using BinLoop = void (*)(const float*, const float*, float*, int64_t);

struct BinLoops {
  BinLoop vv, vs, sv;
};

BinLoops binLoops(int32_t op) {
  switch (op) {
    case kAdd: return {add_vv, add_vs, add_sv};
    case kSub: return {sub_vv, sub_vs, sub_sv};
    case kMul: return {mul_vv, mul_vs, mul_sv};
    case kDiv: return {div_vv, div_vs, div_sv};
    case kSqDiff: return {sqdiff_vv, sqdiff_vs, sqdiff_sv};
    case kMax: return {max_vv, max_vs, max_sv};
    case kMin: return {min_vv, min_vs, min_sv};
    case kPow: return {pow_vv, pow_vs, pow_sv};
    default: return {nullptr, nullptr, nullptr};
  }
}

// Output dims with each operand's element strides (0 where it broadcasts), size-1 dims
// dropped and adjacent dims merged wherever both operands stay contiguous across them.
// dims[0] is the innermost.
struct Broadcast {
  int rank = 0;
  int64_t n[kMaxRank + 1], sa[kMaxRank + 1], sb[kMaxRank + 1];
};

Broadcast makeBroadcast(const std::vector<int64_t>& as, const std::vector<int64_t>& bs, const std::vector<int64_t>& os) {
  const int r = int(os.size());
  Broadcast bc;
  int64_t stA = 1, stB = 1;
  for (int i = r - 1; i >= 0; --i) {  // innermost first
    const int ia = i - (r - int(as.size())), ib = i - (r - int(bs.size()));
    const int64_t da = ia >= 0 ? as[ia] : 1, db = ib >= 0 ? bs[ib] : 1, n = os[i];
    const int64_t sa = da == 1 ? 0 : stA, sb = db == 1 ? 0 : stB;
    stA *= da;
    stB *= db;
    if (n == 1) continue;
    if (bc.rank > 0) {
      const int j = bc.rank - 1;
      if (sa == bc.sa[j] * bc.n[j] && sb == bc.sb[j] * bc.n[j]) {
        bc.n[j] *= n;
        continue;
      }
    }
    bc.n[bc.rank] = n;
    bc.sa[bc.rank] = sa;
    bc.sb[bc.rank] = sb;
    ++bc.rank;
  }
  if (bc.rank == 0) {  // a single element
    bc.n[0] = 1;
    bc.sa[0] = 1;
    bc.sb[0] = 1;
    bc.rank = 1;
  }
  return bc;
}

void runBinary(int32_t op, const float* a, const float* b, float* o, const Broadcast& bc) {
  const BinLoops loops = binLoops(op);
  const int64_t inner = bc.n[0];
  const BinLoop loop = (bc.sa[0] != 0 && bc.sb[0] != 0) ? loops.vv : (bc.sb[0] == 0 ? loops.vs : loops.sv);
  int64_t rows = 1;
  for (int d = 1; d < bc.rank; ++d) rows *= bc.n[d];
  if (rows == 1) {
    parallelRange(inner, inner, [&](int64_t s, int64_t e) {
      loop(a + (bc.sa[0] ? s : 0), b + (bc.sb[0] ? s : 0), o + s, e - s);
    });
    return;
  }
  parallelRange(rows, rows * inner, [&](int64_t r0, int64_t r1) {
    // Odometer over the outer dims, starting at row r0.
    int64_t idx[kMaxRank + 1] = {0};
    int64_t offA = 0, offB = 0, rem = r0;
    for (int d = 1; d < bc.rank; ++d) {
      idx[d] = rem % bc.n[d];
      rem /= bc.n[d];
      offA += idx[d] * bc.sa[d];
      offB += idx[d] * bc.sb[d];
    }
    for (int64_t r = r0; r < r1; ++r) {
      loop(a + offA, b + offB, o + r * inner, inner);
      for (int d = 1; d < bc.rank; ++d) {
        ++idx[d];
        offA += bc.sa[d];
        offB += bc.sb[d];
        if (idx[d] < bc.n[d]) break;
        offA -= bc.sa[d] * bc.n[d];
        offB -= bc.sb[d] * bc.n[d];
        idx[d] = 0;
      }
    }
  });
}

// ---------------------------------------------------------------------------------------
// Unary ops.

enum UnOp : int32_t {
  kUSigmoid = 0, kUExp = 1, kULog = 2, kUSqrt = 3, kURsqrt = 4, kUSquare = 5, kUNeg = 6, kURelu = 7,
  kUAbs = 8, kUTanh = 9, kUReciprocal = 10, kUStep = 11, kURelu6 = 12,
};

#define FAD_UN_LOOP(NAME, EXPR)                                                                   \
  FAD_CLONES void NAME##_loop(const float* __restrict in, float* __restrict o, int64_t n, float alpha) { \
    (void)alpha;                                                                                  \
    for (int64_t i = 0; i < n; ++i) {                                                             \
      const float x = in[i];                                                                      \
      o[i] = (EXPR);                                                                              \
    }                                                                                             \
  }

FAD_UN_LOOP(sigmoid, fsigmoid(x))
FAD_UN_LOOP(exp, fexp(x))
FAD_UN_LOOP(log, std::log(x))
FAD_UN_LOOP(sqrt, std::sqrt(x))
FAD_UN_LOOP(rsqrt, 1.f / std::sqrt(x))
FAD_UN_LOOP(square, x * x)
FAD_UN_LOOP(neg, -x)
FAD_UN_LOOP(relu, x < 0.f ? 0.f : x)
FAD_UN_LOOP(abs, std::fabs(x))
FAD_UN_LOOP(tanh, std::tanh(x))
FAD_UN_LOOP(reciprocal, 1.f / x)
FAD_UN_LOOP(step, x != x ? x : (x > 0.f ? 1.f : alpha))
FAD_UN_LOOP(relu6, x < 0.f ? 0.f : (x > 6.f ? 6.f : x))
#undef FAD_UN_LOOP

using UnLoop = void (*)(const float*, float*, int64_t, float);

UnLoop unLoop(int32_t op) {
  switch (op) {
    case kUSigmoid: return sigmoid_loop;
    case kUExp: return exp_loop;
    case kULog: return log_loop;
    case kUSqrt: return sqrt_loop;
    case kURsqrt: return rsqrt_loop;
    case kUSquare: return square_loop;
    case kUNeg: return neg_loop;
    case kURelu: return relu_loop;
    case kUAbs: return abs_loop;
    case kUTanh: return tanh_loop;
    case kUReciprocal: return reciprocal_loop;
    case kUStep: return step_loop;
    case kURelu6: return relu6_loop;
    default: return nullptr;
  }
}

// ---------------------------------------------------------------------------------------
// Reductions.

enum RedOp : int32_t { kSum = 0, kMean = 1, kRMax = 2, kRMin = 3 };

// Sum of n floats: 16 float lanes (vectorised), flushed into a double every 4096 elements.
FAD_CLONES double sumRow(const float* __restrict x, int64_t n) {
  double total = 0;
  int64_t i = 0;
  while (i < n) {
    const int64_t end = std::min(n, i + 4096);
    float acc[16] = {0};
    for (; i + 16 <= end; i += 16) {
      for (int j = 0; j < 16; ++j) acc[j] += x[i + j];
    }
    for (; i < end; ++i) acc[0] += x[i];
    double s = 0;
    for (int j = 0; j < 16; ++j) s += acc[j];
    total += s;
  }
  return total;
}

// NaN-propagating max/min (tfjs: `if (isNaN(v) || v > max) max = v`).
float maxRow(const float* x, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) {
    const float v = x[i];
    m = (v > m || v != v) ? v : m;
    if (m != m) return m;
  }
  return m;
}
float minRow(const float* x, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) {
    const float v = x[i];
    m = (v < m || v != v) ? v : m;
    if (m != m) return m;
  }
  return m;
}

// acc[k] += x[k] for a row of K columns (double accumulators).
FAD_CLONES void accumulateCols(const float* __restrict x, double* __restrict acc, int64_t K) {
  for (int64_t k = 0; k < K; ++k) acc[k] += x[k];
}
void maxCols(const float* x, float* acc, int64_t K, bool isMax) {
  for (int64_t k = 0; k < K; ++k) {
    const float v = x[k], m = acc[k];
    if (m != m) continue;
    acc[k] = (v != v || (isMax ? v > m : v < m)) ? v : m;
  }
}

// out[o] = red(x[o*R .. o*R+R)).
void reduceRows(int32_t op, const float* x, int64_t outer, int64_t R, float* out) {
  const double scale = op == kMean ? 1.0 / double(R) : 1.0;
  if (op == kSum || op == kMean) {
    if (outer >= 2 * omp_get_max_threads() || outer * R < kParallelMin) {
      parallelRange(outer, outer * R, [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) out[o] = float(sumRow(x + o * R, R) * scale);
      });
    } else {
      for (int64_t o = 0; o < outer; ++o) {
        const float* row = x + o * R;
        const int nt = threadsFor(R);
        std::vector<double> part(size_t(nt), 0.0);
        parallelRange(R, R, [&](int64_t b, int64_t e) {
          part[size_t(omp_get_thread_num())] = sumRow(row + b, e - b);
        });
        double s = 0;
        for (double p : part) s += p;
        out[o] = float(s * scale);
      }
    }
    return;
  }
  parallelRange(outer, outer * R, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) out[o] = op == kRMax ? maxRow(x + o * R, R) : minRow(x + o * R, R);
  });
}

// out[k1*K2 + k2] = red_r x[(k1*R + r)*K2 + k2].
void reduceCols(int32_t op, const float* x, int64_t K1, int64_t R, int64_t K2, float* out) {
  const bool isSum = op == kSum || op == kMean;
  const double scale = op == kMean ? 1.0 / double(R) : 1.0;
  const int T = threadsFor(K1 * R * K2);
  for (int64_t k1 = 0; k1 < K1; ++k1) {
    const float* base = x + k1 * R * K2;
    float* dst = out + k1 * K2;
    if (K2 >= 64 * int64_t(T) || T == 1) {
      // Columns split among threads; each thread walks all rows of its column block.
      parallelRange(K2, K2 * R, [&](int64_t c0, int64_t c1) {
        const int64_t w = c1 - c0;
        if (isSum) {
          std::vector<double> acc(size_t(w), 0.0);
          for (int64_t r = 0; r < R; ++r) accumulateCols(base + r * K2 + c0, acc.data(), w);
          for (int64_t c = 0; c < w; ++c) dst[c0 + c] = float(acc[size_t(c)] * scale);
        } else {
          std::vector<float> acc(base + c0, base + c1);
          for (int64_t r = 1; r < R; ++r) maxCols(base + r * K2 + c0, acc.data(), w, op == kRMax);
          std::memcpy(dst + c0, acc.data(), size_t(w) * 4);
        }
      });
    } else {
      // Few columns: rows split among threads, partial results combined.
      std::vector<double> part(size_t(T) * size_t(K2), 0.0);
      std::vector<float> partM(size_t(T) * size_t(K2), 0.f);
      std::vector<char> used(size_t(T), 0);
      parallelRange(R, R * K2, [&](int64_t r0, int64_t r1) {
        const size_t t = size_t(omp_get_thread_num());
        used[t] = 1;
        if (isSum) {
          double* acc = part.data() + t * size_t(K2);
          for (int64_t r = r0; r < r1; ++r) accumulateCols(base + r * K2, acc, K2);
        } else {
          float* acc = partM.data() + t * size_t(K2);
          std::memcpy(acc, base + r0 * K2, size_t(K2) * 4);
          for (int64_t r = r0 + 1; r < r1; ++r) maxCols(base + r * K2, acc, K2, op == kRMax);
        }
      });
      for (int64_t c = 0; c < K2; ++c) {
        if (isSum) {
          double s = 0;
          for (int t = 0; t < T; ++t) s += part[size_t(t) * size_t(K2) + size_t(c)];
          dst[c] = float(s * scale);
        } else {
          bool first = true;
          float m = 0;
          for (int t = 0; t < T; ++t) {
            if (!used[size_t(t)]) continue;
            const float v = partM[size_t(t) * size_t(K2) + size_t(c)];
            if (first) m = v, first = false;
            else if (m == m) m = (v != v || (op == kRMax ? v > m : v < m)) ? v : m;
          }
          dst[c] = m;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Transpose (also used by reductions over non-adjacent axes).

// Copies x (shape `shape`) to out with out.shape[i] = shape[perm[i]].
void runTranspose(const float* x, const std::vector<int64_t>& shapeIn, const std::vector<int64_t>& permIn, float* out) {
  // Drop size-1 dims, then merge output dims that are adjacent in the input too.
  std::vector<int64_t> shape, perm;
  {
    std::vector<int64_t> newIndex(shapeIn.size(), -1);
    for (size_t i = 0; i < shapeIn.size(); ++i) {
      if (shapeIn[i] != 1) {
        newIndex[i] = int64_t(shape.size());
        shape.push_back(shapeIn[i]);
      }
    }
    for (int64_t p : permIn) {
      if (newIndex[size_t(p)] >= 0) perm.push_back(newIndex[size_t(p)]);
    }
  }
  // Merge: output dims i, i+1 with perm[i+1] == perm[i] + 1 are one input run.
  std::vector<std::vector<int64_t>> groups;  // input dims per output group
  for (size_t i = 0; i < perm.size(); ++i) {
    if (!groups.empty() && groups.back().back() + 1 == perm[i]) groups.back().push_back(perm[i]);
    else groups.push_back({perm[i]});
  }
  const int r = int(groups.size());
  const int64_t total = sizeOf(shape);
  if (r <= 1) {
    parallelRange(total, total, [&](int64_t b, int64_t e) { std::memcpy(out + b, x + b, size_t(e - b) * 4); });
    return;
  }
  // Input strides of each original input dim.
  std::vector<int64_t> inStride(shape.size());
  {
    int64_t s = 1;
    for (int i = int(shape.size()) - 1; i >= 0; --i) {
      inStride[size_t(i)] = s;
      s *= shape[size_t(i)];
    }
  }
  // Output group sizes and input strides (stride of the group's last input dim).
  std::vector<int64_t> n(static_cast<size_t>(r)), is(static_cast<size_t>(r)), os(static_cast<size_t>(r));
  for (int g = 0; g < r; ++g) {
    int64_t sz = 1;
    for (int64_t d : groups[size_t(g)]) sz *= shape[size_t(d)];
    n[size_t(g)] = sz;
    is[size_t(g)] = inStride[size_t(groups[size_t(g)].back())];
  }
  {
    int64_t s = 1;
    for (int g = r - 1; g >= 0; --g) {
      os[size_t(g)] = s;
      s *= n[size_t(g)];
    }
  }
  const int last = r - 1;
  if (is[size_t(last)] == 1) {
    // Innermost output run is contiguous in the input: copy rows.
    const int64_t inner = n[size_t(last)];
    const int64_t rows = total / inner;
    parallelRange(rows, total, [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; ++row) {
        int64_t rem = row, off = 0;
        for (int g = last - 1; g >= 0; --g) {
          off += (rem % n[size_t(g)]) * is[size_t(g)];
          rem /= n[size_t(g)];
        }
        std::memcpy(out + row * inner, x + off, size_t(inner) * 4);
      }
    });
    return;
  }
  // General case: the input's innermost dim sits at output group q. Tile the 2-D plane
  // (output group q x output group last) in 32x32 blocks, iterate the other groups.
  int q = 0;
  for (int g = 0; g < r; ++g) {
    if (is[size_t(g)] == 1) q = g;
  }
  const int64_t nq = n[size_t(q)], nl = n[size_t(last)];
  const int64_t isl = is[size_t(last)], osq = os[size_t(q)];
  const int64_t planes = total / (nq * nl);
  constexpr int64_t B = 32;
  const int64_t bq = (nq + B - 1) / B, bl = (nl + B - 1) / B;
  parallelRange(planes * bq, total, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t plane = w / bq, qb = w % bq;
      int64_t rem = plane, offIn = 0, offOut = 0;
      for (int g = last - 1; g >= 0; --g) {
        if (g == q) continue;
        const int64_t i = rem % n[size_t(g)];
        rem /= n[size_t(g)];
        offIn += i * is[size_t(g)];
        offOut += i * os[size_t(g)];
      }
      const int64_t q0 = qb * B, q1 = std::min(nq, q0 + B);
      for (int64_t lb = 0; lb < bl; ++lb) {
        const int64_t l0 = lb * B, l1 = std::min(nl, l0 + B);
        for (int64_t iq = q0; iq < q1; ++iq) {
          const float* src = x + offIn + iq;
          float* dst = out + offOut + iq * osq;
          for (int64_t il = l0; il < l1; ++il) dst[il] = src[il * isl];
        }
      }
    }
  });
}

void reduceAny(int32_t op, const float* x, const std::vector<int64_t>& shape, const std::vector<int64_t>& mask, float* out) {
  // Groups of adjacent dims with the same reduced flag (size-1 dims dropped).
  std::vector<std::pair<int64_t, bool>> g;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    const bool red = mask[i] != 0;
    if (!g.empty() && g.back().second == red) g.back().first *= shape[i];
    else g.emplace_back(shape[i], red);
  }
  const int64_t total = sizeOf(shape);
  if (g.empty() || (g.size() == 1 && !g[0].second)) {  // nothing to reduce
    parallelRange(total, total, [&](int64_t b, int64_t e) { std::memcpy(out + b, x + b, size_t(e - b) * 4); });
    return;
  }
  if (g.size() == 1) return reduceRows(op, x, 1, g[0].first, out);
  if (g.size() == 2 && !g[0].second) return reduceRows(op, x, g[0].first, g[1].first, out);
  if (g.size() == 2) return reduceCols(op, x, 1, g[0].first, g[1].first, out);
  if (g.size() == 3 && !g[0].second) return reduceCols(op, x, g[0].first, g[1].first, g[2].first, out);
  // General: move the reduced dims last, then reduce rows.
  std::vector<int64_t> perm, tshape;
  int64_t kept = 1, red = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (!mask[i]) perm.push_back(int64_t(i)), kept *= shape[i];
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    if (mask[i]) perm.push_back(int64_t(i)), red *= shape[i];
  }
  std::vector<float> tmp(static_cast<size_t>(total));
  runTranspose(x, shape, perm, tmp.data());
  reduceRows(op, tmp.data(), kept, red, out);
}

// ---------------------------------------------------------------------------------------
// Softmax over rows.

FAD_CLONES void softmaxRow(const float* __restrict x, float* __restrict y, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
  float s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float e = fexp(x[i] - m);
    y[i] = e;
    s += e;
  }
  const float inv = 1.f / s;
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
}

// ---------------------------------------------------------------------------------------
// Slice / tile helpers.

// Copies the box [begin, begin+size) of x (shape `shape`) to out (dense).
void runSlice(const float* x, const std::vector<int64_t>& shape, const std::vector<int64_t>& begin,
              const std::vector<int64_t>& size, float* out) {
  const int r = int(shape.size());
  const int64_t total = sizeOf(size);
  if (total == 0) return;
  // Innermost run: trailing dims copied whole, plus the first partial one.
  int k = r - 1;
  int64_t run = 1;
  while (k >= 0 && size[size_t(k)] == shape[size_t(k)] && begin[size_t(k)] == 0) run *= shape[size_t(k--)];
  if (k < 0) {
    parallelRange(total, total, [&](int64_t b, int64_t e) { std::memcpy(out + b, x + b, size_t(e - b) * 4); });
    return;
  }
  std::vector<int64_t> stride(static_cast<size_t>(r));
  {
    int64_t s = 1;
    for (int i = r - 1; i >= 0; --i) stride[size_t(i)] = s, s *= shape[size_t(i)];
  }
  const int64_t rowLen = size[size_t(k)] * run;  // dims k.. as one run (dim k partial)
  const int64_t rows = total / rowLen;
  int64_t base = 0;
  for (int i = 0; i < r; ++i) base += begin[size_t(i)] * stride[size_t(i)];
  parallelRange(rows, total, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      int64_t rem = row, off = base;
      for (int i = k - 1; i >= 0; --i) {
        off += (rem % size[size_t(i)]) * stride[size_t(i)];
        rem /= size[size_t(i)];
      }
      std::memcpy(out + row * rowLen, x + off, size_t(rowLen) * 4);
    }
  });
}

void runTile(const float* x, const std::vector<int64_t>& shape, const std::vector<int64_t>& reps, float* out) {
  const int r = int(shape.size());
  std::vector<int64_t> oshape(static_cast<size_t>(r)), stride(static_cast<size_t>(r));
  for (int i = 0; i < r; ++i) oshape[size_t(i)] = shape[size_t(i)] * reps[size_t(i)];
  const int64_t total = sizeOf(oshape);
  if (total == 0) return;
  if (r == 0) {
    out[0] = x[0];
    return;
  }
  {
    int64_t s = 1;
    for (int i = r - 1; i >= 0; --i) stride[size_t(i)] = s, s *= shape[size_t(i)];
  }
  const int64_t inner = shape[size_t(r - 1)], orow = oshape[size_t(r - 1)];
  const int64_t rows = total / orow;
  parallelRange(rows, total, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      int64_t rem = row, off = 0;
      for (int i = r - 2; i >= 0; --i) {
        off += ((rem % oshape[size_t(i)]) % shape[size_t(i)]) * stride[size_t(i)];
        rem /= oshape[size_t(i)];
      }
      float* dst = out + row * orow;
      for (int64_t k = 0; k < reps[size_t(r - 1)]; ++k) std::memcpy(dst + k * inner, x + off, size_t(inner) * 4);
    }
  });
}

FAD_CLONES void addInto(const float* __restrict a, float* __restrict o, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] += a[i];
}

FAD_CLONES void affineChannels(const float* __restrict x, const float* __restrict sc, const float* __restrict sh,
                               float* __restrict y, int64_t rows, int64_t C) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * sc[c] + sh[c];
  }
}

struct PoolGeom {
  int64_t N, H, W, C, OH, OW, KH, KW, SH, SW, PT, PL;
};

PoolGeom parsePool(const Napi::Value& v) {
  const int32_t* p = intsArg(v, "params", 12);
  PoolGeom g{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11]};
  for (int i = 0; i < 10; ++i) {
    if (p[i] < 1) throw Napi::RangeError::New(v.Env(), "maxPool: sizes and strides must be >= 1");
  }
  if (g.PT < 0 || g.PL < 0) throw Napi::RangeError::New(v.Env(), "maxPool: negative padding");
  return g;
}

// Max over the window of output (oy, ox) of sample n, all channels; also the first arg max
// (flat input pixel index) when idx is given.
FAD_CLONES void poolWindow(const float* __restrict x, const PoolGeom& g, int64_t oy, int64_t ox, float* __restrict best,
                           int32_t* __restrict idx) {
  const int64_t C = g.C;
  for (int64_t c = 0; c < C; ++c) best[c] = -INFINITY;
  if (idx) {
    for (int64_t c = 0; c < C; ++c) idx[c] = -1;
  }
  const int64_t y0 = std::max<int64_t>(0, oy * g.SH - g.PT), y1 = std::min(g.H, oy * g.SH - g.PT + g.KH);
  const int64_t x0 = std::max<int64_t>(0, ox * g.SW - g.PL), x1 = std::min(g.W, ox * g.SW - g.PL + g.KW);
  for (int64_t iy = y0; iy < y1; ++iy) {
    for (int64_t ix = x0; ix < x1; ++ix) {
      const float* px = x + (iy * g.W + ix) * C;
      if (idx) {
        const int32_t pos = int32_t(iy * g.W + ix);
        for (int64_t c = 0; c < C; ++c) {
          const bool gt = px[c] > best[c];
          best[c] = gt ? px[c] : best[c];
          idx[c] = gt ? pos : idx[c];
        }
      } else {
        for (int64_t c = 0; c < C; ++c) best[c] = px[c] > best[c] ? px[c] : best[c];
      }
    }
  }
}

}  // namespace

Napi::Value MaxPool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3) throw Napi::TypeError::New(env, "maxPool: expected (x, params, y)");
  const PoolGeom g = parsePool(info[1]);
  const F32 x = f32Arg(info[0], "x", size_t(g.N * g.H * g.W * g.C));
  const F32 y = f32Arg(info[2], "y", size_t(g.N * g.OH * g.OW * g.C));
  const int64_t rows = g.N * g.OH;
  parallelRange(rows, int64_t(y.length) * g.KH * g.KW, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / g.OH, oy = r % g.OH;
      const float* xs = x.data + n * g.H * g.W * g.C;
      for (int64_t ox = 0; ox < g.OW; ++ox) poolWindow(xs, g, oy, ox, y.data + ((n * g.OH + oy) * g.OW + ox) * g.C, nullptr);
    }
  });
  return env.Undefined();
}

Napi::Value MaxPoolGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4) throw Napi::TypeError::New(env, "maxPoolGrad: expected (dy, x, params, dx)");
  const PoolGeom g = parsePool(info[2]);
  const F32 dy = f32Arg(info[0], "dy", size_t(g.N * g.OH * g.OW * g.C));
  const F32 x = f32Arg(info[1], "x", size_t(g.N * g.H * g.W * g.C));
  const F32 dx = f32Arg(info[3], "dx", x.length);
  // Samples are independent (their windows never overlap), so threads split the batch.
  parallelRange(g.N, int64_t(x.length) + int64_t(dy.length) * g.KH * g.KW, [&](int64_t n0, int64_t n1) {
    std::vector<float> best(static_cast<size_t>(g.C));
    std::vector<int32_t> idx(static_cast<size_t>(g.C));
    for (int64_t n = n0; n < n1; ++n) {
      const float* xs = x.data + n * g.H * g.W * g.C;
      float* d = dx.data + n * g.H * g.W * g.C;
      std::memset(d, 0, size_t(g.H * g.W * g.C) * 4);
      for (int64_t oy = 0; oy < g.OH; ++oy) {
        for (int64_t ox = 0; ox < g.OW; ++ox) {
          poolWindow(xs, g, oy, ox, best.data(), idx.data());
          const float* gy = dy.data + ((n * g.OH + oy) * g.OW + ox) * g.C;
          for (int64_t c = 0; c < g.C; ++c) {
            if (idx[size_t(c)] >= 0) d[int64_t(idx[size_t(c)]) * g.C + c] += gy[c];
          }
        }
      }
    }
  });
  return env.Undefined();
}

// binary(op, a, aShape, b, bShape, out, outShape)
Napi::Value Binary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 7) throw Napi::TypeError::New(env, "binary: expected 7 arguments");
  const int32_t op = info[0].As<Napi::Number>().Int32Value();
  if (!binLoops(op).vv) throw Napi::RangeError::New(env, "binary: unknown op");
  const auto as = shapeArg(info[2], "aShape"), bs = shapeArg(info[4], "bShape"), os = shapeArg(info[6], "outShape");
  const F32 a = f32Arg(info[1], "a", size_t(sizeOf(as)));
  const F32 b = f32Arg(info[3], "b", size_t(sizeOf(bs)));
  const F32 o = f32Arg(info[5], "out", size_t(sizeOf(os)));
  // Validate broadcasting (each operand dim is 1 or equals the output dim).
  if (as.size() > os.size() || bs.size() > os.size()) throw Napi::RangeError::New(env, "binary: operand rank > output rank");
  for (size_t i = 0; i < os.size(); ++i) {
    const int ia = int(i) - int(os.size() - as.size()), ib = int(i) - int(os.size() - bs.size());
    const int64_t da = ia >= 0 ? as[size_t(ia)] : 1, db = ib >= 0 ? bs[size_t(ib)] : 1;
    if ((da != 1 && da != os[i]) || (db != 1 && db != os[i])) {
      throw Napi::RangeError::New(env, "binary: shapes do not broadcast to the output shape");
    }
  }
  if (o.length == 0) return env.Undefined();
  const Broadcast bc = makeBroadcast(as, bs, os);
  runBinary(op, a.data, b.data, o.data, bc);
  return env.Undefined();
}

// unary(op, x, out, alpha)
Napi::Value Unary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4) throw Napi::TypeError::New(env, "unary: expected 4 arguments");
  const int32_t op = info[0].As<Napi::Number>().Int32Value();
  const UnLoop loop = unLoop(op);
  if (!loop) throw Napi::RangeError::New(env, "unary: unknown op");
  const F32 x = f32Any(info[1], "x");
  const F32 o = f32Arg(info[2], "out", x.length);
  const float alpha = info[3].As<Napi::Number>().FloatValue();
  const int64_t n = int64_t(x.length);
  // exp-based ops cost ~10x a load/store: parallelise them from smaller sizes.
  const int64_t work = (op == kUSigmoid || op == kUExp || op == kUTanh || op == kULog) ? n * 8 : n;
  parallelRange(n, work, [&](int64_t b, int64_t e) { loop(x.data + b, o.data + b, e - b, alpha); });
  return env.Undefined();
}

// reduce(op, x, shape, reducedMask, out)
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) throw Napi::TypeError::New(env, "reduce: expected 5 arguments");
  const int32_t op = info[0].As<Napi::Number>().Int32Value();
  if (op < kSum || op > kRMin) throw Napi::RangeError::New(env, "reduce: unknown op");
  const auto shape = shapeArg(info[2], "shape"), mask = shapeArg(info[3], "mask");
  if (mask.size() != shape.size()) throw Napi::RangeError::New(env, "reduce: mask and shape differ in length");
  const F32 x = f32Arg(info[1], "x", size_t(sizeOf(shape)));
  int64_t outSize = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (!mask[i]) outSize *= shape[i];
  }
  const F32 o = f32Arg(info[4], "out", size_t(outSize));
  if (x.length == 0) throw Napi::RangeError::New(env, "reduce: empty input");
  reduceAny(op, x.data, shape, mask, o.data);
  return env.Undefined();
}

// softmax(x, rows, cols, out)
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4) throw Napi::TypeError::New(env, "softmax: expected 4 arguments");
  const int64_t rows = info[1].As<Napi::Number>().Int64Value(), cols = info[2].As<Napi::Number>().Int64Value();
  if (rows < 1 || cols < 1) throw Napi::RangeError::New(env, "softmax: rows and cols must be >= 1");
  const F32 x = f32Arg(info[0], "x", size_t(rows * cols));
  const F32 o = f32Arg(info[3], "out", size_t(rows * cols));
  parallelRange(rows, rows * cols * 8, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) softmaxRow(x.data + r * cols, o.data + r * cols, cols);
  });
  return env.Undefined();
}

// transpose(x, shape, perm, out)
Napi::Value Transpose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4) throw Napi::TypeError::New(env, "transpose: expected 4 arguments");
  const auto shape = shapeArg(info[1], "shape"), perm = shapeArg(info[2], "perm");
  if (perm.size() != shape.size()) throw Napi::RangeError::New(env, "transpose: perm and shape differ in length");
  std::vector<char> seen(shape.size(), 0);
  for (int64_t p : perm) {
    if (p >= int64_t(shape.size()) || seen[size_t(p)]) throw Napi::RangeError::New(env, "transpose: invalid perm");
    seen[size_t(p)] = 1;
  }
  const F32 x = f32Arg(info[0], "x", size_t(sizeOf(shape)));
  const F32 o = f32Arg(info[3], "out", x.length);
  if (x.length == 0) return env.Undefined();
  runTranspose(x.data, shape, perm, o.data);
  return env.Undefined();
}

// slice(x, shape, begin, size, out)
Napi::Value Slice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) throw Napi::TypeError::New(env, "slice: expected 5 arguments");
  const auto shape = shapeArg(info[1], "shape"), begin = shapeArg(info[2], "begin"), size = shapeArg(info[3], "size");
  if (begin.size() != shape.size() || size.size() != shape.size()) {
    throw Napi::RangeError::New(env, "slice: begin/size/shape differ in length");
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    if (begin[i] + size[i] > shape[i]) throw Napi::RangeError::New(env, "slice: box outside the input");
  }
  const F32 x = f32Arg(info[0], "x", size_t(sizeOf(shape)));
  const F32 o = f32Arg(info[4], "out", size_t(sizeOf(size)));
  runSlice(x.data, shape, begin, size, o.data);
  return env.Undefined();
}

// concat([arrays], outer, Int32Array inner sizes, out): out row o = [in_0 row o, in_1 row o, ...].
Napi::Value Concat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4 || !info[0].IsArray()) throw Napi::TypeError::New(env, "concat: expected ([arrays], outer, inner, out)");
  auto arr = info[0].As<Napi::Array>();
  const int64_t outer = info[1].As<Napi::Number>().Int64Value();
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw Napi::TypeError::New(env, "concat: inner sizes must be an Int32Array");
  }
  auto innerArr = info[2].As<Napi::Int32Array>();
  const size_t k = arr.Length();
  if (innerArr.ElementLength() != k || outer < 0) throw Napi::RangeError::New(env, "concat: bad sizes");
  std::vector<const float*> src(k);
  std::vector<int64_t> len(k), off(k);
  int64_t rowLen = 0;
  for (size_t i = 0; i < k; ++i) {
    len[i] = innerArr[i];
    if (len[i] < 0) throw Napi::RangeError::New(env, "concat: negative size");
    src[i] = f32Arg(arr.Get(uint32_t(i)), "concat input", size_t(outer * len[i])).data;
    off[i] = rowLen;
    rowLen += len[i];
  }
  const F32 o = f32Arg(info[3], "out", size_t(outer * rowLen));
  parallelRange(outer, outer * rowLen, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (size_t i = 0; i < k; ++i) std::memcpy(o.data + r * rowLen + off[i], src[i] + r * len[i], size_t(len[i]) * 4);
    }
  });
  return env.Undefined();
}

// tile(x, shape, reps, out)
Napi::Value Tile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4) throw Napi::TypeError::New(env, "tile: expected 4 arguments");
  const auto shape = shapeArg(info[1], "shape"), reps = shapeArg(info[2], "reps");
  if (reps.size() != shape.size()) throw Napi::RangeError::New(env, "tile: reps and shape differ in length");
  int64_t outSize = 1;
  for (size_t i = 0; i < shape.size(); ++i) outSize *= shape[i] * reps[i];
  const F32 x = f32Arg(info[0], "x", size_t(sizeOf(shape)));
  const F32 o = f32Arg(info[3], "out", size_t(outSize));
  runTile(x.data, shape, reps, o.data);
  return env.Undefined();
}

// fill(out, value)
Napi::Value Fill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) throw Napi::TypeError::New(env, "fill: expected (out, value)");
  const F32 o = f32Any(info[0], "out");
  const float v = info[1].As<Napi::Number>().FloatValue();
  const int64_t n = int64_t(o.length);
  parallelRange(n, n, [&](int64_t b, int64_t e) { std::fill(o.data + b, o.data + e, v); });
  return env.Undefined();
}

// addN([arrays], out)
Napi::Value AddN(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsArray()) throw Napi::TypeError::New(env, "addN: expected ([arrays], out)");
  auto arr = info[0].As<Napi::Array>();
  const F32 o = f32Any(info[1], "out");
  const size_t k = arr.Length();
  if (k == 0) throw Napi::RangeError::New(env, "addN: no inputs");
  std::vector<const float*> src(k);
  for (size_t i = 0; i < k; ++i) src[i] = f32Arg(arr.Get(uint32_t(i)), "addN input", o.length).data;
  const int64_t n = int64_t(o.length);
  parallelRange(n, n * int64_t(k), [&](int64_t b, int64_t e) {
    std::memcpy(o.data + b, src[0] + b, size_t(e - b) * 4);
    for (size_t i = 1; i < k; ++i) addInto(src[i] + b, o.data + b, e - b);
  });
  return env.Undefined();
}

// batchNorm(x, C, mean, variance, offset|null, scale|null, eps, out): each parameter has C
// entries or 1 (broadcast); y = (x - mean) / sqrt(variance + eps) * scale + offset.
Napi::Value BatchNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 8) throw Napi::TypeError::New(env, "batchNorm: expected 8 arguments");
  const F32 x = f32Any(info[0], "x");
  const int64_t C = info[1].As<Napi::Number>().Int64Value();
  if (C < 1 || x.length % size_t(C) != 0) throw Napi::RangeError::New(env, "batchNorm: bad channel count");
  auto param = [&](const Napi::Value& v, const char* name, float dflt, std::vector<float>& outv) {
    outv.assign(size_t(C), dflt);
    if (v.IsNull() || v.IsUndefined()) return;
    const F32 p = f32Any(v, name);
    if (p.length == 1) std::fill(outv.begin(), outv.end(), p.data[0]);
    else if (p.length == size_t(C)) std::copy(p.data, p.data + C, outv.begin());
    else throw Napi::RangeError::New(env, std::string("batchNorm: ") + name + " must have 1 or C entries");
  };
  std::vector<float> mean, var, off, sc;
  param(info[2], "mean", 0.f, mean);
  param(info[3], "variance", 1.f, var);
  param(info[4], "offset", 0.f, off);
  param(info[5], "scale", 1.f, sc);
  const float eps = info[6].As<Napi::Number>().FloatValue();
  const F32 o = f32Arg(info[7], "out", x.length);
  std::vector<float> a(static_cast<size_t>(C)), b(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    a[size_t(c)] = sc[size_t(c)] / std::sqrt(var[size_t(c)] + eps);
    b[size_t(c)] = off[size_t(c)] - mean[size_t(c)] * a[size_t(c)];
  }
  const int64_t rows = int64_t(x.length) / C;
  parallelRange(rows, int64_t(x.length), [&](int64_t r0, int64_t r1) {
    affineChannels(x.data + r0 * C, a.data(), b.data(), o.data + r0 * C, r1 - r0, C);
  });
  return env.Undefined();
}

}  // namespace tfn
