// Small helpers for the elementwise kernels: OpenMP work splitting and a vectorisable expf.
//
// Hot loops are written so that GCC auto-vectorises them at -O3 without -ffast-math (no
// libm calls, no reductions across iterations), and are compiled for several ISAs with
// `target_clones` (FAD_CLONES), so one build runs everywhere and uses AVX2/AVX-512 where
// the CPU has them (the ifunc picks the variant once, at load time).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FAD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FAD_CLONES
#endif

namespace tfn {

// Below this many elements a kernel runs on the calling thread: waking OpenMP's team
// costs a few microseconds, as much as ~50k float operations.
constexpr int64_t kParallelMin = 1 << 15;

inline int threadsFor(int64_t work) {
  if (work < kParallelMin) return 1;
  const int t = omp_get_max_threads();
  const int64_t byWork = work / (kParallelMin / 2);
  return int(std::max<int64_t>(1, std::min<int64_t>(t, byWork)));
}

// Runs fn(begin, end) over [0, n) split into contiguous chunks, one per thread, in parallel
// when `work` (an estimate of the elements touched) is large enough.
template <class F>
void parallelRange(int64_t n, int64_t work, F&& fn) {
  const int nt = threadsFor(work);
  if (nt <= 1 || n <= 1) {
    fn(int64_t(0), n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    const int T = omp_get_num_threads();
    const int64_t b = n * t / T;
    const int64_t e = n * (t + 1) / T;
    if (b < e) fn(b, e);
  }
}

// expf in single precision, written branch-free so that loops calling it vectorise
// (Cephes' polynomial; max relative error ~2 ulp on [-87, 88]). Overflow gives +inf,
// underflow 0, NaN stays NaN, like Math.exp rounded to float32.
inline float fexp(float x) {
  const float hi = 88.7228317f, lo = -87.3365479f;
  float xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;
  const float fx = xc * 1.44269504088896341f;
  // Round to nearest with the 1.5*2^23 trick (exact for |fx| < 2^22).
  const float n = (fx + 12582912.f) - 12582912.f;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  int32_t e = int32_t(n) + 127;
  e = e < 1 ? 1 : e;  // lo is chosen so that this never triggers for in-range inputs
  int32_t bits = e << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  float res = y * scale;
  res = x > hi ? INFINITY : res;
  res = x < lo ? 0.f : res;
  res = x != x ? x : res;
  return res;
}

inline float fsigmoid(float x) { return 1.f / (1.f + fexp(-x)); }

}  // namespace tfn
