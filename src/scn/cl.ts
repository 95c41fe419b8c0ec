/**
 * Confident learning (Northcutt, Jiang & Chuang, JAIR 2021), the method of cleanlab's find_label_issues with its
 * default filter (prune_by_noise_rate): out-of-fold predicted probabilities from the ce head, the calibrated
 * confident joint, then per (given i, true j) pair prune the round(Q[i][j]) examples of class i with the largest
 * margin p_j - p_i; examples whose predicted class is their given label are never flagged.
 */
import { argmax } from './argmax.js';
import type { HeadEngine } from './engine.js';
import { permutation, Rng } from './prng.js';
import { standardize, trainHead, type EpochStats, type HeadOptions, type TrainData } from './train.js';

/** Per-class thresholds t_j = mean p_j over the examples labelled j (the classes' average self-confidence). */
export function classThresholds(labels: ArrayLike<number>, probs: ArrayLike<number>, C: number): Float64Array {
  const sum = new Float64Array(C);
  const count = new Float64Array(C);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    sum[y]! += probs[i * C + y]!;
    count[y]!++;
  }
  return Float64Array.from(sum, (s, j) => (count[j]! > 0 ? s / count[j]! : Infinity));
}

/**
 * The confident joint C[i][j]: examples labelled i whose probability reaches the threshold of class j (the largest
 * such p_j when several do), then calibrated so that each row sums to the count of label i.
 */
export function confidentJoint(labels: ArrayLike<number>, probs: ArrayLike<number>, C: number): number[][] {
  const t = classThresholds(labels, probs, C);
  const cj = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  const n = new Array<number>(C).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    n[y]!++;
    let best = -1;
    for (let j = 0; j < C; j++) {
      const p = probs[i * C + j]!;
      if (p >= t[j]! - 1e-6 && (best < 0 || p > probs[i * C + best]!)) best = j;
    }
    if (best >= 0) cj[y]![best]!++;
  }
  // Calibrate: rows sum to the label counts (cleanlab's calibrate_confident_joint).
  return cj.map((row, i) => {
    const s = row.reduce((a, b) => a + b, 0);
    return s > 0 ? row.map((v) => (v * n[i]!) / s) : row.map((_, j) => (j === i ? n[i]! : 0));
  });
}

/** Flags label issues (prune by noise rate). Returns a 0/1 mask over the examples. */
export function findLabelIssues(labels: ArrayLike<number>, probs: ArrayLike<number>, C: number): Uint8Array {
  const N = labels.length;
  const cj = confidentJoint(labels, probs, C);
  const byClass: number[][] = Array.from({ length: C }, () => []);
  for (let i = 0; i < N; i++) byClass[labels[i]!]!.push(i);
  const mask = new Uint8Array(N);
  for (let i = 0; i < C; i++) {
    const members = byClass[i]!;
    // Keep at least one example per class (cleanlab's min_examples_per_class = 1).
    const offDiag = cj[i]!.reduce((s, v, j) => (j === i ? s : s + Math.round(v)), 0);
    const room = Math.max(0, members.length - 1);
    const scale = offDiag > room ? room / offDiag : 1;
    for (let j = 0; j < C; j++) {
      if (j === i) continue;
      const num = Math.floor(Math.round(cj[i]![j]!) * scale);
      if (num <= 0) continue;
      const ranked = members
        .map((e) => ({ e, margin: probs[e * C + j]! - probs[e * C + i]! }))
        .sort((a, b) => b.margin - a.margin || a.e - b.e);
      for (let k = 0; k < Math.min(num, ranked.length); k++) mask[ranked[k]!.e] = 1;
    }
  }
  // Never flag an example whose predicted class is its given label.
  for (let e = 0; e < N; e++) {
    if (mask[e] && argmax(probs, e, C) === labels[e]) mask[e] = 0;
  }
  return mask;
}

/** Stratified k-fold assignment of `rows` (per class, a seeded shuffle dealt round-robin). */
export function stratifiedFolds(rows: ArrayLike<number>, labels: ArrayLike<number>, k: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  const fold = new Int32Array(rows.length);
  const byClass = new Map<number, number[]>();
  for (let p = 0; p < rows.length; p++) {
    const y = labels[rows[p]!]!;
    let list = byClass.get(y);
    if (!list) byClass.set(y, (list = []));
    list.push(p);
  }
  let offset = 0;
  for (const y of [...byClass.keys()].sort((a, b) => a - b)) {
    const list = byClass.get(y)!;
    const perm = permutation(list.length, rng);
    perm.forEach((q, r) => (fold[list[q]!] = (offset + r) % k));
    offset += list.length;
  }
  return fold;
}

export interface ClResult {
  /** Per row: out-of-fold probabilities for training rows, the folds' average for the others; [N, C]. */
  probs: Float32Array;
  /** Per row: 1 when flagged as a label issue (training rows only). */
  issues: Uint8Array;
  /** Per-epoch stats of each fold's ce head, in order. */
  epochs: EpochStats[];
}

/** Confident learning on `data`: k ce heads, out-of-fold probabilities, label issues among the training rows. */
export async function confidentLearning(
  data: TrainData,
  head: HeadOptions,
  folds: number,
  onFold?: (fold: number, stats: EpochStats) => void,
  signal?: AbortSignal,
  engine?: HeadEngine,
): Promise<ClResult> {
  const { classes: C } = data;
  const N = data.labels.length;
  const train = Int32Array.from(data.train);
  if (folds < 2 || train.length < folds) throw new Error(`confidentLearning: need at least ${folds} training rows and 2 folds`);
  const fold = stratifiedFolds(train, data.labels, folds, head.seed);
  const probs = new Float32Array(N * C);
  const isTrain = new Uint8Array(N);
  for (const r of train) isTrain[r] = 1;
  const others = Int32Array.from({ length: N }, (_, i) => i).filter((i) => !isTrain[i]);
  const epochs: EpochStats[] = [];
  // The features are standardised once on all training rows; each fold's head then sees them as they are.
  const features = head.standardize ? standardize(data.features, data.dim, train) : data.features;
  for (let f = 0; f < folds; f++) {
    const fit = train.filter((_, p) => fold[p] !== f);
    const held = train.filter((_, p) => fold[p] === f);
    const r = await trainHead(
      { ...data, features, train: fit, valid: data.valid },
      { ...head, standardize: false, method: 'ce', seed: head.seed + 1000 * (f + 1), engine },
      (s) => {
        epochs.push(s);
        onFold?.(f, s);
      },
      signal,
    );
    for (const row of held) probs.set(r.probs.subarray(row * C, row * C + C), row * C);
    for (const row of others) for (let c = 0; c < C; c++) probs[row * C + c]! += r.probs[row * C + c]! / folds;
  }
  const trainLabels = Int32Array.from(train, (r) => data.labels[r]!);
  const trainProbs = new Float32Array(train.length * C);
  train.forEach((r, p) => trainProbs.set(probs.subarray(r * C, r * C + C), p * C));
  const mask = findLabelIssues(trainLabels, trainProbs, C);
  const issues = new Uint8Array(N);
  train.forEach((r, p) => (issues[r] = mask[p]!));
  return { probs, issues, epochs };
}

