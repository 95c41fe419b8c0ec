/**
 * Training core, a pure function of (features, labels, options): no database, no printing.
 * method 'scn': Self-Cure Network head (importance weighting, rank regularization, relabeling);
 * method 'ce': the same head trained with plain cross-entropy (the paper's baseline).
 */
import { argmax } from './argmax.js';
import { chooseHeadEngine, type HeadEngine } from './engine.js';
import { FlatAdam, headLayout, initHead, type HeadLayout } from './flathead.js';
import { crossEntropyObjective, importanceOf, rankGroups, relabel, scnObjective, softmaxRow, type Objective, type RankGroups } from './losses.js';
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

export type TrainOptions = HeadOptions &
  Partial<ScnOptions> & {
    method: 'scn' | 'ce';
    /** Kernels for the head's products (engine.ts); default chooseHeadEngine('auto'): onnxruntime, else tfjs. */
    engine?: HeadEngine;
  };

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
  /** The classifier logits themselves, [N, classes] (evaluation mode): what calibration (calibrate.ts) rescales. */
  logits: Float32Array;
  /** Final alpha per row (scn), evaluation mode. */
  importance: Float32Array | null;
  /** alpha per row averaged over the last importanceWindow epochs (scn). */
  importanceMean: Float32Array | null;
  /** The label each row was trained with at the end (after relabeling); untouched rows keep their label. */
  trainedLabels: Int32Array;
}

/** Standardises columns with the mean and sd of the rows in `fit`; returns a new array (or fills `out`). */
export function standardize(x: Float32Array, dim: number, fit: ArrayLike<number>, out: Float32Array<ArrayBufferLike> = new Float32Array(x.length)): Float32Array {
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
  for (let o = 0; o < x.length; o += dim) for (let j = 0; j < dim; j++) out[o + j] = (x[o + j]! - mean[j]!) / sd[j]!;
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

/** A trained head: its flat parameters and their layout (see flathead.ts). */
export interface TrainedHead {
  theta: Float32Array;
  layout: HeadLayout;
}

/** Evaluation-mode forward over `rows` in chunks: probabilities of the classifier logits and alpha (if any). */
export async function predict(
  engine: HeadEngine,
  head: TrainedHead,
  x: Float32Array,
  dim: number,
  rows: ArrayLike<number>,
  chunk = 4096,
): Promise<{ probs: Float32Array; logits: Float32Array; alpha: Float32Array | null }> {
  const { C, K } = head.layout;
  const attention = K > C;
  const probs = new Float32Array(rows.length * C);
  const logits = new Float32Array(rows.length * C);
  const alpha = attention ? new Float32Array(rows.length) : null;
  let buf: Float32Array<ArrayBuffer> = new Float32Array(0);
  for (let s = 0; s < rows.length; s += chunk) {
    const e = Math.min(rows.length, s + chunk);
    buf = gatherRows(x, dim, rows, s, e, buf);
    const out = await engine.outputs(head.theta, head.layout, buf, e - s);
    for (let i = 0; i < e - s; i++) {
      softmaxRow(out, i * K, 1, C, probs, (s + i) * C);
      logits.set(out.subarray(i * K, i * K + C), (s + i) * C);
    }
    if (alpha) alpha.set(importanceOf(out, C), s); // Eq. 1
  }
  return { probs, logits, alpha };
}

/** What a training step works with: the parameters, their optimiser, the dropout generator and the working labels. */
interface Trainer {
  o: HeadOptions & ScnOptions & { method: 'scn' | 'ce' };
  engine: HeadEngine;
  scn: boolean;
  head: TrainedHead;
  adam: FlatAdam;
  /** dL/dtheta of the current batch (the layout of head.theta). */
  grad: Float32Array;
  /** Features [N, dim] as trained on (standardised when asked). */
  x: Float32Array;
  dim: number;
  classes: number;
  dropRng: Rng;
  /** The labels trained with: relabeling changes them; the caller's array is never modified. */
  working: Int32Array;
  /** The dropout mask's and the batch features' buffers, reused from batch to batch. */
  maskBuf?: Float32Array;
  batchBuf: { X: Float32Array; XT: Float32Array | null };
  /** Rows with a reviewed label (TrainData.trusted). */
  trusted?: Uint8Array;
}

/** One mini-batch's samples; per-sample inputs of the step live here, indexed like `rows`. */
export interface Batch {
  /** Rows of the dataset in this batch. */
  rows: Int32Array;
  /** Their working labels (class index). */
  labels: Int32Array;
  /** 1 for samples whose label is trusted (reviewed): kept in the high group, never relabeled. */
  pinned?: Uint8Array;
}

/** Figures of one batch: summed loss, correct predictions, importance gap (scn) and samples relabeled. */
interface BatchStats {
  lossSum: number;
  correct: number;
  gap: number | null;
  relabeled: number;
}

/**
 * The batch's features [n, dim] and, when `transposed`, also laid out as [dim, n], written into `buf`'s arrays
 * when they have the right size (reused from batch to batch).
 */
function gatherBatch(
  x: Float32Array,
  dim: number,
  rows: Int32Array,
  transposed: boolean,
  buf: { X: Float32Array; XT: Float32Array | null },
): { X: Float32Array; XT: Float32Array | null } {
  const n = rows.length;
  const X = buf.X.length === n * dim ? buf.X : new Float32Array(n * dim);
  const XT = !transposed ? null : buf.XT && buf.XT.length === n * dim ? buf.XT : new Float32Array(dim * n);
  // Plain loops: a subarray per row (for X.set) costs more than copying its 256 values.
  for (let k = 0; k < n; k++) {
    const o = rows[k]! * dim;
    const q = k * dim;
    for (let j = 0; j < dim; j++) X[q + j] = x[o + j]!;
    if (XT) for (let j = 0; j < dim; j++) XT[j * n + k] = x[o + j]!;
  }
  return { X, XT };
}

/**
 * A dropout mask of `size` entries: 0 with probability `rate`, else 1 / (1 - rate), from the seeded generator.
 * Each 32-bit draw decides 32 / b entries of b bits each, b the fewest bits (1, 2, 4, 8 or 16) that express the rate
 * exactly (1 bit for 0.5, 2 for 0.25 or 0.75, ...); other rates use 16 bits, rounded to a multiple of 1/65536.
 */
export function dropoutMask(rng: Rng, size: number, rate: number, out?: Float32Array): Float32Array {
  const mask = out && out.length === size ? out : new Float32Array(size);
  const keep = 1 / (1 - rate);
  let bits = 1;
  while (bits < 16 && !Number.isInteger(rate * 2 ** bits)) bits *= 2;
  const per = 32 / bits;
  const field = 2 ** bits - 1;
  // Branch-free: (last - x) >>> 31 is 1 when the draw x is above last = cut - 1 (the entry is kept), else 0.
  const last = Math.round(rate * 2 ** bits) - 1;
  for (let i = 0; i < size; i += per) {
    const u = rng.uint32();
    const end = Math.min(size, i + per);
    for (let k = i, sh = 0; k < end; k++, sh += bits) mask[k] = keep * ((last - ((u >>> sh) & field)) >>> 31);
  }
  return mask;
}

/**
 * One mini-batch: forward pass with dropout, the loss (scn: gamma * L_RR (Eq. 3) + (1 - gamma) * L_WCE (Eq. 2);
 * ce: cross-entropy) and its analytic gradient, one fused Adam step, then from `relabelEpoch` on relabeling (Eq. 4)
 * of the working labels.
 */
async function trainBatch(t: Trainer, batch: Batch, epoch: number, lr: number): Promise<BatchStats> {
  const { o, head, dim, classes: C } = t;
  const { rows, labels: yb, pinned } = batch;
  const n = rows.length;
  const F = head.layout.F;
  const mask = o.dropout > 0 ? (t.maskBuf = dropoutMask(t.dropRng, n * F, o.dropout, t.maskBuf)) : null;
  let objective: Objective | null = null;
  let groups: RankGroups | null = null;
  const lossGrad = (out: Float32Array): Float32Array => {
    if (t.scn) {
      groups = rankGroups(importanceOf(out, C), o.beta, pinned);
      objective = scnObjective(out, C, yb, groups, o);
    } else objective = crossEntropyObjective(out, C, yb);
    return objective.dout;
  };
  t.batchBuf = gatherBatch(t.x, dim, rows, head.layout.H > 0 && t.engine.needsTransposed, t.batchBuf);
  await t.engine.gradients(head.theta, head.layout, { n, ...t.batchBuf, mask }, lossGrad, t.grad);
  t.adam.step(head.theta, t.grad, lr);
  const { loss, probs } = objective as unknown as Objective;
  let correct = 0;
  for (let k = 0; k < n; k++) if (argmax(probs, k, C) === yb[k]) correct++;
  const g = groups as RankGroups | null;
  let relabeled = 0;
  // Eq. 4, after the warm-up: relabel in the low-importance group (or every sample with scope 'all').
  if (t.scn && g && epoch >= o.relabelEpoch) {
    let eligible: ArrayLike<number> | null = o.relabelScope === 'low' ? g.low : null;
    if (pinned) eligible = Uint8Array.from(pinned, (p, k) => (p ? 0 : eligible ? eligible[k]! : 1)); // trusted: never
    const r = relabel(probs, yb, eligible, o.delta2, C);
    for (let k = 0; k < n; k++) {
      if (r.labels[k] !== yb[k]) t.working[rows[k]!] = r.labels[k]!;
    }
    relabeled = r.changed;
  }
  return { lossSum: loss * n, correct, gap: g ? g.gap : null, relabeled };
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
    const labels = Int32Array.from(rows, (r) => t.working[r]!);
    const pinned = t.trusted ? Uint8Array.from(rows, (r) => t.trusted![r]!) : undefined;
    const b = await trainBatch(t, { rows, labels, pinned }, epoch, lr);
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
async function accuracyOn(engine: HeadEngine, head: TrainedHead, x: Float32Array, dim: number, rows: Int32Array, labels: ArrayLike<number>): Promise<number> {
  const C = head.layout.C;
  const pv = (await predict(engine, head, x, dim, rows)).probs;
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
  const { engine: chosen, ...rest } = options;
  const o: HeadOptions & ScnOptions & { method: 'scn' | 'ce' } = { ...SCN_DEFAULTS, ...rest };
  const engine = chosen ?? (await chooseHeadEngine('auto'));
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
  const shape = { inputDim: dim, hidden: o.hidden, classes: C, attention: scn };
  const head: TrainedHead = { theta: initHead(shape, initRng), layout: headLayout(shape) };
  const adam = new FlatAdam(head.layout.size, { weightDecay: o.weightDecay });
  const t: Trainer = {
    o,
    engine,
    scn,
    head,
    adam,
    grad: new Float32Array(head.layout.size),
    x,
    dim,
    classes: C,
    dropRng,
    working: Int32Array.from(data.labels),
    batchBuf: { X: new Float32Array(0), XT: null },
    trusted: data.trusted,
  };

  const validRows = data.valid ? Int32Array.from(data.valid).filter((r) => data.labels[r]! >= 0) : new Int32Array(0);
  const allRows = Int32Array.from({ length: N }, (_, i) => i);
  const alphaSum = scn ? new Float64Array(N) : null;
  let alphaEpochs = 0;
  let last: Awaited<ReturnType<typeof predict>> | null = null;
  const epochs: EpochStats[] = [];
  let lr = o.lr;
  let lastPause = performance.now();
  const pause = async (): Promise<void> => {
    if (performance.now() - lastPause < YIELD_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    lastPause = performance.now();
    signal?.throwIfAborted();
  };

  signal?.throwIfAborted();
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const t0 = performance.now();
    const e = await trainEpoch(t, trainRows, shuffleRng, epoch, lr, pause);
    lr *= o.lrDecay;
    const valAccuracy = validRows.length > 0 ? await accuracyOn(engine, head, x, dim, validRows, data.labels) : null;
    // Importance is averaged over the last importanceWindow epochs (evaluation-mode alpha at each epoch's end).
    if (epoch === o.epochs || (scn && epoch > o.epochs - o.importanceWindow)) {
      last = await predict(engine, head, x, dim, allRows);
      if (alphaSum && last.alpha) {
        for (let i = 0; i < N; i++) alphaSum[i]! += last.alpha[i]!;
        alphaEpochs++;
      }
    }
    const stats: EpochStats = { ...e, valAccuracy, durationS: (performance.now() - t0) / 1000 };
    epochs.push(stats);
    onEpoch?.(stats);
  }
  const final = last ?? (await predict(engine, head, x, dim, allRows));
  const importanceMean = alphaSum ? Float32Array.from(alphaSum, (v) => v / Math.max(1, alphaEpochs)) : null;
  return { epochs, probs: final.probs, logits: final.logits, importance: final.alpha, importanceMean, trainedLabels: t.working };
}
