/**
 * What a training run reads from the store: every image of a dataset (id, split, given and reference labels)
 * lined up with its cached embedding, and the labels the run is given.
 */
import { FerCleanError } from '../errors.js';
import type { DB } from '../store/db.js';
import type { DatasetRow } from '../store/datasets.js';
import { resolveRun } from '../store/runs.js';
import { loadEmbeddings } from '../features/store.js';
import { DEFAULT_TTA, type Tta } from '../features/tta.js';
import { usableSql } from '../features/facebox.js';

/** Where a run's labels come from: the dataset's labels, the reference labels, or another run's corrections. */
export type LabelSource = { kind: 'given' } | { kind: 'reference' } | { kind: 'run'; runId: number };

export function parseLabelSource(s: string): LabelSource {
  if (s === 'given' || s === 'reference') return { kind: s };
  const m = /^run:(\d+)$/.exec(s);
  if (m) return { kind: 'run', runId: Number(m[1]) };
  throw new FerCleanError(`label source '${s}': expected given, reference or run:ID (another run's corrected labels)`);
}

export const formatLabelSource = (s: LabelSource): string => (s.kind === 'run' ? `run:${s.runId}` : s.kind);

export interface DatasetView {
  imageIds: number[];
  splits: string[];
  /** Class index of labels.given, per image. */
  given: Int32Array;
  /** Class index of labels.reference, -1 where NULL. */
  reference: Int32Array;
  /** The labels this run is given (before synthetic noise), -1 where the source has none. */
  source: Int32Array;
  features: Float32Array;
  dim: number;
  backboneVersion: string;
}

/** A dataset's labelled images (usable, with an expression label), in image-id order, and the labels a run is given. */
export type LabelView = Pick<DatasetView, 'imageIds' | 'splits' | 'given' | 'reference' | 'source'>;

/**
 * The images a run can use, without their embeddings: every image not flagged unusable (no face, several faces) whose
 * label is an expression class, in id order, with the label source resolved. `--probs` runs start from here.
 */
export function loadLabelView(db: DB, dataset: DatasetRow, labelSource: LabelSource): LabelView {
  const all = db
    .prepare(
      `SELECT i.id, i.split, l.given, l.reference, coalesce(l.trainable, 1) AS trainable FROM images i LEFT JOIN labels l ON l.image_id = i.id
       WHERE i.dataset_id = ? AND ${usableSql('i')} ORDER BY i.id`,
    )
    .all(dataset.id) as { id: number; split: string; given: string | null; reference: string | null; trainable: number }[];
  // Labels that are not expression classes (labels.trainable = 0: AffectNet none, uncertain, no-face) are kept in the
  // store for export but left out of the run: no training, no proposals.
  const rows = all.filter((r) => r.trainable !== 0);
  if (rows.length === 0) throw new FerCleanError(`dataset '${dataset.name}' has no image with an expression label to train on`);
  const tax = dataset.taxonomy;
  const index = (cls: string | null, id: number): number => {
    if (cls === null) return -1;
    const k = tax.indexOf(cls);
    if (k < 0) throw new FerCleanError(`image ${id}: label '${cls}' is not in the dataset's classes (${tax.join(', ')})`);
    return k;
  };
  const N = rows.length;
  const given = new Int32Array(N);
  const reference = new Int32Array(N);
  rows.forEach((r, i) => {
    if (r.given === null) throw new FerCleanError(`image ${r.id} of dataset '${dataset.name}' has no label`);
    given[i] = index(r.given, r.id);
    reference[i] = index(r.reference, r.id);
  });
  let source: Int32Array;
  if (labelSource.kind === 'given') source = Int32Array.from(given);
  else if (labelSource.kind === 'reference') {
    if (!reference.some((v) => v >= 0)) throw new FerCleanError(`dataset '${dataset.name}' has no reference labels (label source 'reference')`);
    source = Int32Array.from(reference);
  } else source = runCorrectedLabels(db, dataset, labelSource.runId, rows.map((r) => r.id), given);
  return { imageIds: rows.map((r) => r.id), splits: rows.map((r) => r.split), given, reference, source };
}

/**
 * Loads the dataset's images, labels and embeddings (rows in image-id order) and resolves the label source. Images
 * flagged unusable (no face, several faces) are left out, and so are images an imported backbone has no row for
 * (an import made with --skip-bad).
 */
export function loadDatasetView(db: DB, dataset: DatasetRow, backbone: string, labelSource: LabelSource, tta: Tta = DEFAULT_TTA): DatasetView {
  const emb = loadEmbeddings(db, { datasetId: dataset.id, backbone, tta });
  let labels = loadLabelView(db, dataset, labelSource);
  const same = emb.imageIds.length === labels.imageIds.length && labels.imageIds.every((id, i) => emb.imageIds[i] === id);
  if (same) return { ...labels, features: emb.data, dim: emb.dim, backboneVersion: emb.backboneVersion };
  // Embeddings of unlabelled (non-expression) images are dropped; labelled images with no embedding sit out (only an
  // import made with --skip-bad lacks some: loadEmbeddings refuses any other gap).
  const rowOf = new Map<number, number>();
  emb.imageIds.forEach((id, r) => rowOf.set(id, r));
  const keep = labels.imageIds.map((id) => rowOf.has(id));
  if (!keep.every(Boolean)) labels = pickRows(labels, keep);
  if (labels.imageIds.length === 0) throw new FerCleanError(`dataset '${dataset.name}': no labelled image has a '${backbone}' embedding`);
  const features = new Float32Array(labels.imageIds.length * emb.dim);
  labels.imageIds.forEach((id, i) => {
    const r = rowOf.get(id)!;
    features.set(emb.data.subarray(r * emb.dim, (r + 1) * emb.dim), i * emb.dim);
  });
  return { ...labels, features, dim: emb.dim, backboneVersion: emb.backboneVersion };
}

/** The entries of a label view where `keep` is true. */
function pickRows(v: LabelView, keep: boolean[]): LabelView {
  const pick = <T>(xs: ArrayLike<T>): T[] => Array.from(xs).filter((_, i) => keep[i]);
  return {
    imageIds: pick(v.imageIds),
    splits: pick(v.splits),
    given: Int32Array.from(pick(v.given)),
    reference: Int32Array.from(pick(v.reference)),
    source: Int32Array.from(pick(v.source)),
  };
}

/** Another run's labels with its proposals applied (coalesce(proposed, given)); images it did not see keep labels.given. */
function runCorrectedLabels(db: DB, dataset: DatasetRow, runId: number, ids: number[], given: Int32Array): Int32Array {
  resolveRun(db, { runId, dataset, purpose: 'as a label source' });
  const byId = new Map<number, string>();
  for (const r of db
    .prepare(`SELECT image_id, coalesce(proposed_label, given_label) AS label FROM run_images WHERE run_id = ?`)
    .all(runId) as { image_id: number; label: string }[]) {
    byId.set(r.image_id, r.label);
  }
  return Int32Array.from(ids, (id, i) => {
    const cls = byId.get(id);
    return cls === undefined ? given[i]! : dataset.taxonomy.indexOf(cls);
  });
}
