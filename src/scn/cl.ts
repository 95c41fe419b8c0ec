/**
 * Confident learning (Northcutt, Jiang & Chuang, JAIR 2021), the method of cleanlab's find_label_issues with its
 * default filter (prune_by_noise_rate): out-of-fold predicted probabilities from the ce head, the calibrated
 * confident joint, then per (given i, true j) pair prune the C[i][j] examples of class i with the largest
 * margin p_j - p_i; examples whose predicted class is their given label are never flagged. Each step follows
 * cleanlab 2.x (filter.py, count.py) rule for rule, including its rounding; test/cl-cleanlab.test.ts checks it.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { argmax } from './argmax.js';
import { chooseHeadEngine, type HeadEngine, type HeadEngineName } from './engine.js';
import { permutation, Rng } from './prng.js';
import { standardize, trainHead, type EpochStats, type HeadOptions, type TrainData } from './train.js';

/**
 * Per-class thresholds t_j = mean p_j over the examples labelled j (the classes' average self-confidence), at least
 * 2e-6; a class with no example gets 2, so no example counts towards it (cleanlab's get_confident_thresholds).
 */
export function classThresholds(labels: ArrayLike<number>, probs: ArrayLike<number>, C: number): Float64Array {
  const sum = new Float64Array(C);
  const count = new Float64Array(C);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    sum[y]! += probs[i * C + y]!;
    count[y]!++;
  }
  return Float64Array.from(sum, (s, j) => (count[j]! > 0 ? Math.max(s / count[j]!, 2e-6) : 2));
}

/** numpy's round: halves go to the even neighbour. */
const roundHalfEven = (v: number): number => {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/**
 * Rounds to whole numbers keeping the (rounded) sum: the entries rounded furthest the wrong way move by one until the
 * sum matches (cleanlab's round_preserving_sum, which rounds every row of the confident joint).
 */
export function roundPreservingSum(values: readonly number[]): number[] {
  const ints = values.map(roundHalfEven);
  const target = roundHalfEven(values.reduce((a, b) => a + b, 0));
  for (let sum = ints.reduce((a, b) => a + b, 0); Math.abs(sum - target) > 1e-6; sum = ints.reduce((a, b) => a + b, 0)) {
    const diff = target - sum;
    const step = diff < 0 ? -1 : 1;
    // Largest (value - int) first when adding, smallest first when taking away; ties as numpy's reversed or plain
    // stable argsort of a short row leaves them (last index first when adding).
    const order = values
      .map((_, i) => i)
      .sort((i, j) => step * (values[j]! - ints[j]! - (values[i]! - ints[i]!)) || (step === 1 ? j - i : i - j));
    for (const i of order.slice(0, Math.min(Math.abs(Math.round(diff)), values.length))) ints[i]! += step;
  }
  return ints;
}

/**
 * The confident joint C[i][j]: examples labelled i whose probability reaches the threshold of class j (the row's
 * argmax when several classes do), calibrated so that each row sums to the count of label i and the whole to the
 * number of examples, then rounded keeping each row's total (cleanlab's compute_confident_joint, calibrate=True).
 */
export function confidentJoint(labels: ArrayLike<number>, probs: ArrayLike<number>, C: number): number[][] {
  const t = classThresholds(labels, probs, C);
  const cj = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  const n = new Array<number>(C).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    n[y]!++;
    let first = -1;
    let confident = 0;
    for (let j = 0; j < C; j++) {
      if (probs[i * C + j]! >= t[j]! - 1e-6) {
        if (first < 0) first = j;
        confident++;
      }
    }
    if (confident === 1) cj[y]![first]!++;
    else if (confident > 1) cj[y]![argmax(probs, i, C)]!++;
  }
  // Calibrate: rows sum to the label counts, the whole to N (cleanlab's calibrate_confident_joint).
  const rows = cj.map((row, i) => {
    const s = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (v / Math.max(s, 1e-100)) * n[i]!);
  });
  const total = rows.flat().reduce((a, b) => a + b, 0);
  const N = labels.length;
  return rows.map((row) => roundPreservingSum(row.map((v) => (v / Math.max(total, 1e-100)) * N)));
}

/**
 * How many examples to prune per (true j, given k), transposed from the confident joint, with at least `n` examples
 * of each given class kept: a diagonal below n is raised to n and the rest of its column lowered evenly (never below
 * 0), then rows are rounded keeping their totals (cleanlab's _keep_at_least_n_per_class, frac_noise = 1).
 */
export function pruneCounts(cj: readonly (readonly number[])[], n = 1): number[][] {
  const C = cj.length;
  const pcm = Array.from({ length: C }, (_, j) => Array.from({ length: C }, (_, k) => cj[k]![j]!));
  const next = pcm.map((row) => row.slice());
  for (let k = 0; k < C; k++) {
    const d = pcm[k]![k]!;
    const raised = Math.max(d, n);
    let nonzero = 0;
    for (let j = 0; j < C; j++) if (pcm[j]![k] !== 0) nonzero++;
    const per = (raised - d) / Math.max(nonzero - 1, 1);
    for (let j = 0; j < C; j++) next[j]![k] = j === k ? raised : Math.max(0, pcm[j]![k]! - per);
  }
  return next.map((row) => roundPreservingSum(row));
}

/**
 * Flags label issues with cleanlab's default rule (find_label_issues, filter_by='prune_by_noise_rate'): for each
 * given class k with more than one example and each other class j, the pruneCounts[j][k] examples labelled k with the
 * largest margin p_j - p_k; then any whose given label is still the argmax (p_k counted 1e-6 higher) is let go.
 * Returns a 0/1 mask over the examples.
 */
export function findLabelIssues(labels: ArrayLike<number>, probs: ArrayLike<number>, C: number): Uint8Array {
  const N = labels.length;
  const prune = pruneCounts(confidentJoint(labels, probs, C));
  const byClass: number[][] = Array.from({ length: C }, () => []);
  for (let i = 0; i < N; i++) byClass[labels[i]!]!.push(i);
  const mask = new Uint8Array(N);
  for (let k = 0; k < C; k++) {
    const members = byClass[k]!;
    if (members.length <= 1) continue; // min_examples_per_class = 1
    for (let j = 0; j < C; j++) {
      const num = prune[j]![k]!;
      if (j === k || num <= 0) continue;
      const ranked = members
        .map((e) => ({ e, margin: probs[e * C + j]! - probs[e * C + k]! }))
        .sort((a, b) => b.margin - a.margin || a.e - b.e);
      for (let r = 0; r < Math.min(num, ranked.length); r++) mask[ranked[r]!.e] = 1;
    }
  }
  // Let go of an example whose given label is (within 1e-6) its predicted class (cleanlab's _reduce_issues).
  for (let e = 0; e < N; e++) {
    if (!mask[e]) continue;
    const y = labels[e]!;
    const py = probs[e * C + y]! + 1e-6;
    let top = true;
    for (let j = 0; j < C && top; j++) if (j !== y && probs[e * C + j]! > py) top = false;
    if (!top) continue;
    // argmax with ties to the first class: the label wins a tie only if no earlier class has the same value.
    let tieBefore = false;
    for (let j = 0; j < y; j++) if (probs[e * C + j]! === py) tieBefore = true;
    if (!tieBefore) mask[e] = 0;
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
  /** Per-epoch stats of each fold's ce head, in fold order. */
  epochs: EpochStats[];
  /** Worker threads the folds trained on (0: this thread). */
  workers: number;
}

export interface ClOptions {
  /** Kernels of the heads (engine.ts); default chooseHeadEngine('auto'). */
  engine?: HeadEngine;
  /**
   * Worker threads training folds side by side (each fold is independent; the result is the same as in this
   * thread). Default: one per core up to the number of folds. Only with the onnxruntime engine and where the
   * compiled worker script exists (dist/); otherwise the folds train in this thread.
   */
  workers?: number;
}

/** What a worker is started with (cl-worker.ts): the shared standardised features and what every fold needs. */
export interface ClWorkerInit {
  features: SharedArrayBuffer;
  dim: number;
  classes: number;
  labels: Int32Array;
  valid: Int32Array | undefined;
  trusted: Uint8Array | undefined;
  head: HeadOptions;
  engine: HeadEngineName;
}
export type ClParentMessage = { type: 'fold'; fold: number; fit: Int32Array; seed: number } | { type: 'close' };
export type ClWorkerReply =
  | { type: 'epoch'; fold: number; stats: EpochStats }
  | { type: 'done'; fold: number; probs: Float32Array }
  | { type: 'error'; fold: number; message: string };

/** The compiled worker script next to this module, or undefined when running from the sources (tests). */
function workerScript(): string | undefined {
  const here = fileURLToPath(import.meta.url);
  if (!here.endsWith('.js')) return undefined;
  const script = join(here, '..', 'cl-worker.js');
  return existsSync(script) ? script : undefined;
}

/** How long a worker asked to close may take before it is terminated. */
const CLOSE_TIMEOUT_MS = 5000;

/**
 * Confident learning on `data`: k ce heads, out-of-fold probabilities, label issues among the training rows.
 * Each fold's head trains on the other folds' rows with seed `head.seed + 1000 * (fold + 1)`; folds are independent,
 * so with `workers` they train side by side, and the result is the same as one after the other.
 */
export async function confidentLearning(
  data: TrainData,
  head: HeadOptions,
  folds: number,
  onFold?: (fold: number, stats: EpochStats) => void,
  signal?: AbortSignal,
  opts: ClOptions = {},
): Promise<ClResult> {
  const { classes: C } = data;
  const N = data.labels.length;
  const train = Int32Array.from(data.train);
  if (folds < 2 || train.length < folds) throw new Error(`confidentLearning: need at least ${folds} training rows and 2 folds`);
  const fold = stratifiedFolds(train, data.labels, folds, head.seed);
  const isTrain = new Uint8Array(N);
  for (const r of train) isTrain[r] = 1;
  const others = Int32Array.from({ length: N }, (_, i) => i).filter((i) => !isTrain[i]);
  const engine = opts.engine ?? (await chooseHeadEngine('auto'));
  const script = workerScript();
  // Workers run the onnxruntime engine only (a worker has no tfjs backend of its own).
  const workers = engine.name === 'onnxruntime' && script ? Math.min(folds, opts.workers ?? availableParallelism()) : 0;
  // The features are standardised once on all training rows; each fold's head then sees them as they are. With
  // workers they live in shared memory, written once.
  const shared = workers > 0 ? new Float32Array(new SharedArrayBuffer(data.features.byteLength)) : undefined;
  const features = head.standardize
    ? standardize(data.features, data.dim, train, shared)
    : shared
      ? (shared.set(data.features), shared)
      : data.features;
  const jobs = Array.from({ length: folds }, (_, f) => ({
    fold: f,
    fit: train.filter((_, p) => fold[p] !== f),
    seed: head.seed + 1000 * (f + 1),
  }));
  const epochs: EpochStats[][] = jobs.map(() => []);
  const onEpoch = (f: number, s: EpochStats): void => {
    epochs[f]!.push(s);
    onFold?.(f, s);
  };
  const probs = new Float32Array(N * C);
  // Rows outside training get the folds' average, summed in fold order (the same sums whichever fold ends first).
  const otherProbs: Float32Array[] = new Array(folds);
  const collect = (f: number, p: Float32Array): void => {
    train.forEach((row, q) => {
      if (fold[q] === f) probs.set(p.subarray(row * C, row * C + C), row * C);
    });
    const o = new Float32Array(others.length * C);
    others.forEach((row, k) => o.set(p.subarray(row * C, row * C + C), k * C));
    otherProbs[f] = o;
  };
  if (workers === 0) {
    for (const j of jobs) {
      const r = await trainHead(
        { ...data, features, train: j.fit, valid: data.valid },
        { ...head, standardize: false, method: 'ce', seed: j.seed, engine },
        (s) => onEpoch(j.fold, s),
        signal,
      );
      collect(j.fold, r.probs);
    }
  } else {
    const init: ClWorkerInit = {
      features: shared!.buffer as SharedArrayBuffer,
      dim: data.dim,
      classes: C,
      labels: Int32Array.from(data.labels),
      valid: data.valid ? Int32Array.from(data.valid) : undefined,
      trusted: data.trusted,
      head,
      engine: engine.name,
    };
    await runInWorkers(script!, init, jobs, workers, onEpoch, collect, signal);
  }
  for (let f = 0; f < folds; f++) {
    const o = otherProbs[f]!;
    others.forEach((row, k) => {
      for (let c = 0; c < C; c++) probs[row * C + c]! += o[k * C + c]! / folds;
    });
  }
  const trainLabels = Int32Array.from(train, (r) => data.labels[r]!);
  const trainProbs = new Float32Array(train.length * C);
  train.forEach((r, p) => trainProbs.set(probs.subarray(r * C, r * C + C), p * C));
  const mask = findLabelIssues(trainLabels, trainProbs, C);
  const issues = new Uint8Array(N);
  train.forEach((r, p) => (issues[r] = mask[p]!));
  return { probs, issues, epochs: epochs.flat(), workers };
}

/**
 * Trains the folds on `count` worker threads, each taking the next fold when it finishes one. Resolves when every
 * fold is collected and the workers have ended; rejects on a worker's error, or with the signal's reason once it is
 * aborted (the workers are asked to stop and end on their own).
 */
function runInWorkers(
  script: string,
  init: ClWorkerInit,
  jobs: { fold: number; fit: Int32Array; seed: number }[],
  count: number,
  onEpoch: (fold: number, s: EpochStats) => void,
  collect: (fold: number, probs: Float32Array) => void,
  signal?: AbortSignal,
): Promise<void> {
  signal?.throwIfAborted();
  return new Promise<void>((resolve, reject) => {
    const pool: Worker[] = [];
    let next = 0;
    let finished = 0;
    let exited = 0;
    let settled = false;
    let outcome: unknown;
    const done = (): void => (outcome === undefined ? resolve() : reject(outcome));
    const stop = (e?: unknown): void => {
      if (settled) return;
      settled = true;
      outcome = e;
      signal?.removeEventListener('abort', onAbort);
      for (const w of pool) w.postMessage({ type: 'close' } satisfies ClParentMessage);
      setTimeout(() => {
        for (const w of pool) void w.terminate();
      }, CLOSE_TIMEOUT_MS).unref();
      if (exited === pool.length) done();
    };
    const onAbort = (): void => stop(signal!.reason);
    signal?.addEventListener('abort', onAbort);
    const send = (w: Worker): void => {
      if (next >= jobs.length) return;
      const j = jobs[next++]!;
      w.postMessage({ type: 'fold', ...j } satisfies ClParentMessage);
    };
    for (let i = 0; i < count; i++) {
      const w = new Worker(script, { workerData: init });
      pool.push(w);
      w.on('message', (m: ClWorkerReply) => {
        if (settled) return;
        if (m.type === 'epoch') onEpoch(m.fold, m.stats);
        else if (m.type === 'error') stop(new Error(`confidentLearning: fold ${m.fold + 1}: ${m.message}`));
        else {
          collect(m.fold, m.probs);
          if (++finished === jobs.length) stop();
          else send(w);
        }
      });
      w.on('error', (e) => stop(e));
      w.on('exit', () => {
        exited++;
        if (!settled) stop(new Error('confidentLearning: a worker thread ended before its fold was done'));
        else if (exited === pool.length) done();
      });
      send(w);
    }
  });
}
