/**
 * The parts of the Self-Cure Network (Wang et al., CVPR 2020, arXiv 2002.10392), on one mini-batch: importance
 * (Eq. 1), logit-weighted cross-entropy (Eq. 2), rank regularization (Eq. 3), relabeling (Eq. 4).
 * Training runs the closed-form losses with their gradients (scnObjective, crossEntropyObjective); the tfjs
 * autograd forms of Eq. 1-3, the tests' gradient oracle, are in test/oracle/.
 */
import { argmax } from './argmax.js';

export interface RankGroups {
  /** 1 for the high-importance group (top beta fraction of alpha), else 0; length N. */
  high: Float32Array;
  /** 1 for the low-importance group (the rest), else 0. */
  low: Float32Array;
  nHigh: number;
  nLow: number;
  /** mean_H - mean_L of the given alpha values. */
  gap: number;
}

/**
 * Splits a batch by importance: sort alpha descending, the first M = floor(beta * N) (clamped to [1, N-1]) are the
 * high group, the rest the low group. Ties keep batch order (the earlier sample goes high), so the split is
 * deterministic. Needs N >= 2.
 */
export function rankGroups(alpha: ArrayLike<number>, beta: number, pinned?: ArrayLike<number>): RankGroups {
  const N = alpha.length;
  if (N < 2) throw new Error('rankGroups: need at least 2 samples');
  // Pinned samples (reviewed labels, trusted) rank above every other one: always in the high group.
  let nPinned = 0;
  if (pinned) for (let i = 0; i < N; i++) nPinned += pinned[i] ? 1 : 0;
  const M = Math.min(N - 1, Math.max(1, Math.floor(beta * N), nPinned));
  const pin = (i: number): number => (pinned?.[i] ? 1 : 0);
  const order = Array.from({ length: N }, (_, i) => i).sort((a, b) => pin(b) - pin(a) || alpha[b]! - alpha[a]! || a - b);
  const high = new Float32Array(N);
  const low = new Float32Array(N);
  let sumH = 0;
  let sumL = 0;
  order.forEach((i, rank) => {
    if (rank < M) {
      high[i] = 1;
      sumH += alpha[i]!;
    } else {
      low[i] = 1;
      sumL += alpha[i]!;
    }
  });
  return { high, low, nHigh: M, nLow: N - M, gap: sumH / M - sumL / (N - M) };
}

/**
 * Eq. 4: a sample whose P_max - P_given > delta2 gets label argmax P, where P is the softmax of the weighted logits
 * (row-major [N*C]). Only samples with eligible[i] = 1 are considered (the low-importance group in the paper; every
 * sample in the authors' code). Returns the new labels (a copy) and how many changed.
 */
export function relabel(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  eligible: ArrayLike<number> | null,
  delta2: number,
  classes: number,
): { labels: Int32Array; changed: number } {
  const out = Int32Array.from(labels as ArrayLike<number>);
  let changed = 0;
  for (let i = 0; i < out.length; i++) {
    if (eligible && !eligible[i]) continue;
    const top = argmax(probs, i, classes);
    const pMax = probs[i * classes + top]!;
    const pGiven = probs[i * classes + out[i]!]!;
    if (top !== out[i] && pMax - pGiven > delta2) {
      out[i] = top;
      changed++;
    }
  }
  return { labels: out, changed };
}

/**
 * A run's label proposals: Eq. 4 applied once to the rows with eligible[i] = 1 (the training images) with the final
 * classifier's probabilities; proposed[i] is the class to relabel row i to, -1 for none. With delta2 = -Infinity the
 * rule proposes the predicted class whenever it differs from the given label.
 */
export function proposeLabels(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  eligible: ArrayLike<number>,
  delta2: number,
  classes: number,
): Int32Array {
  const r = relabel(probs, labels, eligible, delta2, classes);
  return r.labels.map((y, i) => (y !== labels[i] ? y : -1));
}

/**
 * Eq. 1 on the head's outputs (row-major [N, C + 1], column C the pre-activation f·Wa + ba): alpha per sample.
 */
export function importanceOf(out: ArrayLike<number>, classes: number): Float32Array {
  const K = classes + 1;
  const n = out.length / K;
  const alpha = new Float32Array(n);
  for (let i = 0; i < n; i++) alpha[i] = attentionWeight(out[i * K + classes]!);
  return alpha;
}

/** Eq. 1 for one sample: alpha = sigmoid(a), a = f·Wa + ba. */
export const attentionWeight = (a: number): number => 1 / (1 + Math.exp(-a));

/** A batch's loss, its gradient with respect to the head's outputs, and the softmax the relabeling reads. */
export interface Objective {
  /** Mean loss over the batch. */
  loss: number;
  /** dL/dout, the layout of the outputs. */
  dout: Float32Array;
  /** Softmax of the (weighted, for scn) logits, row-major [N, C]. */
  probs: Float32Array;
}

/** Softmax of row v[o .. o+C) scaled by s into p[q ..]; returns log of the normaliser minus the max (for the loss). */
export function softmaxRow(v: ArrayLike<number>, o: number, s: number, C: number, p: Float32Array, q: number): number {
  let mx = -Infinity;
  for (let c = 0; c < C; c++) mx = Math.max(mx, s * v[o + c]!);
  let sum = 0;
  for (let c = 0; c < C; c++) sum += Math.exp(s * v[o + c]! - mx);
  for (let c = 0; c < C; c++) p[q + c] = Math.exp(s * v[o + c]! - mx) / sum;
  return mx + Math.log(sum);
}

/**
 * The scn loss gamma * L_RR (Eq. 3) + (1 - gamma) * L_WCE (Eq. 2) of one batch, closed form, with its gradient:
 * out [N, C + 1] (logits z, then the pre-activation a of alpha = sigmoid(a)), labels y, groups from rankGroups on
 * alpha. With s_i = alpha_i z_i and p_i = softmax(s_i): dL/ds_i = (1 - gamma) (p_i - onehot(y_i)) / N,
 * dL/dz_i = alpha_i dL/ds_i, dL/dalpha_i = z_i · dL/ds_i + gamma dL_RR/dalpha_i (-1/M in the high group, +1/(N-M)
 * in the low group while the margin is unmet), dL/da_i = dL/dalpha_i alpha_i (1 - alpha_i).
 */
export function scnObjective(
  out: ArrayLike<number>,
  classes: number,
  labels: ArrayLike<number>,
  groups: RankGroups,
  o: { delta1: number; gamma: number },
): Objective {
  const C = classes;
  const K = C + 1;
  const n = labels.length;
  const probs = new Float32Array(n * C);
  const dout = new Float32Array(n * K);
  const rr = Math.max(0, o.delta1 - groups.gap);
  const w = (1 - o.gamma) / n;
  let wce = 0;
  for (let i = 0; i < n; i++) {
    const alpha = attentionWeight(out[i * K + C]!);
    const y = labels[i]!;
    const lse = softmaxRow(out, i * K, alpha, C, probs, i * C);
    wce += lse - alpha * out[i * K + y]!;
    let dAlpha = 0;
    for (let c = 0; c < C; c++) {
      const ds = w * (probs[i * C + c]! - (c === y ? 1 : 0));
      dout[i * K + c] = alpha * ds;
      dAlpha += out[i * K + c]! * ds;
    }
    if (rr > 0) dAlpha += o.gamma * (groups.low[i]! / groups.nLow - groups.high[i]! / groups.nHigh);
    dout[i * K + C] = dAlpha * alpha * (1 - alpha);
  }
  return { loss: o.gamma * rr + (1 - o.gamma) * (wce / n), dout, probs };
}

/** Plain softmax cross-entropy (the baseline) of one batch, closed form: out = logits [N, C], dL/dz = (p - onehot(y)) / N. */
export function crossEntropyObjective(out: ArrayLike<number>, classes: number, labels: ArrayLike<number>): Objective {
  const C = classes;
  const n = labels.length;
  const probs = new Float32Array(n * C);
  const dout = new Float32Array(n * C);
  let ce = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    ce += softmaxRow(out, i * C, 1, C, probs, i * C) - out[i * C + y]!;
    for (let c = 0; c < C; c++) dout[i * C + c] = (probs[i * C + c]! - (c === y ? 1 : 0)) / n;
  }
  return { loss: ce / n, dout, probs };
}
