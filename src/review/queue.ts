import { FerCleanError } from '../errors.js';
import { boxOfRow, type FaceBox } from '../features/facebox.js';
import type { DB } from '../store/db.js';
import { imageFile, resolveDataset } from '../store/datasets.js';
import { resolveRun, type ResolvedRun } from '../store/runs.js';

/**
 * The finished run a review works on (the Ink session and the scripted verbs alike): `runId` when given, else the
 * latest finished run of `dataset` (by name; without one, the only dataset).
 */
export function reviewRun(db: DB, runId: number | undefined, dataset: string | undefined): ResolvedRun {
  return resolveRun(db, { runId, dataset: runId === undefined ? resolveDataset(db, dataset) : undefined, purpose: 'to review' });
}

/** Review order: highest proposal margin first, least important (lowest alpha) first, or by given class. */
export type ReviewOrder = 'margin' | 'importance' | 'class';
export const REVIEW_ORDERS: readonly ReviewOrder[] = ['margin', 'importance', 'class'];

/** One image the run proposes to relabel. */
export interface QueueItem {
  imageId: number;
  /** Path relative to the dataset root, as stored. */
  path: string;
  split: string;
  /** The dataset's label (labels.given): what export writes when the proposal is rejected. */
  given: string;
  /** The label the run was given (differs from `given` only for runs with synthetic noise). */
  runGiven: string;
  proposed: string;
  margin: number | null;
  importance: number | null;
}

/** What is shown of an item besides the queue fields. */
export interface ItemDetail {
  /** Absolute path of the image file. */
  file: string;
  /** The face box within the file (images.crop_*), or null when the whole image is the face. */
  box: FaceBox | null;
  /** The image's data-quality flag (images.quality, e.g. 'no-face'), or null. */
  quality: string | null;
  /** Predicted probabilities in taxonomy order. */
  probs: number[];
  predicted: string;
  importanceMean: number | null;
}

const ORDER_SQL: Record<ReviewOrder, string> = {
  margin: `ri.proposal_margin IS NULL, ri.proposal_margin DESC, ri.image_id`,
  importance: `ri.importance IS NULL, ri.importance ASC, ri.proposal_margin DESC, ri.image_id`,
  // Given class in taxonomy order (the CASE list is built per dataset), then margin.
  class: `given_rank, ri.proposal_margin IS NULL, ri.proposal_margin DESC, ri.image_id`,
};

/** The run's images with a proposed label, in review order. */
export function loadQueue(db: DB, run: ResolvedRun, order: ReviewOrder = 'margin'): QueueItem[] {
  const taxonomy = run.dataset.taxonomy;
  const rank = `CASE l.given ${taxonomy.map((c, i) => `WHEN '${c.replace(/'/g, "''")}' THEN ${i}`).join(' ')} ELSE ${taxonomy.length} END`;
  const rows = db
    .prepare(
      `SELECT ri.image_id AS imageId, i.path, i.split, coalesce(l.given, ri.given_label) AS given, ri.given_label AS runGiven,
              ri.proposed_label AS proposed, ri.proposal_margin AS margin, ri.importance, ${rank} AS given_rank
       FROM run_images ri
       JOIN images i ON i.id = ri.image_id
       LEFT JOIN labels l ON l.image_id = ri.image_id
       WHERE ri.run_id = ? AND ri.proposed_label IS NOT NULL
       ORDER BY ${ORDER_SQL[order]}`,
    )
    .all(run.id) as (QueueItem & { given_rank?: number })[];
  for (const r of rows) delete r.given_rank;
  return rows;
}

/** Probabilities, prediction and file of one queued image. */
export function loadDetail(db: DB, run: ResolvedRun, imageId: number): ItemDetail {
  const r = db
    .prepare(
      `SELECT ri.probs, ri.predicted_label, ri.importance_mean, i.path, i.quality, i.crop_x, i.crop_y, i.crop_w, i.crop_h
       FROM run_images ri JOIN images i ON i.id = ri.image_id
       WHERE ri.run_id = ? AND ri.image_id = ?`,
    )
    .get(run.id, imageId) as
    | ({ probs: string; predicted_label: string; importance_mean: number | null; path: string; quality: string | null } & Parameters<typeof boxOfRow>[0])
    | undefined;
  if (!r) throw new FerCleanError(`run ${run.id} has no image ${imageId}`);
  let probs: number[];
  try {
    probs = JSON.parse(r.probs) as number[];
  } catch {
    throw new FerCleanError(`run ${run.id}, image ${imageId}: probs is not valid JSON`);
  }
  return {
    file: imageFile(run.dataset.root, r.path),
    box: boxOfRow(r),
    quality: r.quality,
    probs,
    predicted: r.predicted_label,
    importanceMean: r.importance_mean,
  };
}
