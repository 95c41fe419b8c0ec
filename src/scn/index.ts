/**
 * One training run end to end: load the dataset's embeddings and labels, inject synthetic noise if asked, train
 * (scn, ce or cl), and store the run, its epochs, its flips and what it says about every image.
 */
import { FerCleanError } from '../errors.js';
import type { DB } from '../store/db.js';
import { resolveDataset } from '../store/datasets.js';
import { initBackend, type BackendPreference } from '../features/backend.js';
import { resolveStoredBackbone } from '../features/import.js';
import { countImages, countStored } from '../features/store.js';
import { DEFAULT_TTA, TTAS, ttaVersion, type Tta } from '../features/tta.js';
import { argmax } from './argmax.js';
import { calibrateOnHeldOut, MIN_CALIBRATION_ROWS, type Temperature } from './calibrate.js';
import { confidentLearning } from './cl.js';
import { proposeLabels } from './losses.js';
import { formatLabelSource, loadDatasetView, type DatasetView, type LabelSource } from './data.js';
import { scoreRun, type RunReport } from './metrics.js';
import { injectNoise, type NoiseType } from './noise.js';
import {
  createRun,
  failRun,
  resolveRun,
  runEpochs,
  runImagesForScoring,
  saveRunResults,
  setRunMetrics,
  type Method,
  type ResolvedRun,
  type RunImageRow,
} from '../store/runs.js';
import { chooseHeadEngine, type HeadEngine, type HeadEngineName } from './engine.js';
import { HEAD_DEFAULTS, SCN_DEFAULTS, trainHead, type EpochStats, type HeadOptions, type ScnOptions, type TrainData } from './train.js';
import { decisionsInForce } from '../review/domain/decisions.js';

export interface TrainRunOptions {
  dataset?: string;
  /** What to train ('probs' runs are made by probsRun in probs.ts, from a file). */
  method: Exclude<Method, 'probs'>;
  backbone: string;
  /**
   * Which embeddings to train on: 'flip' (each face's features averaged with its mirror's) or 'none'. Left out:
   * DEFAULT_TTA when those are stored for every image, else the other kind when that one is (resolveTta).
   */
  tta?: Tta;
  backend: BackendPreference;
  labelSource: LabelSource;
  noiseRate: number;
  noiseType: NoiseType;
  seed: number;
  head?: Partial<HeadOptions>;
  scn?: Partial<ScnOptions>;
  /** Folds of the out-of-fold probabilities (cl). */
  folds: number;
  /** scn: which images become proposals (see SCN_PROPOSAL_RULE); default 'margin'. */
  propose?: ScnProposal;
  /**
   * Take the review decisions in force as trusted labels (see docs/SCN.md): decided training images train with the
   * decided label, are never relabeled, always rank in the high-importance group, and get no proposal.
   */
  trustDecisions?: boolean;
  /** Aborting it (the CLI does on Ctrl-C / SIGTERM) stops training within ~100 ms and marks the run interrupted. */
  signal?: AbortSignal;
}

/** Training stopped because `signal` was aborted; the run is stored with status 'interrupted'. */
export class RunInterruptedError extends FerCleanError {
  constructor(
    readonly runId: number,
    readonly reason: string,
  ) {
    super(`interrupted (${reason}): run ${runId} is marked interrupted and holds no results; train again`);
  }
}

export type ScnProposal = 'margin' | 'predicted' | 'relabeled';
export const SCN_PROPOSALS: readonly ScnProposal[] = ['margin', 'predicted', 'relabeled'];

export interface TrainProgress {
  /** Epochs done so far (over all folds for cl) and in all. */
  done: number;
  total: number;
  stats: EpochStats;
}

export const CL_DEFAULT_FOLDS = 5;

/** Trains and stores one run; returns its id and its scores (also stored in runs.metrics). */
export async function trainRun(
  db: DB,
  opts: TrainRunOptions,
  onProgress?: (p: TrainProgress) => void,
): Promise<{ runId: number; report: RunReport }> {
  validateTrainOptions(opts);
  const head: HeadOptions = { ...HEAD_DEFAULTS, ...opts.head, seed: opts.seed };
  const scn: ScnOptions = { ...SCN_DEFAULTS, ...opts.scn };
  const propose = opts.propose ?? 'margin';
  // --label-source run:ID names its dataset, as --run does (resolveRun's rule): --dataset, when given too, must agree
  const source = opts.labelSource;
  const dataset =
    source.kind === 'run'
      ? resolveRun(db, { runId: source.runId, dataset: opts.dataset, purpose: 'as a label source', runFlag: `--label-source run:${source.runId}` }).dataset
      : resolveDataset(db, opts.dataset);
  const backbone = resolveStoredBackbone(db, dataset.id, opts.backbone).name;
  const tta = opts.tta ?? resolveTta(db, dataset.id, backbone);
  const view = loadDatasetView(db, dataset, backbone, opts.labelSource, tta);
  const backend = await initBackend(opts.backend);
  // The head trains on onnxruntime's native kernels under --backend auto; a tfjs backend asked for by name trains it.
  const engine = await chooseHeadEngine(opts.backend === 'auto' ? 'auto' : 'tfjs');
  const tax = dataset.taxonomy;
  const C = tax.length;
  const N = view.imageIds.length;

  const rowsWhere = (split: string): number[] => {
    const out: number[] = [];
    for (let i = 0; i < N; i++) if (view.splits[i] === split && view.source[i]! >= 0) out.push(i);
    return out;
  };
  const train = rowsWhere('train');
  const valid = rowsWhere('valid');
  let trusted: Uint8Array | undefined;
  if (opts.trustDecisions) {
    if (opts.noiseRate > 0) throw new FerCleanError('--trust-decisions cannot be combined with --noise (synthetic noise would flip reviewed labels)');
    trusted = trustedLabels(db, dataset.id, view.imageIds, train, view.source, tax);
  }
  if (train.length < Math.max(2, opts.method === 'cl' ? opts.folds : 2)) {
    throw new FerCleanError(
      `dataset '${dataset.name}' has ${train.length} labelled training images (split 'train'${opts.labelSource.kind === 'reference' ? ' with a reference label' : ''}): too few to train`,
    );
  }
  const noise =
    opts.noiseRate > 0
      ? injectNoise(view.source, train, { rate: opts.noiseRate, type: opts.noiseType, taxonomy: tax, seed: opts.seed + 0x5eed })
      : { labels: view.source, flips: [] };
  const labels = noise.labels;

  const config = {
    ...runConfig(opts, { dataset: dataset.name, backbone, view, backend, engine: engine.name, head, scn, propose, flips: noise.flips.length, train, valid }),
    tta,
    ...(trusted ? { trusted_decisions: trusted.reduce((a, b) => a + b, 0) } : {}),
  };
  const calibrationOf = (t: Temperature | null | undefined): Record<string, unknown> =>
    t === undefined
      ? { method: 'none', why: 'out-of-fold probabilities' }
      : t === null
        ? { method: 'none', why: `fewer than ${MIN_CALIBRATION_ROWS} labelled valid images` }
        : { method: 'temperature', T: t.T, fitted_on: 'valid', rows: t.rows, nll_before: t.nllBefore, nll_after: t.nllAfter };
  const runId = createRun(db, {
    datasetId: dataset.id,
    method: opts.method,
    backbone,
    // What trained the head: onnxruntime's kernels, or the tfjs backend (runs.config has both).
    backend: engine.name === 'onnxruntime' ? 'onnxruntime' : backend.name,
    seed: opts.seed,
    noiseRate: opts.noiseRate,
    noiseType: opts.noiseRate > 0 ? opts.noiseType : null,
    config,
  });

  const t0 = performance.now();
  try {
    const data: TrainData = { features: view.features, dim: view.dim, classes: C, labels, train, valid, trusted };
    const total = opts.method === 'cl' ? head.epochs * opts.folds : head.epochs;
    let done = 0;
    const tick = (stats: EpochStats): void => onProgress?.({ done: ++done, total, stats });
    const out = await trainAndPropose(data, { method: opts.method, head, scn, propose, folds: opts.folds, engine }, tick, opts.signal);
    if (trusted) for (let i = 0; i < N; i++) if (trusted[i]) out.proposed[i] = -1; // decided: keeps its decision
    const durationS = (performance.now() - t0) / 1000;
    // Known only now: how the stored probabilities were calibrated (runs.config.calibration).
    db.prepare(`UPDATE runs SET config = json_set(config, '$.calibration', json(?)) WHERE id = ?`).run(JSON.stringify(calibrationOf(out.temperature)), runId);
    saveRunResults(db, runId, {
      epochs: out.epochs,
      noise: noise.flips.map((f) => ({ imageId: view.imageIds[f.index]!, original: tax[f.original]!, noisy: tax[f.noisy]! })),
      images: imageRows(view, labels, out, tax),
      durationS,
    });
    const report = reportRun(db, runId);
    setRunMetrics(db, runId, summarize(report));
    return { runId, report };
  } catch (e) {
    const durationS = (performance.now() - t0) / 1000;
    if (opts.signal?.aborted) {
      const reason = String(opts.signal.reason instanceof Error ? opts.signal.reason.message : opts.signal.reason);
      failRun(db, runId, `interrupted (${reason})`, durationS, 'interrupted');
      throw new RunInterruptedError(runId, reason);
    }
    failRun(db, runId, (e as Error).message, durationS);
    throw e;
  }
}

/**
 * The embeddings a run uses when not told: DEFAULT_TTA's when every usable image has them, else the other kind's when
 * every image has those (a database embedded before the default changed keeps training), else DEFAULT_TTA (whose
 * loading then names what is missing and the command that computes it).
 */
export function resolveTta(db: DB, datasetId: number, backbone: string): Tta {
  const total = countImages(db, datasetId);
  // TTA applies to the built-in parts only: an imported part is stored as it was imported
  const builtIn = resolveStoredBackbone(db, datasetId, backbone).parts.filter((p) => !p.imported);
  const complete = (tta: Tta): boolean => builtIn.every((b) => countStored(db, datasetId, b.id, ttaVersion(b.version, tta)) >= total);
  const other: Tta = DEFAULT_TTA === 'flip' ? 'none' : 'flip';
  return complete(DEFAULT_TTA) || !complete(other) ? DEFAULT_TTA : other;
}

/**
 * Applies the review decisions in force (any annotator, any run) to the training rows' labels, in place, and marks
 * those rows trusted. Returns the mask (1 = trusted), per row.
 */
export function trustedLabels(db: DB, datasetId: number, imageIds: number[], train: number[], labels: Int32Array, tax: readonly string[]): Uint8Array {
  const decided = decisionsInForce(db, { datasetId });
  const mask = new Uint8Array(imageIds.length);
  for (const i of train) {
    const label = decided.get(imageIds[i]!)?.label;
    if (label === undefined) continue;
    const k = tax.indexOf(label);
    if (k < 0) throw new FerCleanError(`image ${imageIds[i]}: decided label '${label}' is not a class of this dataset`);
    labels[i] = k;
    mask[i] = 1;
  }
  return mask;
}

/** What a run records about how it was made (runs.config). */
function runConfig(
  opts: TrainRunOptions,
  r: {
    dataset: string;
    backbone: string;
    view: DatasetView;
    backend: { name: string; provider: string };
    engine: HeadEngineName;
    head: HeadOptions;
    scn: ScnOptions;
    propose: ScnProposal;
    flips: number;
    train: number[];
    valid: number[];
  },
): Record<string, unknown> {
  return {
    dataset: r.dataset,
    method: opts.method,
    label_source: formatLabelSource(opts.labelSource),
    backbone: r.backbone,
    backbone_version: r.view.backboneVersion,
    backend: r.backend.name,
    backend_provider: r.backend.provider,
    head_engine: r.engine,
    seed: opts.seed,
    noise: { rate: opts.noiseRate, type: opts.noiseRate > 0 ? opts.noiseType : null, flips: r.flips },
    head: r.head,
    ...(opts.method === 'scn' ? { scn: r.scn, loss: 'gamma * L_RR + (1 - gamma) * L_WCE', propose: r.propose } : {}),
    ...(opts.method === 'cl' ? { cl: { folds: opts.folds, filter: 'prune_by_noise_rate' } } : {}),
    proposals: opts.method === 'scn' ? SCN_PROPOSAL_RULE[r.propose] : PROPOSAL_RULE[opts.method],
    train_images: r.train.length,
    valid_images: r.valid.length,
  };
}

/** What training says about every row, and the proposals drawn from it (class index, -1 for none). */
export interface Trained {
  epochs: EpochStats[];
  probs: Float32Array;
  trainedLabels: Int32Array;
  importance: Float32Array | null;
  importanceMean: Float32Array | null;
  proposed: Int32Array;
  isTrain: Uint8Array;
  /** scn and ce: the temperature the stored probabilities were calibrated with (null: too few valid rows); cl: absent. */
  temperature?: Temperature | null;
}

/** Trains with the method and turns its output into proposals (on training rows only). */
async function trainAndPropose(
  data: TrainData,
  m: { method: Exclude<Method, 'probs'>; head: HeadOptions; scn: ScnOptions; propose: ScnProposal; folds: number; engine: HeadEngine },
  tick: (s: EpochStats) => void,
  signal?: AbortSignal,
): Promise<Trained> {
  const { labels, classes: C } = data;
  const isTrain = new Uint8Array(labels.length);
  for (const r of Array.from(data.train)) isTrain[r] = 1;
  if (m.method === 'cl') {
    const r = await confidentLearning(data, m.head, m.folds, (_f, s) => tick(s), signal, { engine: m.engine });
    // The flagged images' most likely out-of-fold class (never their given label: findLabelIssues drops those).
    const flagged = Uint8Array.from(isTrain, (t, i) => t & (r.issues[i] ?? 0));
    const proposed = proposeLabels(r.probs, labels, flagged, -Infinity, C);
    return { epochs: r.epochs, probs: r.probs, trainedLabels: labels, importance: null, importanceMean: null, proposed, isTrain };
  }
  const r = await trainHead(data, { ...m.head, ...m.scn, method: m.method, engine: m.engine }, tick, signal);
  let proposed: Int32Array;
  if (m.method === 'scn' && m.propose === 'relabeled') {
    // The label SCN trained with at the end, when relabeling changed it.
    proposed = Int32Array.from(r.trainedLabels, (y, i) => (isTrain[i] && y !== labels[i] ? y : -1));
  } else if (m.method === 'scn' && m.propose === 'predicted') {
    // The self-cured classifier's prediction, when it differs from the given label (Eq. 4 with no margin).
    proposed = proposeLabels(r.probs, labels, isTrain, -Infinity, C);
  } else {
    // Eq. 4's rule once more at the end, with the final classifier, on every training image: P_max - P_given > delta2.
    // (For ce, the same rule with the paper's delta2 on the baseline's in-sample predictions.)
    proposed = proposeLabels(r.probs, labels, isTrain, m.method === 'scn' ? m.scn.delta2 : SCN_DEFAULTS.delta2, C);
  }
  // Which images get a proposal is decided above on the head's own probabilities (Eq. 4 as in training); what is
  // stored, and read by every reader (queue order, margins, estimates, report, export), is the calibrated
  // probabilities: temperature scaling fitted on the valid split (calibrate.ts), after training.
  const { probs, temperature } = calibrateOnHeldOut(r.logits, C, labels, data.valid ?? []);
  return { ...r, probs, proposed, isTrain, temperature };
}

/** The rows stored per image: labels, importance, probabilities, prediction and proposal with its margin. */
export function imageRows(view: Pick<DatasetView, 'imageIds' | 'given'>, labels: Int32Array, t: Trained, tax: readonly string[]): RunImageRow[] {
  const C = tax.length;
  const images: RunImageRow[] = [];
  for (let i = 0; i < view.imageIds.length; i++) {
    const y = labels[i]! >= 0 ? labels[i]! : view.given[i]!;
    const p = Array.from(t.probs.subarray(i * C, i * C + C));
    const prop = t.proposed[i]!;
    images.push({
      image_id: view.imageIds[i]!,
      given_label: tax[y]!,
      trained_label: tax[t.isTrain[i] ? t.trainedLabels[i]! : y]!,
      in_training: t.isTrain[i]!,
      importance: t.importance ? t.importance[i]! : null,
      importance_mean: t.importanceMean ? t.importanceMean[i]! : null,
      probs: p,
      predicted_label: tax[argmax(t.probs, i, C)]!,
      proposed_label: prop >= 0 ? tax[prop]! : null,
      proposal_margin: prop >= 0 ? p[prop]! - p[y]! : null,
    });
  }
  return images;
}

const SCN_PROPOSAL_RULE: Record<ScnProposal, string> = {
  margin: "training images where the final SCN classifier's top class beats the given label by more than delta2 (Eq. 4 on every image, once, at the end)",
  predicted: 'training images whose predicted class (final SCN classifier, trained with relabeling) differs from the given label',
  relabeled: 'training images whose label SCN trained with at the end (after relabeling, Eq. 4) differs from the given one',
};

/** How each method turns its output into proposals (stored in the run's config). */
export const PROPOSAL_RULE: Record<Method, string> = {
  scn: SCN_PROPOSAL_RULE.margin,
  ce: 'training images whose predicted class beats the given one by more than delta2 (in-sample)',
  cl: 'training images flagged by confident learning (prune_by_noise_rate), with their most likely out-of-fold class',
  probs:
    "training images flagged by cleanlab's default rule (find_label_issues, prune_by_noise_rate) on the imported out-of-fold probabilities, with their argmax class",
};

/** The scores of a stored run (a run id, or a run already resolved by the caller), recomputed from its stored rows. */
export function reportRun(db: DB, which: number | ResolvedRun): RunReport {
  const run = typeof which === 'number' ? resolveRun(db, { runId: which, done: false }) : which;
  return scoreRun(run, runImagesForScoring(db, run.id), runEpochs(db, run.id).length);
}

/** The headline figures kept in runs.metrics. */
export function summarize(r: RunReport): Record<string, unknown> {
  return {
    test_accuracy: r.test_accuracy,
    test_accuracy_reference: r.test_accuracy_reference,
    test_accuracy_given: r.test_accuracy_given,
    detection: r.detection,
    relabel_accuracy: r.relabel_accuracy,
    relabel_accuracy_detected: r.relabel_accuracy_detected,
    proposals: r.detection?.proposals ?? r.proposal_confusions.reduce((s, p) => s + p.count, 0),
  };
}

/** One option of trainRun out of its range: `option` is its name in TrainRunOptions (head.lr, scn.beta, noiseRate...). */
export interface OptionProblem {
  option: string;
  value: unknown;
  /** What is expected, e.g. 'a rate in [0, 1)'. */
  expected: string;
}

/** trainRun's options out of range; the message names them as TrainRunOptions does, `problems` lists each one. */
export class InvalidOptionsError extends FerCleanError {
  constructor(readonly problems: OptionProblem[]) {
    const lines = problems.map((p) => `${p.option} ${String(p.value)}: expected ${p.expected}`);
    super(lines.length === 1 ? lines[0]! : `${lines.length} bad options`, lines.length > 1 ? lines : []);
  }
}

/**
 * Checks trainRun's options (with the defaults filled in): every range, and that SCN options come only with method
 * 'scn'. Throws InvalidOptionsError (ranges) or FerCleanError (SCN options for another method).
 */
export function validateTrainOptions(opts: TrainRunOptions): void {
  if (opts.method !== 'scn') {
    const given = Object.entries(opts.scn ?? {}).filter(([, v]) => v !== undefined);
    const scnOnly = [...given.map(([k]) => `scn.${k}`), ...(opts.propose ? ['propose'] : [])];
    if (scnOnly.length) throw new FerCleanError(`method ${opts.method} takes no SCN options (${scnOnly.join(', ')})`);
  }
  const h: HeadOptions = { ...HEAD_DEFAULTS, ...opts.head, seed: opts.seed };
  const s: ScnOptions = { ...SCN_DEFAULTS, ...opts.scn };
  const bad: OptionProblem[] = [];
  const check = (ok: boolean, option: string, value: unknown, expected: string): void =>
    void (ok || bad.push({ option, value, expected }));
  const num = (v: number): boolean => typeof v === 'number' && Number.isFinite(v);
  const whole = (v: number, min: number): boolean => Number.isInteger(v) && v >= min;
  check(whole(h.hidden, 0), 'head.hidden', h.hidden, 'a whole number >= 0');
  check(num(h.dropout) && h.dropout >= 0 && h.dropout < 1, 'head.dropout', h.dropout, 'a rate in [0, 1)');
  check(num(h.lr) && h.lr > 0, 'head.lr', h.lr, 'a number > 0');
  check(num(h.lrDecay) && h.lrDecay > 0 && h.lrDecay <= 1, 'head.lrDecay', h.lrDecay, 'a factor in (0, 1]');
  check(num(h.weightDecay) && h.weightDecay >= 0, 'head.weightDecay', h.weightDecay, 'a number >= 0');
  check(whole(h.batchSize, 2), 'head.batchSize', h.batchSize, 'a whole number >= 2');
  check(whole(h.epochs, 1), 'head.epochs', h.epochs, 'a whole number >= 1');
  check(num(s.beta) && s.beta > 0 && s.beta < 1, 'scn.beta', s.beta, 'a fraction in (0, 1)');
  check(num(s.delta1) && s.delta1 >= 0, 'scn.delta1', s.delta1, 'a number >= 0');
  check(num(s.delta2) && s.delta2 >= 0 && s.delta2 < 1, 'scn.delta2', s.delta2, 'a number in [0, 1)');
  check(num(s.gamma) && s.gamma >= 0 && s.gamma <= 1, 'scn.gamma', s.gamma, 'a weight in [0, 1]');
  check(whole(s.relabelEpoch, 1), 'scn.relabelEpoch', s.relabelEpoch, 'a whole number >= 1');
  check(s.relabelScope === 'low' || s.relabelScope === 'all', 'scn.relabelScope', s.relabelScope, 'low or all');
  check(whole(s.importanceWindow, 1), 'scn.importanceWindow', s.importanceWindow, 'a whole number >= 1');
  check(whole(opts.folds, 2), 'folds', opts.folds, 'a whole number >= 2');
  check(num(opts.noiseRate) && opts.noiseRate >= 0 && opts.noiseRate < 1, 'noiseRate', opts.noiseRate, 'a fraction in [0, 1)');
  check(opts.noiseType === 'symmetric' || opts.noiseType === 'asymmetric', 'noiseType', opts.noiseType, 'symmetric or asymmetric');
  check(whole(opts.seed, 0), 'seed', opts.seed, 'a whole number >= 0');
  check(opts.propose === undefined || SCN_PROPOSALS.includes(opts.propose), 'propose', opts.propose, SCN_PROPOSALS.join(', '));
  check(opts.tta === undefined || TTAS.includes(opts.tta), 'tta', opts.tta, TTAS.join(' or '));
  if (bad.length) throw new InvalidOptionsError(bad);
}
