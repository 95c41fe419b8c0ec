/**
 * L2-penalised logistic regression fitted by Newton's method (iteratively reweighted least squares), in plain
 * TypeScript. Rows are sparse (a few numeric features plus one-hot indicators), so a fit on 10,000 rows with ~60
 * coefficients takes milliseconds. Pure: no database, no printing.
 */

/** One row: the non-zero features (indices into the coefficient vector and their values). */
export interface SparseRow {
  idx: number[];
  val: number[];
}

export interface LogisticProblem {
  /** Number of coefficients. */
  dim: number;
  rows: SparseRow[];
  /** 0/1 outcome per row. */
  y: ArrayLike<number>;
  /** A fixed term added to each row's linear predictor (e.g. the logit of a prior estimate); default 0. */
  offset?: ArrayLike<number>;
  /** Ridge penalty per coefficient (lambda_j * w_j^2 / 2); a number applies to all. */
  l2: number | ArrayLike<number>;
}

export interface LogisticFit {
  w: Float64Array;
  iterations: number;
  converged: boolean;
  /** Penalised negative log-likelihood at w. */
  loss: number;
}

export const sigmoid = (z: number): number => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/** logit(p) with p clipped to [eps, 1 - eps]. */
export const logit = (p: number, eps = 1e-4): number => {
  const q = Math.min(1 - eps, Math.max(eps, p));
  return Math.log(q / (1 - q));
};

/** The linear predictor of one row: offset + x . w. */
export function linear(row: SparseRow, w: ArrayLike<number>, offset = 0): number {
  let z = offset;
  for (let k = 0; k < row.idx.length; k++) z += w[row.idx[k]!]! * row.val[k]!;
  return z;
}

/**
 * Minimises sum_i [log(1 + e^{z_i}) - y_i z_i] + sum_j lambda_j w_j^2 / 2, z_i = offset_i + x_i . w, by Newton steps
 * (with step halving when a step does not lower the loss). Every lambda_j must be > 0 so the Hessian is positive
 * definite whatever the data (separable classes, unused indicators).
 */
export function fitLogistic(p: LogisticProblem, opts: { maxIter?: number; tol?: number } = {}): LogisticFit {
  const d = p.dim;
  const n = p.rows.length;
  const maxIter = opts.maxIter ?? 30;
  const tol = opts.tol ?? 1e-8;
  const lam = new Float64Array(d);
  for (let j = 0; j < d; j++) lam[j] = typeof p.l2 === 'number' ? p.l2 : p.l2[j]!;
  if (lam.some((l) => !(l > 0))) throw new Error('fitLogistic: every l2 penalty must be > 0');
  if (p.y.length !== n) throw new Error(`fitLogistic: ${n} rows but ${p.y.length} outcomes`);
  const off = (i: number): number => (p.offset ? p.offset[i]! : 0);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(off(i)) || !p.rows[i]!.val.every(Number.isFinite)) throw new Error(`fitLogistic: row ${i} has a value that is not a finite number`);
  }

  const lossAt = (w: Float64Array): number => {
    let l = 0;
    for (let i = 0; i < n; i++) {
      const z = linear(p.rows[i]!, w, off(i));
      // log(1 + e^z) computed stably.
      l += (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))) - p.y[i]! * z;
    }
    for (let j = 0; j < d; j++) l += (lam[j]! * w[j]! * w[j]!) / 2;
    return l;
  };

  let w = new Float64Array(d);
  let loss = lossAt(w);
  let it = 0;
  let converged = false;
  const g = new Float64Array(d);
  const H = new Float64Array(d * d);
  for (; it < maxIter; it++) {
    g.fill(0);
    H.fill(0);
    for (let i = 0; i < n; i++) {
      const r = p.rows[i]!;
      const mu = sigmoid(linear(r, w, off(i)));
      const resid = mu - p.y[i]!;
      const wt = Math.max(mu * (1 - mu), 1e-12);
      for (let a = 0; a < r.idx.length; a++) {
        const ja = r.idx[a]!;
        const va = r.val[a]!;
        g[ja]! += resid * va;
        for (let b = 0; b < r.idx.length; b++) H[ja * d + r.idx[b]!]! += wt * va * r.val[b]!;
      }
    }
    for (let j = 0; j < d; j++) {
      g[j]! += lam[j]! * w[j]!;
      H[j * d + j]! += lam[j]!;
    }
    const step = solveCholesky(H, g, d);
    let t = 1;
    let next = new Float64Array(d);
    let nextLoss = Infinity;
    for (let half = 0; half < 30; half++) {
      for (let j = 0; j < d; j++) next[j] = w[j]! - t * step[j]!;
      nextLoss = lossAt(next);
      if (nextLoss <= loss + 1e-12) break;
      t /= 2;
    }
    if (!(nextLoss <= loss + 1e-12)) {
      converged = true; // no step lowers the loss: at the optimum up to rounding
      break;
    }
    const dec = loss - nextLoss;
    w = next;
    loss = nextLoss;
    if (dec <= tol * Math.max(1, Math.abs(loss))) {
      converged = true;
      it++;
      break;
    }
  }
  return { w, iterations: it, converged, loss };
}

/** Solves A x = b for a symmetric positive definite A (row-major d x d) by Cholesky; A is not modified. */
export function solveCholesky(A: Float64Array, b: ArrayLike<number>, d: number): Float64Array {
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * d + j]!;
      for (let k = 0; k < j; k++) s -= L[i * d + k]! * L[j * d + k]!;
      if (i === j) {
        if (!(s > 0)) throw new Error('solveCholesky: matrix is not positive definite');
        L[i * d + i] = Math.sqrt(s);
      } else L[i * d + j] = s / L[j * d + j]!;
    }
  }
  const y = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= L[i * d + k]! * y[k]!;
    y[i] = s / L[i * d + i]!;
  }
  const x = new Float64Array(d);
  for (let i = d - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < d; k++) s -= L[k * d + i]! * x[k]!;
    x[i] = s / L[i * d + i]!;
  }
  return x;
}
