/**
 * A run from imported out-of-fold predicted probabilities (`fer-clean train --probs FILE`): what cleanlab's
 * find_label_issues takes. The proposals follow cleanlab's default rule (filter_by='prune_by_noise_rate', see
 * cl.ts's findLabelIssues) on the training images, each proposing its argmax class; the run is stored like any
 * other (method 'probs'), so report, queue, review, decide, accept and export work on it unchanged.
 */
import { basename, resolve } from 'node:path';
import { FerCleanError } from '../errors.js';
import { imageIndex, importVersion } from '../features/import.js';
import { openMatrix, type MatrixSource } from '../features/matrix.js';
import type { DB } from '../store/db.js';
import { resolveDataset } from '../store/datasets.js';
import { createRun, saveRunResults, setRunMetrics } from '../store/runs.js';
import { readLabel } from '../taxonomy.js';
import { argmax } from './argmax.js';
import { findLabelIssues } from './cl.js';
import { loadLabelView } from './data.js';
import { imageRows, PROPOSAL_RULE, reportRun, summarize, trustedLabels } from './index.js';
import type { RunReport } from './metrics.js';

/** How far a row's probabilities may sum from 1 (float16 files: 1e-2, their precision is about 1e-3 per value). */
export const PROBS_TOLERANCE = 1e-3;
export const PROBS_TOLERANCE_FLOAT16 = 1e-2;

export interface ProbsRunOptions extends MatrixSource {
  /** Dataset name (default: the only one). */
  dataset?: string;
  /**
   * Leave out of the run images with no row, and skip rows whose path names no image. Without it either is an error
   * and nothing is written.
   */
  skipBad?: boolean;
  /** Train rows' labels are the review decisions in force; decided images get no proposal (as `train --trust-decisions`). */
  trustDecisions?: boolean;
}

/**
 * Reads the file (every row checked: a known image, once; as many values as the dataset has classes, named by a CSV
 * header in any order; each in [0, 1] and summing to 1 within PROBS_TOLERANCE), then makes and stores the run. Any
 * bad input is a FerCleanError naming the file and line or row, raised before anything is written.
 */
export async function probsRun(db: DB, opts: ProbsRunOptions): Promise<{ runId: number; report: RunReport }> {
  const t0 = performance.now();
  const dataset = resolveDataset(db, opts.dataset);
  const tax = dataset.taxonomy;
  const C = tax.length;
  const input = await openMatrix(opts);
  const name = basename(opts.file);
  // Column k of the file is class order[k] of the dataset.
  let order: number[];
  if (input.columns) {
    order = input.columns.map((col) => {
      let cls: string;
      try {
        cls = readLabel(col, 'names', tax).cls;
      } catch {
        throw new FerCleanError(`${name}:1: column '${col}' is not a class of dataset '${dataset.name}' (${tax.join(', ')})`);
      }
      return tax.indexOf(cls);
    });
    const dup = order.find((k, i) => order.indexOf(k) !== i);
    if (dup !== undefined) throw new FerCleanError(`${name}:1: class '${tax[dup]}' has two columns`);
    const missing = tax.filter((_, k) => !order.includes(k));
    if (missing.length) throw new FerCleanError(`${name}:1: no column for class${missing.length > 1 ? 'es' : ''} ${missing.join(', ')} (dataset '${dataset.name}' has ${tax.join(', ')})`);
  } else {
    if (input.dim !== C) {
      throw new FerCleanError(`${name}: ${input.dim} columns, but dataset '${dataset.name}' has ${C} classes: columns must be ${tax.join(', ')} in this order`);
    }
    order = tax.map((_, k) => k);
  }
  const tolerance = input.dtype === 'float16' ? PROBS_TOLERANCE_FLOAT16 : PROBS_TOLERANCE;

  const view = loadLabelView(db, dataset, { kind: 'given' });
  const N = view.imageIds.length;
  const index = imageIndex(db, dataset.id);
  const rowOf = new Int32Array(index.maxId + 1).fill(-1);
  view.imageIds.forEach((id, i) => (rowOf[id] = i));
  const probs = new Float32Array(N * C);
  const has = new Uint8Array(N);
  const unmatched: string[] = [];
  let unlabelled = 0;
  for await (const row of input.read()) {
    const id = index.lookup(row.path);
    if (id === undefined) {
      if (!opts.skipBad) throw new FerCleanError(`${row.where}: path '${row.path}' names no image of dataset '${dataset.name}' (relative to ${dataset.root}; --skip-bad skips such rows)`);
      unmatched.push(row.where);
      continue;
    }
    const i = rowOf[id]!;
    if (i < 0) {
      unlabelled++; // an image flagged at ingest, or with a non-expression label: not part of any run
      continue;
    }
    if (has[i]) throw new FerCleanError(`${row.where}: second row for image '${row.path}'`);
    has[i] = 1;
    let sum = 0;
    for (let k = 0; k < C; k++) {
      const p = row.values[k]!;
      if (p < -tolerance || p > 1 + tolerance) throw new FerCleanError(`${row.where}: probability ${p} of class '${tax[order[k]!]}' is outside [0, 1]`);
      sum += p;
    }
    if (Math.abs(sum - 1) > tolerance) {
      throw new FerCleanError(`${row.where}: probabilities sum to ${+sum.toFixed(6)}, not 1 (within ${tolerance}): write softmax outputs, one column per class`);
    }
    for (let k = 0; k < C; k++) probs[i * C + order[k]!] = Math.max(0, row.values[k]!) / sum;
  }
  const missing = view.imageIds.filter((_, i) => !has[i]);
  if (missing.length && !opts.skipBad) {
    const paths = missing.slice(0, 5).map((id) => (db.prepare(`SELECT path FROM images WHERE id = ?`).get(id) as { path: string }).path);
    throw new FerCleanError(
      `${name}: ${missing.length} labelled image${missing.length > 1 ? 's' : ''} of dataset '${dataset.name}' ${missing.length > 1 ? 'have' : 'has'} no row: ${paths.join(', ')}${missing.length > 5 ? ', ...' : ''} (--skip-bad leaves them out of the run)`,
    );
  }

  // Only the images with a row take part.
  const keep = Array.from(has, Boolean);
  const pick = <T>(xs: ArrayLike<T>): T[] => Array.from(xs).filter((_, i) => keep[i]);
  const imageIds = pick(view.imageIds);
  const splits = pick(view.splits);
  const given = Int32Array.from(pick(view.given));
  const labels = Int32Array.from(pick(view.source));
  const P = new Float32Array(imageIds.length * C);
  let r = 0;
  for (let i = 0; i < N; i++) if (has[i]) P.set(probs.subarray(i * C, (i + 1) * C), r++ * C);
  const train: number[] = [];
  const valid: number[] = [];
  splits.forEach((s, i) => {
    if (labels[i]! < 0) return;
    if (s === 'train') train.push(i);
    else if (s === 'valid') valid.push(i);
  });
  if (train.length < 2) throw new FerCleanError(`dataset '${dataset.name}': ${train.length} training image(s) with a row in ${name}: too few to find label issues`);
  const trusted = opts.trustDecisions ? trustedLabels(db, dataset.id, imageIds, train, labels, tax) : undefined;

  // cleanlab's find_label_issues on the training images; each flagged one proposes its argmax class.
  const trainLabels = Int32Array.from(train, (i) => labels[i]!);
  const trainProbs = new Float32Array(train.length * C);
  train.forEach((i, q) => trainProbs.set(P.subarray(i * C, (i + 1) * C), q * C));
  const mask = findLabelIssues(trainLabels, trainProbs, C);
  const proposed = new Int32Array(imageIds.length).fill(-1);
  const isTrain = new Uint8Array(imageIds.length);
  train.forEach((i, q) => {
    isTrain[i] = 1;
    if (mask[q] && !trusted?.[i]) proposed[i] = argmax(P, i, C);
  });

  const version = await importVersion(opts);
  const config = {
    dataset: dataset.name,
    method: 'probs',
    label_source: 'given',
    probs_file: resolve(opts.file),
    ...(opts.paths ? { paths_file: resolve(opts.paths) } : {}),
    probs_version: version,
    probs_format: `${input.format}${input.format === 'npy' ? ` ${input.dtype}` : ''}`,
    tolerance,
    filter: 'prune_by_noise_rate (cleanlab find_label_issues default)',
    proposals: PROPOSAL_RULE.probs,
    images: imageIds.length,
    images_without_row: missing.length,
    rows_naming_no_image: unmatched.length,
    rows_of_unlabelled_images: unlabelled,
    train_images: train.length,
    valid_images: valid.length,
    ...(trusted ? { trusted_decisions: trusted.reduce((a, b) => a + b, 0) } : {}),
  };
  const runId = createRun(db, {
    datasetId: dataset.id,
    method: 'probs',
    backbone: `probs:${name}`,
    backend: 'none',
    seed: 0,
    noiseRate: 0,
    noiseType: null,
    config,
  });
  const images = imageRows({ imageIds, given }, labels, {
    epochs: [],
    probs: P,
    trainedLabels: labels,
    importance: null,
    importanceMean: null,
    proposed,
    isTrain,
  }, tax);
  saveRunResults(db, runId, { epochs: [], noise: [], images, durationS: (performance.now() - t0) / 1000 });
  const report = reportRun(db, runId);
  setRunMetrics(db, runId, summarize(report));
  return { runId, report };
}
