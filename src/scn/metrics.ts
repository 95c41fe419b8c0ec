/**
 * Scores of a run, computed from what it stored: test accuracy, noise detection (against injected flips for a
 * synthetic-noise run, else against reference-vs-given disagreements), relabel accuracy, importance histogram.
 */
import type { RunRow, ScoredImageRow } from '../store/runs.js';

export interface Detection {
  /** What counts as a wrong label: 'synthetic' (this run's flips) or 'reference' (given != reference). */
  truth: 'synthetic' | 'reference';
  /** Training images that can be scored (all for synthetic; those with a reference label otherwise). */
  scored: number;
  noisy: number;
  proposals: number;
  true_positives: number;
  precision: number | null;
  recall: number | null;
  f1: number | null;
  /** Fraction of wrong labels among the 10% scored images of lowest importance (scn only). */
  low_importance_precision: number | null;
}

export interface RunReport {
  run_id: number;
  method: string;
  status: string;
  backbone: string;
  backend: string;
  seed: number;
  noise_rate: number;
  noise_type: string | null;
  label_source: string;
  duration_s: number | null;
  epochs: number;
  /** Accuracy on the test split against the reference labels when the dataset has them, else the given labels. */
  test_accuracy: number | null;
  test_accuracy_reference: number | null;
  test_accuracy_given: number | null;
  test_images: number;
  train_images: number;
  detection: Detection | null;
  /** Proposals whose label equals the true label (reference, or the pre-flip label), over scored proposals. */
  relabel_accuracy: number | null;
  /** The same over proposals that are true detections only. */
  relabel_accuracy_detected: number | null;
  /** Final importance of the training images in 10 bins over [0, 1]; clean/noisy when detection is scored. */
  importance_histogram: { edges: number[]; clean: number[]; noisy: number[]; unscored: number[] } | null;
  /** given -> proposed pairs of the proposals, most frequent first, with how many of each are right. */
  proposal_confusions: { from: string; to: string; count: number; correct: number | null }[];
}

export const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);

export function f1Score(precision: number | null, recall: number | null): number | null {
  if (precision === null || recall === null) return null;
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

/** The true label of a training image for scoring, or null when it cannot be scored. */
function truthOf(r: ScoredImageRow, synthetic: boolean): string | null {
  if (synthetic) return r.noise_original ?? r.given_label;
  return r.reference;
}

function accuracy(rows: ScoredImageRow[], label: (r: ScoredImageRow) => string | null): { acc: number | null; n: number } {
  let ok = 0;
  let n = 0;
  for (const r of rows) {
    const y = label(r);
    if (y === null) continue;
    n++;
    if (r.predicted_label === y) ok++;
  }
  return { acc: ratio(ok, n), n };
}

/** Training images with their truth (pre-flip label for a synthetic run, else the reference): what scoring reads. */
interface Truth {
  /** The true label, null when the image cannot be scored. */
  of: (r: ScoredImageRow) => string | null;
  isNoisy: (r: ScoredImageRow) => boolean;
}

/** Noise detection by the proposals, and how often a proposal is the true label (all / true detections only). */
function detectionScores(
  scored: ScoredImageRow[],
  truth: Truth,
  synthetic: boolean,
): { detection: Detection; relabelAccuracy: number | null; relabelAccuracyDetected: number | null } {
  let tp = 0;
  let proposals = 0;
  let noisy = 0;
  let right = 0;
  let rightDetected = 0;
  for (const r of scored) {
    const bad = truth.isNoisy(r);
    if (bad) noisy++;
    if (r.proposed_label === null) continue;
    proposals++;
    const correct = r.proposed_label === truth.of(r);
    if (correct) right++;
    if (bad) {
      tp++;
      if (correct) rightDetected++;
    }
  }
  const precision = ratio(tp, proposals);
  const recall = ratio(tp, noisy);
  let lowImp: number | null = null;
  const withImp = scored.filter((r) => r.importance !== null);
  if (withImp.length > 0) {
    const k = Math.max(1, Math.ceil(withImp.length * 0.1));
    const lowest = [...withImp].sort((a, b) => a.importance! - b.importance! || a.image_id - b.image_id).slice(0, k);
    lowImp = lowest.filter(truth.isNoisy).length / k;
  }
  return {
    detection: {
      truth: synthetic ? 'synthetic' : 'reference',
      scored: scored.length,
      noisy,
      proposals,
      true_positives: tp,
      precision,
      recall,
      f1: f1Score(precision, recall),
      low_importance_precision: lowImp,
    },
    relabelAccuracy: ratio(right, proposals),
    relabelAccuracyDetected: ratio(rightDetected, tp),
  };
}

/** Final importance of the training images in 10 bins over [0, 1], split into clean, noisy and unscored. */
function importanceHistogram(trained: ScoredImageRow[], truth: Truth): RunReport['importance_histogram'] {
  if (!trained.some((r) => r.importance !== null)) return null;
  const bins = 10;
  const clean = new Array<number>(bins).fill(0);
  const noisy = new Array<number>(bins).fill(0);
  const unscored = new Array<number>(bins).fill(0);
  for (const r of trained) {
    if (r.importance === null) continue;
    const b = Math.min(bins - 1, Math.max(0, Math.floor(r.importance * bins)));
    if (truth.of(r) === null) unscored[b]!++;
    else if (truth.isNoisy(r)) noisy[b]!++;
    else clean[b]!++;
  }
  return { edges: Array.from({ length: bins + 1 }, (_, i) => i / bins), clean, noisy, unscored };
}

/** given -> proposed pairs of the proposals, most frequent first; `correct` counts those equal to the truth. */
function proposalConfusions(trained: ScoredImageRow[], truth: Truth, hasTruth: boolean): RunReport['proposal_confusions'] {
  const pairs = new Map<string, { from: string; to: string; count: number; correct: number | null }>();
  for (const r of trained) {
    if (r.proposed_label === null) continue;
    const key = `${r.given_label}\u0000${r.proposed_label}`;
    let p = pairs.get(key);
    if (!p) pairs.set(key, (p = { from: r.given_label, to: r.proposed_label, count: 0, correct: hasTruth ? 0 : null }));
    p.count++;
    const t = truth.of(r);
    if (p.correct !== null && t !== null && t === r.proposed_label) p.correct++;
  }
  return [...pairs.values()].sort((a, b) => b.count - a.count || a.from.localeCompare(b.from) || a.to.localeCompare(b.to));
}

export function scoreRun(run: RunRow, rows: ScoredImageRow[], epochs: number): RunReport {
  const synthetic = run.noise_rate > 0;
  const test = rows.filter((r) => r.split === 'test');
  const ref = accuracy(test, (r) => r.reference);
  const giv = accuracy(test, (r) => r.dataset_given);
  const trained = rows.filter((r) => r.in_training === 1);
  const truth: Truth = {
    of: (r) => truthOf(r, synthetic),
    isNoisy: (r) => truthOf(r, synthetic) !== r.given_label,
  };
  const scored = trained.filter((r) => truth.of(r) !== null);
  const hasTruth = synthetic || scored.length > 0;
  const d = hasTruth ? detectionScores(scored, truth, synthetic) : null;
  const config = run.config as { label_source?: string };
  return {
    run_id: run.id,
    method: run.method,
    status: run.status,
    backbone: run.backbone,
    backend: run.backend,
    seed: run.seed,
    noise_rate: run.noise_rate,
    noise_type: run.noise_type,
    label_source: config.label_source ?? 'given',
    duration_s: run.duration_s,
    epochs,
    test_accuracy: ref.n > 0 ? ref.acc : giv.acc,
    test_accuracy_reference: ref.acc,
    test_accuracy_given: giv.acc,
    test_images: test.length,
    train_images: trained.length,
    detection: d?.detection ?? null,
    relabel_accuracy: d?.relabelAccuracy ?? null,
    relabel_accuracy_detected: d?.relabelAccuracyDetected ?? null,
    importance_histogram: importanceHistogram(trained, truth),
    proposal_confusions: proposalConfusions(trained, truth, hasTruth),
  };
}
