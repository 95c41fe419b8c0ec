/**
 * Training core, a pure function of (features, labels, options): no database, no printing.
 * method 'scn': Self-Cure Network head (importance weighting, rank regularization, relabeling);
 * method 'ce': the same head trained with plain cross-entropy (the paper's baseline).
 */
import { tf } from '../features/backend.js';
import { argmax } from './argmax.js';
import { Adam, Head } from './model.js';
import { crossEntropy, rankGroups, rankRegularization, relabel, scnLoss, weightedCrossEntropy, type RankGroups } from './losses.js';
import { permutation, Rng } from './prng.js';

export type RelabelScope = 'low' | 'all';

export interface HeadOptions {
  /** Hidden units (0 = linear head). */
  hidden: number;
  /** Dropout rate on the head's features f. */
  dropout: number;
  lr: number;
  /** Multiply lr by this after every epoch (1 = constant). */
  lrDecay: number;
  weightDecay: number;
  batchSize: number;
  epochs: number;
  /** Standardise each embedding dimension with the training rows' mean and standard deviation. */
  standardize: boolean;
  seed: number;
}

export interface ScnOptions {
  /** Fraction of each batch in the high-importance group (Eq. 3). */
  beta: number;
  /** Margin between the groups' mean importance (Eq. 3). */
  delta1: number;
  /** Relabel margin P_max - P_given (Eq. 4). */
  delta2: number;
  /** Total loss = gamma * L_RR + (1 - gamma) * L_WCE. */
  gamma: number;
  /** First epoch (1-based) at which relabeling runs. */
  relabelEpoch: number;
  /** 'low': only the low-importance group may be relabeled (paper); 'all': every sample (public code). */
  relabelScope: RelabelScope;
  /** Importance is also averaged over this many final epochs (evaluation-mode alpha at each epoch's end). */
  importanceWindow: number;
}

export type TrainOptions = HeadOptions & Partial<ScnOptions> & { method: 'scn' | 'ce' };

export const HEAD_DEFAULTS: HeadOptions = {
  hidden: 256,
  dropout: 0.5,
  lr: 1e-3,
  lrDecay: 0.95,
  weightDecay: 1e-4,
  batchSize: 256,
  epochs: 20,
  standardize: true,
  seed: 1,
};

/** The paper's values: beta 0.7, delta1 0.15, delta2 0.2, relabel after 10 epochs; gamma 0.5 (see docs/SCN.md). */
export const SCN_DEFAULTS: ScnOptions = {
  beta: 0.7,
  delta1: 0.15,
  delta2: 0.2,
  gamma: 0.5,
  relabelEpoch: 10,
  relabelScope: 'low',
  importanceWindow: 5,
};

export interface TrainData {
  /** Row-major [N, dim] embeddings of every image of the dataset. */
  features: Float32Array;
  dim: number;
  classes: number;
  /** Label of each row the run is given (class index), -1 where none. */
  labels: Int32Array;
  /** Rows to train on. */
  train: ArrayLike<number>;
  /** Rows (with labels) whose accuracy is tracked per epoch, e.g. the valid split. */
  valid?: ArrayLike<number>;
  /** 1 for rows whose label a reviewer decided (trusted): never relabeled, always in the high-importance group. */
  trusted?: Uint8Array;
}

export interface EpochStats {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  valAccuracy: number | null;
  /** Mean over batches of mean_H - mean_L (scn only). */
  importanceGap: number | null;
  relabeled: number;
  durationS: number;
}

export interface TrainResult {
  epochs: EpochStats[];
  /** Softmax of the classifier logits for every row, [N, classes] (evaluation mode). */
  probs: Float32Array;
  /** Final alpha per row (scn), evaluation mode. */
  importance: Float32Array | null;
  /** alpha per row averaged over the last importanceWindow epochs (scn). */
  importanceMean: Float32Array | null;
  /** The label each row was trained with at the end (after relabeling); untouched rows keep their label. */
  trainedLabels: Int32Array;
}

/** Standardises columns with the mean and sd of the rows in `fit`; returns a new array. */
export function standardize(x: Float32Array, dim: number, fit: ArrayLike<number>): Float32Array {
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  for (let k = 0; k < fit.length; k++) {
    const o = fit[k]! * dim;
    for (let j = 0; j < dim; j++) {
      const v = x[o + j]!;
      mean[j]! += v;
      sq[j]! += v * v;
    }
  }
  const n = Math.max(1, fit.length);
  const sd = new Float64Array(dim);
  for (let j = 0; j < dim; j++) {
    mean[j] = mean[j]! / n;
    sd[j] = Math.sqrt(Math.max(0, sq[j]! / n - mean[j]! ** 2)) || 1;
  }
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const j = i % dim;
    out[i] = (x[i]! - mean[j]!) / sd[j]!;
  }
  return out;
}

function gatherRows(
  x: Float32Array,
  dim: number,
  rows: ArrayLike<number>,
  from: number,
  to: number,
  buf: Float32Array<ArrayBuffer>,
): Float32Array<ArrayBuffer> {
  const n = to - from;
  const out = buf.length === n * dim ? buf : new Float32Array(n * dim);
  for (let k = 0; k < n; k++) {
    const r = rows[from + k]!;
    out.set(x.subarray(r * dim, r * dim + dim), k * dim);
  }
  return out;
}

/** Evaluation-mode forward over `rows` in chunks: probabilities of the classifier logits and alpha (if any). */
export function predict(
  head: Head,
  x: Float32Array,
  dim: number,
  rows: ArrayLike<number>,
  chunk = 4096,
): { probs: Float32Array; alpha: Float32Array | null } {
  const C = head.shape.classes;
  const probs = new Float32Array(rows.length * C);
  const alpha = head.shape.attention ? new Float32Array(rows.length) : null;
  let buf: Float32Array<ArrayBuffer> = new Float32Array(0);
  for (let s = 0; s < rows.length; s += chunk) {
    const e = Math.min(rows.length, s + chunk);
    buf = gatherRows(x, dim, rows, s, e, buf);
    const xb = buf;
    const [p, a] = tf.tidy(() => {
      const f = head.forward(tf.tensor2d(xb, [e - s, dim]));
      return f.alpha ? [tf.softmax(f.logits), f.alpha] : [tf.softmax(f.logits)];
    }) as [tf.Tensor2D, tf.Tensor2D?];
    probs.set(p.dataSync() as Float32Array, s * C);
    if (alpha && a) alpha.set(a.dataSync() as Float32Array, s);
    p.dispose();
    a?.dispose();
  }
  return { probs, alpha };
}

/** What a training step works with: the model, its optimiser, the dropout generator and the working labels. */
interface Trainer {
  o: HeadOptions & ScnOptions & { method: 'scn' | 'ce' };
  scn: boolean;
  head: Head;
  adam: Adam;
  /** Features [N, dim] as trained on (standardised when asked). */
  x: Float32Array;
  dim: number;
  classes: number;
  dropRng: Rng;
  /** The labels trained with: relabeling changes them; the caller's array is never modified. */
  working: Int32Array;
  /** Reused buffer for a batch's features. */
  xbuf: Float32Array<ArrayBuffer>;
  /** Rows with a reviewed label (TrainData.trusted). */
  trusted?: Uint8Array;
}

/** Figures of one batch: summed loss, correct predictions, importance gap (scn) and samples relabeled. */
interface BatchStats {
  lossSum: number;
  correct: number;
  gap: number | null;
  relabeled: number;
}

/**
 * One mini-batch: forward pass with dropout, the loss (scn: gamma * L_RR (Eq. 3) + (1 - gamma) * L_WCE (Eq. 2);
 * ce: cross-entropy), an Adam step, then from `relabelEpoch` on relabeling (Eq. 4) of the working labels.
 */
function trainBatch(t: Trainer, rows: Int32Array, epoch: number, lr: number): BatchStats {
  const { o, head, dim, classes: C } = t;
  const B = rows.length;
  const F = head.featureDim;
  const yb = Int32Array.from(rows, (r) => t.working[r]!);
  const pinned = t.trusted ? Uint8Array.from(rows, (r) => t.trusted![r]!) : undefined;
  t.xbuf = gatherRows(t.x, dim, rows, 0, B, t.xbuf);
  let mask: Float32Array | null = null;
  if (o.dropout > 0) {
    mask = new Float32Array(B * F);
    const keep = 1 / (1 - o.dropout);
    for (let i = 0; i < mask.length; i++) mask[i] = t.dropRng.next() < o.dropout ? 0 : keep;
  }
  let probsB: Float32Array = new Float32Array(0);
  let groups: RankGroups | null = null;
  const xb = t.xbuf;
  const { value, grads } = tf.variableGrads(() => {
    const xt = tf.tensor2d(xb, [B, dim]);
    const y = tf.oneHot(tf.tensor1d(yb, 'int32'), C) as tf.Tensor2D;
    const { logits, alpha } = head.forward(xt, mask ? tf.tensor2d(mask, [B, F]) : undefined);
    if (t.scn && alpha) {
      groups = rankGroups(alpha.dataSync(), o.beta, pinned);
      probsB = tf.softmax(tf.mul(alpha, logits)).dataSync() as Float32Array;
      return scnLoss(rankRegularization(alpha, groups, o.delta1), weightedCrossEntropy(logits, alpha, y), o.gamma);
    }
    probsB = tf.softmax(logits).dataSync() as Float32Array;
    return crossEntropy(logits, y);
  }, head.variables);
  t.adam.step(grads, lr);
  const lossSum = value.dataSync()[0]! * B;
  value.dispose();
  tf.dispose(grads);
  let correct = 0;
  for (let k = 0; k < B; k++) if (argmax(probsB, k, C) === yb[k]) correct++;
  const g = groups as RankGroups | null;
  let relabeled = 0;
  // Eq. 4, after the warm-up: relabel in the low-importance group (or every sample with scope 'all').
  if (t.scn && g && epoch >= o.relabelEpoch) {
    let eligible: ArrayLike<number> | null = o.relabelScope === 'low' ? g.low : null;
    if (pinned) eligible = Uint8Array.from(pinned, (p, k) => (p ? 0 : eligible ? eligible[k]! : 1)); // trusted: never
    const r = relabel(probsB, yb, eligible, o.delta2, C);
    for (let k = 0; k < B; k++) {
      if (r.labels[k] !== yb[k]) t.working[rows[k]!] = r.labels[k]!;
    }
    relabeled = r.changed;
  }
  return { lossSum, correct, gap: g ? g.gap : null, relabeled };
}

/** One epoch over the training rows in a fresh seeded order; never leaves a batch of one (rank groups need two). */
async function trainEpoch(
  t: Trainer,
  trainRows: Int32Array,
  shuffleRng: Rng,
  epoch: number,
  lr: number,
  pause: () => Promise<void>,
): Promise<Omit<EpochStats, 'valAccuracy' | 'durationS'>> {
  const order = permutation(trainRows.length, shuffleRng);
  let lossSum = 0;
  let correct = 0;
  let gapSum = 0;
  let batches = 0;
  let relabeled = 0;
  for (let s = 0; s < order.length; s += t.o.batchSize) {
    let e = Math.min(order.length, s + t.o.batchSize);
    if (order.length - e === 1) e = order.length;
    const rows = Int32Array.from({ length: e - s }, (_, k) => trainRows[order[s + k]!]!);
    const b = trainBatch(t, rows, epoch, lr);
    await pause();
    lossSum += b.lossSum;
    correct += b.correct;
    relabeled += b.relabeled;
    if (b.gap !== null) {
      gapSum += b.gap;
      batches++;
    }
  }
  return {
    epoch,
    loss: lossSum / trainRows.length,
    trainAccuracy: correct / trainRows.length,
    importanceGap: t.scn && batches > 0 ? gapSum / batches : null,
    relabeled,
  };
}

/** Accuracy of the head's predictions on `rows` against `labels` (evaluation mode). */
function accuracyOn(head: Head, x: Float32Array, dim: number, rows: Int32Array, labels: ArrayLike<number>): number {
  const C = head.shape.classes;
  const pv = predict(head, x, dim, rows).probs;
  let ok = 0;
  rows.forEach((r, k) => (ok += argmax(pv, k, C) === labels[r] ? 1 : 0));
  return ok / rows.length;
}

/** How often training lets the event loop run (so Ctrl-C is heard), in ms of work. */
const YIELD_MS = 100;

/**
 * Trains a head on the `train` rows and predicts every row. Seeded: the same inputs, options and backend give
 * the same result. `onEpoch` is called after each epoch (for progress). Every ~100 ms it lets the event loop run;
 * once `signal` is aborted it stops there, throwing the signal's reason.
 */
export async function trainHead(
  data: TrainData,
  options: TrainOptions,
  onEpoch?: (s: EpochStats) => void,
  signal?: AbortSignal,
): Promise<TrainResult> {
  const o: HeadOptions & ScnOptions & { method: 'scn' | 'ce' } = { ...SCN_DEFAULTS, ...options };
  const { dim, classes: C } = data;
  const N = data.labels.length;
  const scn = o.method === 'scn';
  const trainRows = Int32Array.from(data.train);
  if (trainRows.length < 2) throw new Error('trainHead: need at least 2 training rows');
  for (const r of trainRows) if (!(data.labels[r]! >= 0 && data.labels[r]! < C)) throw new Error(`trainHead: row ${r} has no label`);
  const x = o.standardize ? standardize(data.features, dim, trainRows) : data.features;

  const rng = new Rng(o.seed);
  const initRng = rng.fork(1);
  const shuffleRng = rng.fork(2);
  const dropRng = rng.fork(3);
  const head = new Head({ inputDim: dim, hidden: o.hidden, classes: C, attention: scn }, initRng);
  const adam = new Adam(head.variables, { weightDecay: o.weightDecay });
  const t: Trainer = { o, scn, head, adam, x, dim, classes: C, dropRng, working: Int32Array.from(data.labels), xbuf: new Float32Array(0), trusted: data.trusted };

  const validRows = data.valid ? Int32Array.from(data.valid).filter((r) => data.labels[r]! >= 0) : new Int32Array(0);
  const allRows = Int32Array.from({ length: N }, (_, i) => i);
  const alphaSum = scn ? new Float64Array(N) : null;
  let alphaEpochs = 0;
  let last: { probs: Float32Array; alpha: Float32Array | null } | null = null;
  const epochs: EpochStats[] = [];
  let lr = o.lr;
  let lastPause = performance.now();
  const pause = async (): Promise<void> => {
    if (performance.now() - lastPause < YIELD_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    lastPause = performance.now();
    signal?.throwIfAborted();
  };

  try {
    signal?.throwIfAborted();
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const t0 = performance.now();
      const e = await trainEpoch(t, trainRows, shuffleRng, epoch, lr, pause);
      lr *= o.lrDecay;
      const valAccuracy = validRows.length > 0 ? accuracyOn(head, x, dim, validRows, data.labels) : null;
      // Importance is averaged over the last importanceWindow epochs (evaluation-mode alpha at each epoch's end).
      if (epoch === o.epochs || (scn && epoch > o.epochs - o.importanceWindow)) {
        last = predict(head, x, dim, allRows);
        if (alphaSum && last.alpha) {
          for (let i = 0; i < N; i++) alphaSum[i]! += last.alpha[i]!;
          alphaEpochs++;
        }
      }
      const stats: EpochStats = { ...e, valAccuracy, durationS: (performance.now() - t0) / 1000 };
      epochs.push(stats);
      onEpoch?.(stats);
    }
    const final = last ?? predict(head, x, dim, allRows);
    const importanceMean = alphaSum ? Float32Array.from(alphaSum, (v) => v / Math.max(1, alphaEpochs)) : null;
    return { epochs, probs: final.probs, importance: final.alpha, importanceMean, trainedLabels: t.working };
  } finally {
    adam.dispose();
    head.dispose();
  }
}
