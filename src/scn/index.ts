/**
 * One training run end to end: load the dataset's embeddings and labels, inject synthetic noise if asked, train
 * (scn, ce or cl), and store the run, its epochs, its flips and what it says about every image.
 */
import { FerCleanError } from '../errors.js';
import type { DB } from '../store/db.js';
import { resolveDataset } from '../store/datasets.js';
import { initBackend, type BackendPreference } from '../features/backend.js';
import { resolveBackbone } from '../features/store.js';
import { argmax, confidentLearning } from './cl.js';
import { formatLabelSource, loadDatasetView, type LabelSource } from './data.js';
import { scoreRun, type RunReport } from './metrics.js';
import { injectNoise, type NoiseType } from './noise.js';
import { createRun, failRun, getRun, runEpochs, runImagesForScoring, saveRunResults, setRunMetrics, type Method, type RunImageRow } from './runs.js';
import { HEAD_DEFAULTS, SCN_DEFAULTS, trainHead, type EpochStats, type HeadOptions, type ScnOptions } from './train.js';

export interface TrainRunOptions {
  dataset?: string;
  method: Method;
  backbone: string;
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
  const head: HeadOptions = { ...HEAD_DEFAULTS, ...opts.head, seed: opts.seed };
  const scn: ScnOptions = { ...SCN_DEFAULTS, ...opts.scn };
  validate(head, scn, opts);
  const propose = opts.propose ?? 'margin';
  const dataset = resolveDataset(db, opts.dataset);
  const backbone = resolveBackbone(opts.backbone).name;
  const view = loadDatasetView(db, dataset, backbone, opts.labelSource);
  const backend = await initBackend(opts.backend);
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
    dataset: dataset.name,
    method: opts.method,
    label_source: formatLabelSource(opts.labelSource),
    backbone,
    backbone_version: view.backboneVersion,
    backend: backend.name,
    backend_provider: backend.provider,
    seed: opts.seed,
    noise: { rate: opts.noiseRate, type: opts.noiseRate > 0 ? opts.noiseType : null, flips: noise.flips.length },
    head,
    ...(opts.method === 'scn' ? { scn, loss: 'gamma * L_RR + (1 - gamma) * L_WCE', propose } : {}),
    ...(opts.method === 'cl' ? { cl: { folds: opts.folds, filter: 'prune_by_noise_rate' } } : {}),
    proposals: opts.method === 'scn' ? SCN_PROPOSAL_RULE[propose] : PROPOSAL_RULE[opts.method],
    train_images: train.length,
    valid_images: valid.length,
    ...(trusted ? { trusted_decisions: trusted.reduce((a, b) => a + b, 0) } : {}),
  };
  const runId = createRun(db, {
    datasetId: dataset.id,
    method: opts.method,
    backbone,
    backend: backend.name,
    seed: opts.seed,
    noiseRate: opts.noiseRate,
    noiseType: opts.noiseRate > 0 ? opts.noiseType : null,
    config,
  });

  const t0 = performance.now();
  try {
    const data = { features: view.features, dim: view.dim, classes: C, labels, train, valid, trusted };
    const total = opts.method === 'cl' ? head.epochs * opts.folds : head.epochs;
    let done = 0;
    const tick = (stats: EpochStats): void => onProgress?.({ done: ++done, total, stats });
    const isTrain = new Uint8Array(N);
    for (const r of train) isTrain[r] = 1;

    let epochs: EpochStats[];
    let probs: Float32Array;
    let trainedLabels: Int32Array = labels;
    let importance: Float32Array | null = null;
    let importanceMean: Float32Array | null = null;
    let proposed: (i: number) => number;
    if (opts.method === 'cl') {
      const r = confidentLearning(data, head, opts.folds, (_f, s) => tick(s));
      epochs = r.epochs;
      probs = r.probs;
      proposed = (i) => (r.issues[i] ? argmax(probs, i, C) : -1);
    } else {
      const r = trainHead(data, { ...head, ...scn, method: opts.method }, tick);
      ({ epochs, probs, importance, importanceMean, trainedLabels } = r);
      if (opts.method === 'scn' && propose === 'relabeled') {
        // The label SCN trained with at the end, when relabeling changed it.
        proposed = (i) => (trainedLabels[i] !== labels[i] ? trainedLabels[i]! : -1);
      } else if (opts.method === 'scn' && propose === 'predicted') {
        // The self-cured classifier's prediction, when it differs from the given label.
        proposed = (i) => {
          const a = argmax(probs, i, C);
          return a !== labels[i] ? a : -1;
        };
      } else {
        // Eq. 4's rule once more at the end, with the final classifier, on every training image: P_max - P_given > delta2.
        // (For ce, the same rule on the baseline's in-sample predictions.)
        proposed = (i) => {
          const a = argmax(probs, i, C);
          return a !== labels[i] && probs[i * C + a]! - probs[i * C + labels[i]!]! > scn.delta2 ? a : -1;
        };
      }
    }
    const durationS = (performance.now() - t0) / 1000;

    const images: RunImageRow[] = [];
    for (let i = 0; i < N; i++) {
      const y = labels[i]! >= 0 ? labels[i]! : view.given[i]!;
      const p = Array.from(probs.subarray(i * C, i * C + C));
      const prop = isTrain[i] && !trusted?.[i] ? proposed(i) : -1;
      images.push({
        image_id: view.imageIds[i]!,
        given_label: tax[y]!,
        trained_label: tax[isTrain[i] ? trainedLabels[i]! : y]!,
        in_training: isTrain[i]!,
        importance: importance ? importance[i]! : null,
        importance_mean: importanceMean ? importanceMean[i]! : null,
        probs: p,
        predicted_label: tax[argmax(probs, i, C)]!,
        proposed_label: prop >= 0 ? tax[prop]! : null,
        proposal_margin: prop >= 0 ? p[prop]! - p[y]! : null,
      });
    }
    saveRunResults(db, runId, {
      epochs,
      noise: noise.flips.map((f) => ({ imageId: view.imageIds[f.index]!, original: tax[f.original]!, noisy: tax[f.noisy]! })),
      images,
      durationS,
    });
    const report = reportRun(db, runId);
    setRunMetrics(db, runId, summarize(report));
    return { runId, report };
  } catch (e) {
    failRun(db, runId, (e as Error).message, (performance.now() - t0) / 1000);
    throw e;
  }
}

/**
 * Applies the review decisions in force (any annotator, any run) to the training rows' labels, in place, and marks
 * those rows trusted. Returns the mask (1 = trusted), per row.
 */
function trustedLabels(db: DB, datasetId: number, imageIds: number[], train: number[], labels: Int32Array, tax: string[]): Uint8Array {
  const decided = new Map(
    (
      db
        .prepare(`SELECT e.image_id, e.new_label FROM effective_decisions e JOIN images i ON i.id = e.image_id WHERE i.dataset_id = ?`)
        .all(datasetId) as { image_id: number; new_label: string }[]
    ).map((r) => [r.image_id, r.new_label]),
  );
  const mask = new Uint8Array(imageIds.length);
  for (const i of train) {
    const label = decided.get(imageIds[i]!);
    if (label === undefined) continue;
    const k = tax.indexOf(label);
    if (k < 0) throw new FerCleanError(`image ${imageIds[i]}: decided label '${label}' is not a class of this dataset`);
    labels[i] = k;
    mask[i] = 1;
  }
  return mask;
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
};

/** The scores of a stored run, recomputed from its stored rows. */
export function reportRun(db: DB, runId: number): RunReport {
  const run = getRun(db, runId);
  return scoreRun(run, runImagesForScoring(db, runId), runEpochs(db, runId).length);
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

function validate(h: HeadOptions, s: ScnOptions, o: TrainRunOptions): void {
  const bad: string[] = [];
  const check = (ok: boolean, msg: string): void => void (ok || bad.push(msg));
  check(Number.isInteger(h.hidden) && h.hidden >= 0, `--hidden ${h.hidden}: expected a whole number >= 0`);
  check(h.dropout >= 0 && h.dropout < 1, `--dropout ${h.dropout}: expected a rate in [0, 1)`);
  check(h.lr > 0, `--lr ${h.lr}: expected > 0`);
  check(h.lrDecay > 0 && h.lrDecay <= 1, `--lr-decay ${h.lrDecay}: expected in (0, 1]`);
  check(h.weightDecay >= 0, `--weight-decay ${h.weightDecay}: expected >= 0`);
  check(Number.isInteger(h.batchSize) && h.batchSize >= 2, `--batch ${h.batchSize}: expected a whole number >= 2`);
  check(Number.isInteger(h.epochs) && h.epochs >= 1, `--epochs ${h.epochs}: expected a whole number >= 1`);
  check(s.beta > 0 && s.beta < 1, `--beta ${s.beta}: expected a fraction in (0, 1)`);
  check(s.delta1 >= 0, `--delta1 ${s.delta1}: expected >= 0`);
  check(s.delta2 >= 0 && s.delta2 < 1, `--delta2 ${s.delta2}: expected in [0, 1)`);
  check(s.gamma >= 0 && s.gamma <= 1, `--gamma ${s.gamma}: expected in [0, 1]`);
  check(Number.isInteger(s.relabelEpoch) && s.relabelEpoch >= 1, `--relabel-epoch ${s.relabelEpoch}: expected a whole number >= 1`);
  check(s.relabelScope === 'low' || s.relabelScope === 'all', `--relabel-scope ${s.relabelScope}: expected low or all`);
  check(Number.isInteger(s.importanceWindow) && s.importanceWindow >= 1, `--importance-window ${s.importanceWindow}: expected a whole number >= 1`);
  check(Number.isInteger(o.folds) && o.folds >= 2, `--folds ${o.folds}: expected a whole number >= 2`);
  check(o.noiseRate >= 0 && o.noiseRate < 1, `--noise ${o.noiseRate}: expected a fraction in [0, 1)`);
  check(o.noiseType === 'symmetric' || o.noiseType === 'asymmetric', `--noise-type ${o.noiseType}: expected symmetric or asymmetric`);
  check(Number.isInteger(o.seed) && o.seed >= 0, `--seed ${o.seed}: expected a whole number >= 0`);
  if (bad.length) throw new FerCleanError(bad.length === 1 ? bad[0]! : `${bad.length} bad options`, bad.length > 1 ? bad : []);
}
