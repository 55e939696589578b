/**
 * Eigen-decomposition of a real symmetric matrix in Float64: Householder reduction to tridiagonal
 * form followed by the implicit QL algorithm with Wilkinson-type shifts (the EISPACK tred2/tql2
 * pair, as in JAMA), reorganised for row-major storage so that every inner loop is contiguous.
 *
 * Cost: about (2/3) n^3 multiply-adds for the reduction, O(n^2) for the eigenvalues; with vectors,
 * another (2/3) n^3 to form Q and about 3 n^3 for the QL rotations. Internal module.
 */

/** Parameters of {@link symmetricEigen}. */
export interface SymmetricEigenParams {
  /** Row-major `n x n`; only the lower triangle (column <= row) is read. Not modified. */
  readonly matrix: Float64Array;
  readonly n: number;
  /** Also compute eigenvectors (default false). */
  readonly computeVectors?: boolean;
}

/** Result of {@link symmetricEigen}. */
export interface SymmetricEigenResult {
  /** Eigenvalues in ascending order. */
  readonly values: Float64Array;
  /** Row-major `n x n` with eigenvector j in column j (orthonormal), when requested. */
  readonly vectors?: Float64Array;
}

/** A = V diag(values) V^T; see the module notes. */
export function symmetricEigen(params: SymmetricEigenParams): SymmetricEigenResult {
  const { matrix, n } = params;
  const wantVectors = params.computeVectors ?? false;
  if (!Number.isInteger(n) || n < 1 || matrix.length < n * n) {
    throw new RangeError(`symmetricEigen: need a ${n}x${n} matrix (${n * n} values), got ${matrix.length} values`);
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      if (!Number.isFinite(matrix[i * n + j])) throw new RangeError(`symmetricEigen: matrix has a non-finite value at [${i},${j}]`);
    }
  }
  const a = Float64Array.from(matrix.subarray(0, n * n));
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const betas = new Float64Array(n);
  tridiagonalize(a, n, d, e, betas);
  const zt = wantVectors ? accumulateQt(a, n, betas) : null;
  tql2(d, e, n, zt);
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[x] - d[y]);
  const values = Float64Array.from(order, (i) => d[i]);
  if (!zt) return { values };
  const vectors = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const row = order[j] * n;
    for (let r = 0; r < n; r++) vectors[r * n + j] = zt[row + r];
  }
  return { values, vectors };
}

/**
 * Householder tridiagonalisation using the lower triangle of `a`. Afterwards d is the diagonal,
 * e[k] couples k and k+1 (e[n-1] = 0), and column k of `a` below the diagonal holds the
 * Householder vector v_k of H_k = I - betas[k] v_k v_k^T (acting on indices k+1..n-1).
 *
 * Step k replaces the trailing block B by H_k B H_k = B - v w^T - w v^T. That rank-2 update is
 * deferred and fused with the next step's product B v (one pass over the trailing triangle per
 * step instead of two, which roughly halves the memory traffic that bounds this loop).
 */
function tridiagonalize(a: Float64Array, n: number, d: Float64Array, e: Float64Array, betas: Float64Array): void {
  // Vectors use global indices; the pending update (pv, pw) applies to rows/columns >= k.
  let pv = new Float64Array(n);
  let pw = new Float64Array(n);
  let v = new Float64Array(n);
  let p = new Float64Array(n);
  let pending = false;
  for (let k = 0; k < n - 2; k++) {
    const off = k + 1;
    if (pending) {
      const vk = pv[k];
      const wk = pw[k];
      for (let i = k; i < n; i++) a[i * n + k] -= pv[i] * wk + pw[i] * vk;
    }
    d[k] = a[k * n + k];
    let scale = 0;
    for (let i = off; i < n; i++) scale += Math.abs(a[i * n + k]);
    let beta = 0;
    v.fill(0);
    if (scale !== 0) {
      let norm2 = 0;
      for (let i = off; i < n; i++) {
        const x = a[i * n + k] / scale;
        v[i] = x;
        norm2 += x * x;
      }
      const norm = Math.sqrt(norm2);
      const alpha = v[off] > 0 ? -norm : norm;
      v[off] -= alpha;
      let vtv = 0;
      for (let i = off; i < n; i++) vtv += v[i] * v[i];
      beta = 2 / vtv;
      e[k] = alpha * scale;
      for (let i = off; i < n; i++) a[i * n + k] = v[i];
    } else {
      e[k] = 0;
    }
    betas[k] = beta;
    // One pass over the trailing lower triangle: apply the pending update, accumulate p = B v.
    p.fill(0);
    for (let i = off; i < n; i++) {
      const row = i * n;
      const vi = v[i];
      let s = 0;
      if (pending) {
        const pvi = pv[i];
        const pwi = pw[i];
        for (let j = off; j < i; j++) {
          const aij = a[row + j] - (pvi * pw[j] + pwi * pv[j]);
          a[row + j] = aij;
          s += aij * v[j];
          p[j] += aij * vi;
        }
        const aii = a[row + i] - 2 * pvi * pwi;
        a[row + i] = aii;
        p[i] += s + aii * vi;
      } else {
        for (let j = off; j < i; j++) {
          const aij = a[row + j];
          s += aij * v[j];
          p[j] += aij * vi;
        }
        p[i] += s + a[row + i] * vi;
      }
    }
    if (beta === 0) {
      pending = false;
      continue;
    }
    let pvDot = 0;
    for (let i = off; i < n; i++) {
      p[i] *= beta;
      pvDot += p[i] * v[i];
    }
    const kk = 0.5 * beta * pvDot;
    for (let i = off; i < n; i++) p[i] -= kk * v[i]; // p is now w
    // (v, w) becomes the pending update; recycle the old buffers.
    [pv, v] = [v, pv];
    [pw, p] = [p, pw];
    pending = true;
  }
  if (pending) {
    for (let i = Math.max(0, n - 2); i < n; i++) {
      for (let j = Math.max(0, n - 2); j <= i; j++) a[i * n + j] -= pv[i] * pw[j] + pw[i] * pv[j];
    }
  }
  if (n >= 2) {
    d[n - 2] = a[(n - 2) * n + (n - 2)];
    e[n - 2] = a[(n - 1) * n + (n - 2)];
  }
  d[n - 1] = a[(n - 1) * n + (n - 1)];
  e[n - 1] = 0;
}

/** Q^T = H_{n-3} ... H_0 (so row j of the result is column j of Q), by backward accumulation. */
function accumulateQt(a: Float64Array, n: number, betas: Float64Array): Float64Array {
  const zt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) zt[i * n + i] = 1;
  const v = new Float64Array(n);
  for (let k = n - 3; k >= 0; k--) {
    const beta = betas[k];
    if (beta === 0) continue;
    const off = k + 1;
    const m = n - off;
    for (let i = 0; i < m; i++) v[i] = a[(off + i) * n + k];
    // ZT <- ZT H_k on rows/columns off..n-1.
    for (let r = off; r < n; r++) {
      const row = r * n + off;
      let s = 0;
      for (let j = 0; j < m; j++) s += zt[row + j] * v[j];
      s *= beta;
      if (s !== 0) for (let j = 0; j < m; j++) zt[row + j] -= s * v[j];
    }
  }
  return zt;
}

/**
 * Implicit QL on the tridiagonal (d, e), e[i] coupling i and i+1. Eigenvalues are left in d
 * (unsorted); rotations are applied to rows of `zt` (= columns of the eigenvector matrix).
 */
function tql2(d: Float64Array, e: Float64Array, n: number, zt: Float64Array | null): void {
  const eps = 2 ** -52;
  let f = 0;
  let tst1 = 0;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 100) throw new Error(`symmetricEigen: QL did not converge for eigenvalue ${l}`);
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          if (zt) {
            const ri = i * n;
            const ri1 = ri + n;
            for (let k = 0; k < n; k++) {
              const hk = zt[ri1 + k];
              const zk = zt[ri + k];
              zt[ri1 + k] = s * zk + c * hk;
              zt[ri + k] = c * zk - s * hk;
            }
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}
