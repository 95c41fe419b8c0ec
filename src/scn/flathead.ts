/**
 * The head for training, written out: every parameter in one flat Float32Array, a forward pass and its analytic
 * backward (the gradient of any loss on the head's outputs), with the few large products on tfjs and the rest in
 * plain loops. The same network as test/oracle/head.ts's Head (the tfjs autograd definition the tests check this against):
 *   f = dropout(ReLU(x W1 + b1))  (hidden > 0)  or  f = dropout(x)  (hidden 0)
 *   out = f W2 + b2, W2 = [Wc | Wa]: out[:, 0..C-1] = logits z, out[:, C] = Eq. 1's pre-activation (attention)
 * All products are plain matMuls of row-major operands: a transposed operand is laid out by the loop that fills it
 * (the batch's features, gathered both ways; the small [n, K] output gradient), never by a transposed matMul
 * (13-20x slower on wasm, ../shared/notes/tfjs-in-node.md) nor a transpose op.
 */
import { tf } from '../features/backend.js';
import type { Rng } from './prng.js';

export interface HeadShape {
  inputDim: number;
  /** Units of the hidden layer; 0 for a linear head on the embeddings. */
  hidden: number;
  classes: number;
  /** Whether the head has SCN's importance branch. */
  attention: boolean;
}

/** Offsets of the parameters in the flat buffer: [W1 (inputDim x hidden) | b1 (hidden) | W2 (F x K) | b2 (K)]. */
export interface HeadLayout {
  D: number;
  H: number;
  /** Width of the features f (H, or D for a linear head). */
  F: number;
  C: number;
  /** Output columns: C logits, plus one for the importance branch. */
  K: number;
  W1: number;
  b1: number;
  W2: number;
  b2: number;
  size: number;
}

export function headLayout(s: HeadShape): HeadLayout {
  const D = s.inputDim;
  const H = s.hidden;
  const F = H > 0 ? H : D;
  const K = s.classes + (s.attention ? 1 : 0);
  const W1 = 0;
  const b1 = D * H;
  const W2 = b1 + H;
  const b2 = W2 + F * K;
  return { D, H, F, C: s.classes, K, W1, b1, W2, b2, size: b2 + K };
}

/**
 * Glorot-uniform weights from the run's generator (reproducible on any backend), biases zero, drawn W1, Wc, Wa,
 * each row-major (the tests' tfjs Head, test/oracle/head.ts, lays these same values out as variables).
 */
export function initHead(s: HeadShape, rng: Rng): Float32Array {
  const L = headLayout(s);
  const theta = new Float32Array(L.size);
  const glorot = (rows: number, cols: number, put: (i: number, j: number, v: number) => void): void => {
    const limit = Math.sqrt(6 / (rows + cols));
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) put(i, j, (rng.next() * 2 - 1) * limit);
  };
  if (L.H > 0) glorot(L.D, L.H, (i, j, v) => (theta[L.W1 + i * L.H + j] = v));
  glorot(L.F, L.C, (i, j, v) => (theta[L.W2 + i * L.K + j] = v));
  if (s.attention) glorot(L.F, 1, (i, _j, v) => (theta[L.W2 + i * L.K + L.C] = v));
  return theta;
}

/** The values of a tensor made by `make` (in a tidy), copied out; the tensor is disposed. */
function values(make: () => tf.Tensor): Float32Array {
  // dataSync outside the tidy: a tidy that returns a typed array walks every element looking for tensors.
  const t = tf.tidy(make);
  const v = t.dataSync() as Float32Array;
  t.dispose();
  return v;
}

/** out = x·w for row-major x [n, k] and w [k, m]: one tfjs matMul, result copied out. */
function matMul(x: Float32Array, n: number, k: number, w: Float32Array, m: number): Float32Array {
  return values(() => tf.matMul(tf.tensor2d(x, [n, k]), tf.tensor2d(w, [k, m])));
}

/** out = relu(x·w + b) for row-major x [n, k], w [k, m], b [m]: one fused tfjs matMul. */
function matMulBiasRelu(x: Float32Array, n: number, k: number, w: Float32Array, b: Float32Array, m: number): Float32Array {
  return values(() => tf.fused.matMul({ a: tf.tensor2d(x, [n, k]), b: tf.tensor2d(w, [k, m]), bias: tf.tensor1d(b), activation: 'relu' }));
}

/** Adds the bias b [m] to every row of out [n, m] in place. */
function addRows(out: Float32Array, b: Float32Array, n: number, m: number): void {
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out[i * m + j]! += b[j]!;
}

/** Column sums of a [n, m] into g (overwritten). */
function columnSums(a: Float32Array, n: number, m: number, g: Float32Array): void {
  g.fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) g[j]! += a[i * m + j]!;
}

/** Evaluation-mode outputs (no dropout) of rows X [n, D]: out [n, K] (logits, then Eq. 1's pre-activation). */
export function headOutputs(theta: Float32Array, L: HeadLayout, X: Float32Array, n: number): Float32Array {
  const f = L.H > 0 ? matMulBiasRelu(X, n, L.D, theta.subarray(L.W1, L.b1), theta.subarray(L.b1, L.W2), L.H) : X;
  const out = matMul(f, n, L.F, theta.subarray(L.W2, L.b2), L.K);
  addRows(out, theta.subarray(L.b2, L.size), n, L.K);
  return out;
}

/** One training batch's inputs: the rows' features in both layouts and the dropout mask. */
export interface HeadBatch {
  n: number;
  /** Features [n, D], row-major. */
  X: Float32Array;
  /** The same features transposed, [D, n] (the layout dW1 = X^T dh needs); may be null for a linear head. */
  XT: Float32Array | null;
  /** Dropout mask on f, [n, F], 0 or 1/(1-p); null for no dropout. */
  mask: Float32Array | null;
}

/**
 * Training-mode forward pass, then the backward pass of the loss whose gradient `lossGrad` returns: given the
 * outputs out [n, K] it returns dL/dout [n, K]. Writes dL/dtheta into `grad` (same layout as theta).
 */
export function headGradients(
  theta: Float32Array,
  L: HeadLayout,
  b: HeadBatch,
  lossGrad: (out: Float32Array) => Float32Array,
  grad: Float32Array,
): void {
  const { n, mask } = b;
  const { D, H, F, K } = L;
  if (H > 0 && !b.XT) throw new Error('headGradients: a head with a hidden layer needs the transposed features XT');
  // Forward: h = relu(X W1 + b1); f = h * mask (dropout); out = f W2 + b2.
  const h = H > 0 ? matMulBiasRelu(b.X, n, D, theta.subarray(L.W1, L.b1), theta.subarray(L.b1, L.W2), H) : b.X;
  let f = h;
  if (mask) {
    f = new Float32Array(n * F);
    for (let i = 0; i < f.length; i++) f[i] = h[i]! * mask[i]!;
  }
  const out = matMul(f, n, F, theta.subarray(L.W2, L.b2), K);
  addRows(out, theta.subarray(L.b2, L.size), n, K);
  const dout = lossGrad(out);
  // Backward: dW2 = f^T dout, computed as (dout^T f)^T: only the small dout [n, K] is transposed. db2 = sum_i dout.
  const doutT = new Float32Array(K * n);
  for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) doutT[k * n + i] = dout[i * K + k]!;
  const dW2T = matMul(doutT, K, n, f, F);
  for (let j = 0; j < F; j++) for (let k = 0; k < K; k++) grad[L.W2 + j * K + k] = dW2T[k * F + j]!;
  columnSums(dout, n, K, grad.subarray(L.b2, L.size));
  if (H === 0) return;
  // df = dout W2^T; dh = df * mask * [h > 0]; dW1 = X^T dh, db1 = sum_i dh.
  const W2T = new Float32Array(K * F);
  for (let j = 0; j < F; j++) for (let k = 0; k < K; k++) W2T[k * F + j] = theta[L.W2 + j * K + k]!;
  const dh = matMul(dout, n, K, W2T, F);
  // Branch-free (the ReLU's gate is as likely open as shut, a branch would mispredict half the time).
  if (mask) for (let i = 0; i < dh.length; i++) dh[i] = dh[i]! * mask[i]! * +(h[i]! > 0);
  else for (let i = 0; i < dh.length; i++) dh[i] = dh[i]! * +(h[i]! > 0);
  grad.set(matMul(b.XT!, D, n, dh, H), L.W1);
  columnSums(dh, n, H, grad.subarray(L.b1, L.W2));
}

/**
 * Adam (Kingma & Ba) with L2 weight decay added to the gradient, as torch.optim.Adam(weight_decay=...): one fused
 * update over the flat parameter buffer.
 */
export class FlatAdam {
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private t = 0;

  constructor(
    size: number,
    private readonly opts: { weightDecay: number; beta1?: number; beta2?: number; eps?: number },
  ) {
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
  }

  /** theta -= lr * mhat / (sqrt(vhat) + eps), with g = grad + weightDecay * theta. */
  step(theta: Float32Array, grad: Float32Array, lr: number): void {
    const b1 = this.opts.beta1 ?? 0.9;
    const b2 = this.opts.beta2 ?? 0.999;
    const eps = this.opts.eps ?? 1e-8;
    const wd = this.opts.weightDecay;
    this.t++;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    const { m, v } = this;
    // mhat = m / c1 and sqrt(vhat) = sqrt(v) / sqrt(c2), with the per-step constants hoisted out of the loop
    // (one square root and one division per parameter instead of three divisions).
    const step = lr / c1;
    const root = 1 / Math.sqrt(c2);
    for (let i = 0; i < theta.length; i++) {
      const th = theta[i]!;
      const g = grad[i]! + wd * th;
      const mi = (m[i] = b1 * m[i]! + (1 - b1) * g);
      const vi = (v[i] = b2 * v[i]! + (1 - b2) * g * g);
      theta[i] = th - (step * mi) / (Math.sqrt(vi) * root + eps);
    }
  }
}
