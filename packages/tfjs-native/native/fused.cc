// Fused kernels that tfjs has no op for: group normalisation with an optional SiLU
// (forward and backward), and SiLU itself. Composed from tfjs ops, GroupNorm+SiLU is ~10
// full passes over the activation forward and ~25 backward, each allocating a tensor that
// the tape keeps until the backward pass; fused it is 2 passes each way and saves only the
// per-group mean and 1/std.
//
//   groupNorm(x, gamma, beta, y, mean, rstd, params[N, S, C, G], eps, act)
//   groupNormGrad(dy, x, gamma, beta, mean, rstd, dx, dgamma, dbeta, params, act)
//     act: 0 none, 1 SiLU, 2 ReLU applied after the affine transform (true = 1, false = 0).
//   silu(x, y) / siluGrad(x, dy, dx)
//   adam(x, g, m, v, xOut, mOut, vOut, beta1, beta2, stepSize, epsHat, decay)
//
// x is [N, S, C] (NHWC with S = H*W; LayerNorm over C is the case S = 1, G = 1), channels
// are split into G contiguous groups of C/G. mean and rstd are [N, G].
#include <vector>

#include "common.h"
#include "simd.h"

namespace tfn {
namespace {

struct GnGeom {
  int64_t N, S, C, G, Cg;
};

GnGeom parseGn(const Napi::Value& v) {
  const int32_t* p = intsArg(v, "params", 4);
  GnGeom g{p[0], p[1], p[2], p[3], 0};
  if (g.N < 1 || g.S < 1 || g.C < 1 || g.G < 1 || g.C % g.G != 0) {
    throw Napi::RangeError::New(v.Env(), "groupNorm: params must be [N>=1, S>=1, C>=1, G>=1] with C divisible by G");
  }
  g.Cg = g.C / g.G;
  return g;
}

// sum[c] += x, sq[c] += x*x over S rows of C channels.
FAD_CLONES void channelMoments(const float* __restrict x, int64_t S, int64_t C, double* __restrict sum,
                               double* __restrict sq) {
  for (int64_t s = 0; s < S; ++s) {
    const float* row = x + s * C;
    for (int64_t c = 0; c < C; ++c) {
      const double v = row[c];
      sum[c] += v;
      sq[c] += v * v;
    }
  }
}

// y = x*a[c] + b[c], then SiLU if asked.
FAD_CLONES void normalizeRows(const float* __restrict x, int64_t S, int64_t C, const float* __restrict a,
                              const float* __restrict b, float* __restrict y, int act) {
  for (int64_t s = 0; s < S; ++s) {
    const float* xr = x + s * C;
    float* yr = y + s * C;
    if (act == 1) {
      for (int64_t c = 0; c < C; ++c) {
        const float z = xr[c] * a[c] + b[c];
        yr[c] = z / (1.f + fexp(-z));
      }
    } else if (act == 2) {
      for (int64_t c = 0; c < C; ++c) {
        const float z = xr[c] * a[c] + b[c];
        yr[c] = z > 0.f ? z : 0.f;
      }
    } else {
      for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * a[c] + b[c];
    }
  }
}

// dy through the activation that followed the affine transform (z = x*a[c] + b[c]).
template <int ACT>
__attribute__((always_inline)) inline float throughAct(float dy, float z) {
  if constexpr (ACT == 1) {
    const float sg = 1.f / (1.f + fexp(-z));
    return dy * sg * (1.f + z * (1.f - sg));
  } else if constexpr (ACT == 2) {
    // Multiplied by the 0/1 mask rather than selected: GCC keeps `z > 0 ? dy : 0` as a branch
    // here, and ReLU masks are close to random, so that mispredicted on about half the
    // elements (the BatchNorm+ReLU backward ran 15x slower than without the ReLU).
    return dy * float(z > 0.f);
  } else {
    (void)z;
    return dy;
  }
}

// Backward statistics: sdz[c] += dz, sdzx[c] += dz*x, dz being dy through the activation.
template <int ACT>
__attribute__((always_inline)) inline void gradMomentsT(const float* __restrict dy, const float* __restrict x, int64_t S,
                                                        int64_t C, const float* __restrict a, const float* __restrict b,
                                                        double* __restrict sdz, double* __restrict sdzx) {
  for (int64_t s = 0; s < S; ++s) {
    const float* xr = x + s * C;
    const float* dr = dy + s * C;
    for (int64_t c = 0; c < C; ++c) {
      const float dz = throughAct<ACT>(dr[c], xr[c] * a[c] + b[c]);
      sdz[c] += dz;
      sdzx[c] += double(dz) * xr[c];
    }
  }
}

// dx = dz*k1[c] + x*k2[c] + k3[c].
template <int ACT>
__attribute__((always_inline)) inline void gradApplyT(const float* __restrict dy, const float* __restrict x, int64_t S,
                                                      int64_t C, const float* __restrict a, const float* __restrict b,
                                                      const float* __restrict k1, const float* __restrict k2,
                                                      const float* __restrict k3, float* __restrict dx) {
  for (int64_t s = 0; s < S; ++s) {
    const float* xr = x + s * C;
    const float* dr = dy + s * C;
    float* o = dx + s * C;
    for (int64_t c = 0; c < C; ++c) {
      const float dz = throughAct<ACT>(dr[c], xr[c] * a[c] + b[c]);
      o[c] = dz * k1[c] + xr[c] * k2[c] + k3[c];
    }
  }
}

// The activation is dispatched outside the loops, so each variant vectorises.
FAD_CLONES void gradMoments(const float* __restrict dy, const float* __restrict x, int64_t S, int64_t C,
                            const float* __restrict a, const float* __restrict b, int act,
                            double* __restrict sdz, double* __restrict sdzx) {
  if (act == 1) gradMomentsT<1>(dy, x, S, C, a, b, sdz, sdzx);
  else if (act == 2) gradMomentsT<2>(dy, x, S, C, a, b, sdz, sdzx);
  else gradMomentsT<0>(dy, x, S, C, a, b, sdz, sdzx);
}

FAD_CLONES void gradApply(const float* __restrict dy, const float* __restrict x, int64_t S, int64_t C,
                          const float* __restrict a, const float* __restrict b, int act,
                          const float* __restrict k1, const float* __restrict k2, const float* __restrict k3,
                          float* __restrict dx) {
  if (act == 1) gradApplyT<1>(dy, x, S, C, a, b, k1, k2, k3, dx);
  else if (act == 2) gradApplyT<2>(dy, x, S, C, a, b, k1, k2, k3, dx);
  else gradApplyT<0>(dy, x, S, C, a, b, k1, k2, k3, dx);
}

FAD_CLONES void siluLoop(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.f + fexp(-x[i]));
}

FAD_CLONES void siluGradLoop(const float* __restrict x, const float* __restrict dy, float* __restrict dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float sg = 1.f / (1.f + fexp(-x[i]));
    dx[i] = dy[i] * sg * (1.f + x[i] * (1.f - sg));
  }
}

// One Adam step in one pass (diffusion-core's Adam, bias corrections folded into stepSize
// and epsHat by the caller): m' = b1 m + (1-b1) g; v' = b2 v + (1-b2) g^2;
// x' = x - stepSize m' / (sqrt(v') + epsHat) - decay x.
FAD_CLONES void adamLoop(const float* __restrict x, const float* __restrict g, const float* __restrict m,
                         const float* __restrict v, float* __restrict xo, float* __restrict mo, float* __restrict vo,
                         int64_t n, float b1, float b2, float stepSize, float epsHat, float decay) {
  const float c1 = 1.f - b1, c2 = 1.f - b2;
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = m[i] * b1 + gi * c1;
    const float vi = v[i] * b2 + gi * gi * c2;
    mo[i] = mi;
    vo[i] = vi;
    xo[i] = x[i] - (mi * stepSize / (std::sqrt(vi) + epsHat) + x[i] * decay);
  }
}

// Per-channel scale/shift of sample n from its group statistics: y = x*a + b.
void affineOf(const GnGeom& g, const float* gamma, const float* beta, const float* mean, const float* rstd, int64_t n,
              float* a, float* b) {
  for (int64_t c = 0; c < g.C; ++c) {
    const int64_t gi = n * g.G + c / g.Cg;
    a[c] = rstd[gi] * gamma[c];
    b[c] = beta[c] - mean[gi] * a[c];
  }
}

// LayerNorm-shaped calls (S = 1, G = 1: normalise each row of C values) skip the per-channel
// bookkeeping of the general path: one vectorised pass for the statistics, one to write.
FAD_CLONES void rowNormForward(const float* __restrict x, const float* __restrict gamma, const float* __restrict beta,
                               float* __restrict y, float* __restrict mean, float* __restrict rstd, int64_t rows,
                               int64_t C, double eps, int act) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    // 16 independent accumulators: a single running sum is a latency chain GCC may not
    // reorder (no -ffast-math), 4 cycles per element.
    float ls[16] = {0}, lq[16] = {0};
    int64_t c = 0;
    for (; c + 16 <= C; c += 16)
      for (int j = 0; j < 16; ++j) ls[j] += xr[c + j];
    float s = 0;
    for (; c < C; ++c) s += xr[c];
    for (int j = 0; j < 16; ++j) s += ls[j];
    const float mu = s / float(C);
    for (c = 0; c + 16 <= C; c += 16)
      for (int j = 0; j < 16; ++j) lq[j] += (xr[c + j] - mu) * (xr[c + j] - mu);
    float q = 0;
    for (; c < C; ++c) q += (xr[c] - mu) * (xr[c] - mu);
    for (int j = 0; j < 16; ++j) q += lq[j];
    const float rs = float(1.0 / std::sqrt(double(q) / double(C) + eps));
    mean[r] = mu;
    rstd[r] = rs;
    if (act == 1) {
      for (int64_t c = 0; c < C; ++c) {
        const float z = (xr[c] - mu) * rs * gamma[c] + beta[c];
        yr[c] = z / (1.f + fexp(-z));
      }
    } else if (act == 2) {
      for (int64_t c = 0; c < C; ++c) {
        const float z = (xr[c] - mu) * rs * gamma[c] + beta[c];
        yr[c] = z > 0.f ? z : 0.f;
      }
    } else {
      for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] - mu) * rs * gamma[c] + beta[c];
    }
  }
}

FAD_CLONES void rowNormBackward(const float* __restrict dy, const float* __restrict x, const float* __restrict gamma,
                                const float* __restrict beta, const float* __restrict mean, const float* __restrict rstd,
                                float* __restrict dx, float* __restrict dgamma, float* __restrict dbeta, float* __restrict dz,
                                int64_t rows, int64_t C, int act) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    const float* gr = dy + r * C;
    float* o = dx + r * C;
    const float mu = mean[r], rs = rstd[r];
    for (int64_t c = 0; c < C; ++c) {
      const float xh = (xr[c] - mu) * rs;
      float d = gr[c];
      if (act == 1) {
        const float z = xh * gamma[c] + beta[c];
        const float sg = 1.f / (1.f + fexp(-z));
        d *= sg * (1.f + z * (1.f - sg));
      } else if (act == 2) {
        d *= float(xh * gamma[c] + beta[c] > 0.f);  // a mask, not a branch (see throughAct)
      }
      dz[c] = d;
      dgamma[c] += d * xh;
      dbeta[c] += d;
    }
    float la[16] = {0}, lb[16] = {0};
    int64_t c = 0;
    for (; c + 16 <= C; c += 16) {
      for (int j = 0; j < 16; ++j) {
        const float dxh = dz[c + j] * gamma[c + j];
        la[j] += dxh;
        lb[j] += dxh * (xr[c + j] - mu) * rs;
      }
    }
    float a = 0, b = 0;
    for (; c < C; ++c) {
      const float dxh = dz[c] * gamma[c];
      a += dxh;
      b += dxh * (xr[c] - mu) * rs;
    }
    for (int j = 0; j < 16; ++j) a += la[j], b += lb[j];
    a /= float(C);
    b /= float(C);
    for (int64_t c = 0; c < C; ++c) {
      const float xh = (xr[c] - mu) * rs;
      o[c] = rs * (dz[c] * gamma[c] - a - xh * b);
    }
  }
}

int activationArg(const Napi::Value& v) {
  if (v.IsNumber()) {
    const int a = v.As<Napi::Number>().Int32Value();
    if (a < 0 || a > 2) throw Napi::RangeError::New(v.Env(), "groupNorm: activation must be 0 (none), 1 (SiLU) or 2 (ReLU)");
    return a;
  }
  return v.ToBoolean() ? 1 : 0;
}

// Splits sample-level work: whole samples per thread when there are enough of them,
// otherwise rows of each sample across threads.
bool perSample(const GnGeom& g) {
  const int T = omp_get_max_threads();
  return g.N >= 2 * int64_t(T) || g.N * g.S * g.C < kParallelMin || g.S < 2 * int64_t(T);
}

void statsToGroups(const GnGeom& g, const double* sum, const double* sq, double eps, float* mean, float* rstd, int64_t n) {
  const double m = double(g.S * g.Cg);
  for (int64_t gi = 0; gi < g.G; ++gi) {
    double s = 0, q = 0;
    for (int64_t c = gi * g.Cg; c < (gi + 1) * g.Cg; ++c) s += sum[c], q += sq[c];
    const double mu = s / m;
    const double var = std::max(0.0, q / m - mu * mu);
    mean[n * g.G + gi] = float(mu);
    rstd[n * g.G + gi] = float(1.0 / std::sqrt(var + eps));
  }
}

}  // namespace

Napi::Value GroupNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 9) throw Napi::TypeError::New(env, "groupNorm: expected 9 arguments");
  const GnGeom g = parseGn(info[6]);
  const size_t total = size_t(g.N * g.S * g.C);
  const F32 x = f32Arg(info[0], "x", total);
  const F32 gamma = f32Arg(info[1], "gamma", size_t(g.C));
  const F32 beta = f32Arg(info[2], "beta", size_t(g.C));
  const F32 y = f32Arg(info[3], "y", total);
  const F32 mean = f32Arg(info[4], "mean", size_t(g.N * g.G));
  const F32 rstd = f32Arg(info[5], "rstd", size_t(g.N * g.G));
  const double eps = info[7].As<Napi::Number>().DoubleValue();
  const int act = activationArg(info[8]);
  const int64_t sampleSize = g.S * g.C;

  if (g.S == 1 && g.G == 1) {
    parallelRange(g.N, int64_t(total) * (act == 1 ? 6 : 3), [&](int64_t n0, int64_t n1) {
      rowNormForward(x.data + n0 * g.C, gamma.data, beta.data, y.data + n0 * g.C, mean.data + n0, rstd.data + n0, n1 - n0,
                     g.C, eps, act);
    });
    return env.Undefined();
  }
  if (perSample(g)) {
    parallelRange(g.N, int64_t(total) * (act == 1 ? 4 : 2), [&](int64_t n0, int64_t n1) {
      std::vector<double> sum(size_t(g.C)), sq(size_t(g.C));
      std::vector<float> a(size_t(g.C)), b(size_t(g.C));
      for (int64_t n = n0; n < n1; ++n) {
        std::fill(sum.begin(), sum.end(), 0.0);
        std::fill(sq.begin(), sq.end(), 0.0);
        channelMoments(x.data + n * sampleSize, g.S, g.C, sum.data(), sq.data());
        statsToGroups(g, sum.data(), sq.data(), eps, mean.data, rstd.data, n);
        affineOf(g, gamma.data, beta.data, mean.data, rstd.data, n, a.data(), b.data());
        normalizeRows(x.data + n * sampleSize, g.S, g.C, a.data(), b.data(), y.data + n * sampleSize, act);
      }
    });
    return env.Undefined();
  }
  const int T = omp_get_max_threads();
  std::vector<double> part(size_t(T) * 2 * size_t(g.C));
  std::vector<float> a(size_t(g.C)), b(size_t(g.C));
  for (int64_t n = 0; n < g.N; ++n) {
    const float* xs = x.data + n * sampleSize;
    std::fill(part.begin(), part.end(), 0.0);
    parallelRange(g.S, sampleSize, [&](int64_t s0, int64_t s1) {
      double* p = part.data() + size_t(omp_get_thread_num()) * 2 * size_t(g.C);
      channelMoments(xs + s0 * g.C, s1 - s0, g.C, p, p + g.C);
    });
    std::vector<double> sum(size_t(g.C), 0.0), sq(size_t(g.C), 0.0);
    for (int t = 0; t < T; ++t) {
      const double* p = part.data() + size_t(t) * 2 * size_t(g.C);
      for (int64_t c = 0; c < g.C; ++c) sum[size_t(c)] += p[c], sq[size_t(c)] += p[g.C + c];
    }
    statsToGroups(g, sum.data(), sq.data(), eps, mean.data, rstd.data, n);
    affineOf(g, gamma.data, beta.data, mean.data, rstd.data, n, a.data(), b.data());
    parallelRange(g.S, sampleSize * (act == 1 ? 4 : 1), [&](int64_t s0, int64_t s1) {
      normalizeRows(xs + s0 * g.C, s1 - s0, g.C, a.data(), b.data(), y.data + n * sampleSize + s0 * g.C, act);
    });
  }
  return env.Undefined();
}

Napi::Value GroupNormGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 11) throw Napi::TypeError::New(env, "groupNormGrad: expected 11 arguments");
  const GnGeom g = parseGn(info[9]);
  const size_t total = size_t(g.N * g.S * g.C);
  const F32 dy = f32Arg(info[0], "dy", total);
  const F32 x = f32Arg(info[1], "x", total);
  const F32 gamma = f32Arg(info[2], "gamma", size_t(g.C));
  const F32 beta = f32Arg(info[3], "beta", size_t(g.C));
  const F32 mean = f32Arg(info[4], "mean", size_t(g.N * g.G));
  const F32 rstd = f32Arg(info[5], "rstd", size_t(g.N * g.G));
  const F32 dx = f32Arg(info[6], "dx", total);
  const F32 dgamma = f32Arg(info[7], "dgamma", size_t(g.C));
  const F32 dbeta = f32Arg(info[8], "dbeta", size_t(g.C));
  const int act = activationArg(info[10]);
  const int64_t sampleSize = g.S * g.C;
  const double M = double(g.S * g.Cg);
  const int T = omp_get_max_threads();
  const size_t C = size_t(g.C);
  // Per-thread partial dgamma / dbeta.
  std::vector<double> pg(size_t(T) * C, 0.0), pb(size_t(T) * C, 0.0);

  // From the per-channel sums of sample n: accumulate dgamma/dbeta and the dx coefficients.
  auto coefficients = [&](int64_t n, const double* sdz, const double* sdzx, double* accG, double* accB, float* k1,
                          float* k2, float* k3) {
    for (int64_t gi = 0; gi < g.G; ++gi) {
      const double mu = mean.data[n * g.G + gi], rs = rstd.data[n * g.G + gi];
      double A = 0, Bx = 0;
      for (int64_t c = gi * g.Cg; c < (gi + 1) * g.Cg; ++c) {
        accB[c] += sdz[c];
        accG[c] += rs * (sdzx[c] - mu * sdz[c]);
        A += gamma.data[c] * sdz[c];
        Bx += gamma.data[c] * sdzx[c];
      }
      const double D = rs * (Bx - mu * A);  // sum over the group of dxhat * xhat
      const double c2 = -rs * rs * D / M;
      const double c3 = -rs * A / M - mu * c2;
      for (int64_t c = gi * g.Cg; c < (gi + 1) * g.Cg; ++c) {
        k1[c] = float(rs * gamma.data[c]);
        k2[c] = float(c2);
        k3[c] = float(c3);
      }
    }
  };

  if (g.S == 1 && g.G == 1) {
    parallelRange(g.N, int64_t(total) * (act == 1 ? 8 : 4), [&](int64_t n0, int64_t n1) {
      const size_t t = size_t(omp_get_thread_num());
      std::vector<float> dz(C);
      // Partial sums per block of 64 rows, accumulated in double across blocks.
      for (int64_t r = n0; r < n1; r += 64) {
        const int64_t r1 = std::min(n1, r + 64);
        std::vector<float> bg(C, 0.f), bb(C, 0.f);
        rowNormBackward(dy.data + r * g.C, x.data + r * g.C, gamma.data, beta.data, mean.data + r, rstd.data + r,
                        dx.data + r * g.C, bg.data(), bb.data(), dz.data(), r1 - r, g.C, act);
        for (size_t c = 0; c < C; ++c) pg[t * C + c] += bg[c], pb[t * C + c] += bb[c];
      }
    });
  } else if (perSample(g)) {
    parallelRange(g.N, int64_t(total) * (act == 1 ? 8 : 3), [&](int64_t n0, int64_t n1) {
      const size_t t = size_t(omp_get_thread_num());
      std::vector<double> sdz(C), sdzx(C);
      std::vector<float> a(C), b(C), k1(C), k2(C), k3(C);
      for (int64_t n = n0; n < n1; ++n) {
        std::fill(sdz.begin(), sdz.end(), 0.0);
        std::fill(sdzx.begin(), sdzx.end(), 0.0);
        affineOf(g, gamma.data, beta.data, mean.data, rstd.data, n, a.data(), b.data());
        const float* xs = x.data + n * sampleSize;
        const float* ds = dy.data + n * sampleSize;
        gradMoments(ds, xs, g.S, g.C, a.data(), b.data(), act, sdz.data(), sdzx.data());
        coefficients(n, sdz.data(), sdzx.data(), pg.data() + t * C, pb.data() + t * C, k1.data(), k2.data(), k3.data());
        gradApply(ds, xs, g.S, g.C, a.data(), b.data(), act, k1.data(), k2.data(), k3.data(), dx.data + n * sampleSize);
      }
    });
  } else {
    std::vector<double> part(size_t(T) * 2 * C);
    std::vector<float> a(C), b(C), k1(C), k2(C), k3(C);
    std::vector<double> sdz(C), sdzx(C);
    for (int64_t n = 0; n < g.N; ++n) {
      const float* xs = x.data + n * sampleSize;
      const float* ds = dy.data + n * sampleSize;
      affineOf(g, gamma.data, beta.data, mean.data, rstd.data, n, a.data(), b.data());
      std::fill(part.begin(), part.end(), 0.0);
      parallelRange(g.S, sampleSize * (act == 1 ? 4 : 1), [&](int64_t s0, int64_t s1) {
        double* p = part.data() + size_t(omp_get_thread_num()) * 2 * C;
        gradMoments(ds + s0 * g.C, xs + s0 * g.C, s1 - s0, g.C, a.data(), b.data(), act, p, p + C);
      });
      std::fill(sdz.begin(), sdz.end(), 0.0);
      std::fill(sdzx.begin(), sdzx.end(), 0.0);
      for (int t = 0; t < T; ++t) {
        const double* p = part.data() + size_t(t) * 2 * C;
        for (size_t c = 0; c < C; ++c) sdz[c] += p[c], sdzx[c] += p[C + c];
      }
      coefficients(n, sdz.data(), sdzx.data(), pg.data(), pb.data(), k1.data(), k2.data(), k3.data());
      parallelRange(g.S, sampleSize * (act == 1 ? 4 : 1), [&](int64_t s0, int64_t s1) {
        gradApply(ds + s0 * g.C, xs + s0 * g.C, s1 - s0, g.C, a.data(), b.data(), act, k1.data(), k2.data(),
                  k3.data(), dx.data + n * sampleSize + s0 * g.C);
      });
    }
  }
  for (size_t c = 0; c < C; ++c) {
    double sg = 0, sb = 0;
    for (int t = 0; t < T; ++t) sg += pg[size_t(t) * C + c], sb += pb[size_t(t) * C + c];
    dgamma.data[c] = float(sg);
    dbeta.data[c] = float(sb);
  }
  return env.Undefined();
}

Napi::Value Silu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) throw Napi::TypeError::New(env, "silu: expected (x, y)");
  const F32 x = f32Any(info[0], "x");
  const F32 y = f32Arg(info[1], "y", x.length);
  const int64_t n = int64_t(x.length);
  parallelRange(n, n * 8, [&](int64_t b, int64_t e) { siluLoop(x.data + b, y.data + b, e - b); });
  return env.Undefined();
}

Napi::Value SiluGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3) throw Napi::TypeError::New(env, "siluGrad: expected (x, dy, dx)");
  const F32 x = f32Any(info[0], "x");
  const F32 dy = f32Arg(info[1], "dy", x.length);
  const F32 dx = f32Arg(info[2], "dx", x.length);
  const int64_t n = int64_t(x.length);
  parallelRange(n, n * 8, [&](int64_t b, int64_t e) { siluGradLoop(x.data + b, dy.data + b, dx.data + b, e - b); });
  return env.Undefined();
}

Napi::Value Adam(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 12) throw Napi::TypeError::New(env, "adam: expected 12 arguments");
  const F32 x = f32Any(info[0], "x");
  const F32 g = f32Arg(info[1], "g", x.length);
  const F32 m = f32Arg(info[2], "m", x.length);
  const F32 v = f32Arg(info[3], "v", x.length);
  const F32 xo = f32Arg(info[4], "xOut", x.length);
  const F32 mo = f32Arg(info[5], "mOut", x.length);
  const F32 vo = f32Arg(info[6], "vOut", x.length);
  const float b1 = info[7].As<Napi::Number>().FloatValue(), b2 = info[8].As<Napi::Number>().FloatValue();
  const float stepSize = info[9].As<Napi::Number>().FloatValue(), epsHat = info[10].As<Napi::Number>().FloatValue();
  const float decay = info[11].As<Napi::Number>().FloatValue();
  const int64_t n = int64_t(x.length);
  parallelRange(n, n * 7, [&](int64_t b, int64_t e) {
    adamLoop(x.data + b, g.data + b, m.data + b, v.data + b, xo.data + b, mo.data + b, vo.data + b, e - b, b1, b2, stepSize,
             epsHat, decay);
  });
  return env.Undefined();
}

}  // namespace tfn
