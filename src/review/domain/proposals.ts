import { FerCleanError } from '../../errors.js';
import { boxOfRow, type FaceBox } from '../../features/facebox.js';
import type { DB } from '../../store/db.js';
import { imageFile } from '../../store/datasets.js';
import { resolveRun, type ResolvedRun } from '../../store/runs.js';
import { compareItems, type FlagFilter } from './order.js';
import { lastQualityCheck, qualityFlags } from '../../quality/stored.js';
import { QUALITY_FLAGS, type QualityFlag } from '../../quality/checks.js';

/**
 * The finished run a review works on (the Ink session and the scripted verbs alike), by resolveRun's rule: `runId`
 * when given (it names its dataset; a `dataset` that differs is an error), else the latest finished run of `dataset`
 * (by name; without one, the only dataset).
 */
export function reviewRun(db: DB, runId: number | undefined, dataset: string | undefined): ResolvedRun {
  return resolveRun(db, { runId, dataset, purpose: 'to review' });
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
  /** The run's P(proposed) and P(given) for the image (0 where not a finite number): the estimates' features. */
  pProposed: number;
  pGiven: number;
}

/** What is shown of an item besides the queue fields. */
export interface ItemDetail {
  /** Absolute path of the image file. */
  file: string;
  /** The face box within the file (images.crop_*), or null when the whole image is the face. */
  box: FaceBox | null;
  /** The image's data-quality flag (images.quality, e.g. 'no-face'), or null. */
  quality: string | null;
  /** Its quality flags from `fer-clean quality` (quality_flags), in QUALITY_FLAGS order; empty when none. */
  flags?: string[];
  /** Predicted probabilities in taxonomy order. */
  probs: number[];
  predicted: string;
  importanceMean: number | null;
}

type Where = { path: string; split: string };

/**
 * A queue item as read from the indexes (migration 005): its path and split are read from `images` the first time
 * they are asked for, so that a queue of 187k proposals does not read 187k paths to show one face.
 */
class StoredItem implements QueueItem {
  #where: Where | undefined;
  constructor(
    readonly imageId: number,
    readonly given: string,
    readonly runGiven: string,
    readonly proposed: string,
    readonly margin: number | null,
    readonly importance: number | null,
    readonly pProposed: number,
    readonly pGiven: number,
    private readonly whereOf: (imageId: number) => Where,
  ) {}
  get path(): string {
    return (this.#where ??= this.whereOf(this.imageId)).path;
  }
  get split(): string {
    return (this.#where ??= this.whereOf(this.imageId)).split;
  }
}

/** Path and split of one image (the lookup behind StoredItem). */
function whereOf(db: DB): (imageId: number) => Where {
  const stmt = db.prepare(`SELECT path, split FROM images WHERE id = ?`);
  return (imageId) => {
    const r = stmt.get(imageId) as Where | undefined;
    if (!r) throw new FerCleanError(`image ${imageId} is in a run but no longer in the store`);
    return r;
  };
}

type Row = [
  imageId: number,
  given: string,
  runGiven: string,
  proposed: string,
  margin: number | null,
  importance: number | null,
  pProposed: number | null,
  pGiven: number | null,
];
/** One pass over the proposals; P(class) is taken from the probs JSON in SQL (NULL for an unknown class or a null). */
const rowSql = (taxonomy: readonly string[], index: string): string => {
  const p = (col: string): string => `json_extract(ri.probs, '$[' || ${classIndexSql(taxonomy, col, 'NULL')} || ']')`;
  return `SELECT ri.image_id, coalesce(l.given, ri.given_label), ri.given_label, ri.proposed_label, ri.proposal_margin, ri.importance,
                 ${p('ri.proposed_label')}, ${p('coalesce(l.given, ri.given_label)')}
          FROM run_images ri INDEXED BY ${index} LEFT JOIN labels l ON l.image_id = ri.image_id
          WHERE ri.run_id = ? AND ri.proposed_label IS NOT NULL`;
};

/** Sort keys of each order, the same in SQL (a window) and in compareItems (order.ts: the whole queue). */
const ORDER_SQL: Record<ReviewOrder, string> = {
  margin: `ri.proposal_margin DESC, ri.image_id`,
  importance: `ri.importance IS NULL, ri.importance ASC, ri.proposal_margin DESC, ri.image_id`,
  class: `{rank}, ri.proposal_margin DESC, ri.image_id`,
};

/** SQL: the place of the label in column `col` in the taxonomy, else `otherwise` (an SQL expression). */
export const classIndexSql = (taxonomy: readonly string[], col: string, otherwise: string): string =>
  `CASE ${col} ${taxonomy.map((c, i) => `WHEN '${c.replace(/'/g, "''")}' THEN ${i}`).join(' ')} ELSE ${otherwise} END`;

const toItems = (rows: Row[], where: (imageId: number) => Where): QueueItem[] =>
  rows.map((r) => new StoredItem(r[0], r[1], r[2], r[3], r[4], r[5], r[6] ?? 0, r[7] ?? 0, where));

/**
 * The run's images with a proposed label, in review order. Read from an index in image order (the labels join then
 * walks its table in order) and sorted here; paths are read when asked for.
 */
export function loadQueue(db: DB, run: ResolvedRun, order: ReviewOrder = 'margin'): QueueItem[] {
  const rows = db.prepare(`${rowSql(run.dataset.taxonomy, 'run_images_queue')} ORDER BY ri.image_id`).raw().all(run.id) as Row[];
  return toItems(rows, whereOf(db)).sort(compareItems(order, run.dataset.taxonomy));
}

/**
 * The first `limit` items of loadQueue(db, run, order), read without reading the rest (in margin order straight
 * from its index): what a review needs to show its first face.
 */
export function loadQueueHead(db: DB, run: ResolvedRun, order: ReviewOrder, limit: number): QueueItem[] {
  const sql =
    rowSql(run.dataset.taxonomy, order === 'margin' ? 'run_images_queue_by_margin' : 'run_images_queue') +
    ` ORDER BY ${ORDER_SQL[order].replace('{rank}', classIndexSql(run.dataset.taxonomy, 'coalesce(l.given, ri.given_label)', String(run.dataset.taxonomy.length)))} LIMIT ?`;
  return toItems(db.prepare(sql).raw().all(run.id, limit) as Row[], whereOf(db));
}

/**
 * The items of loadQueue(db, run, 'margin') that come after `after` (null: from the start), at most `limit` (-1: all
 * the rest): the next slice of the margin order, read from its index without reading what comes before (keyset on
 * margin DESC, image id; NULL margins come last, as in SQL). What a session reads between keys.
 */
export function loadMarginSlice(db: DB, run: ResolvedRun, after: QueueItem | null, limit: number): QueueItem[] {
  const base = rowSql(run.dataset.taxonomy, 'run_images_queue_by_margin');
  const tail = ` ORDER BY ${ORDER_SQL.margin} LIMIT ?`;
  const where = whereOf(db);
  const read = (sql: string, ...args: unknown[]): QueueItem[] => toItems(db.prepare(base + sql + tail).raw().all(run.id, ...args) as Row[], where);
  if (after === null) return read('', limit);
  let out: QueueItem[] = [];
  if (after.margin !== null) {
    out = read(` AND ri.proposal_margin <= ? AND NOT (ri.proposal_margin = ? AND ri.image_id <= ?)`, after.margin, after.margin, after.imageId, limit);
    if (limit >= 0 && out.length >= limit) return out;
  }
  const left = limit < 0 ? -1 : limit - out.length;
  return out.concat(read(` AND ri.proposal_margin IS NULL AND ri.image_id > ?`, after.margin === null ? after.imageId : -1, left));
}

/** The run's proposals with image id above `afterImageId`, in image order, at most `limit`: a slice of loadQueue before its sort. */
export function loadImageSlice(db: DB, run: ResolvedRun, afterImageId: number, limit: number): QueueItem[] {
  const sql = `${rowSql(run.dataset.taxonomy, 'run_images_queue')} AND ri.image_id > ? ORDER BY ri.image_id LIMIT ?`;
  return toItems(db.prepare(sql).raw().all(run.id, afterImageId, limit) as Row[], whereOf(db));
}

/** How many proposals the run makes (the length of its queue). */
export function countQueue(db: DB, run: ResolvedRun): number {
  return (db.prepare(`SELECT count(*) AS n FROM run_images WHERE run_id = ? AND proposed_label IS NOT NULL`).get(run.id) as { n: number }).n;
}

/** Probabilities, prediction and file of one queued image. */
export function loadDetail(db: DB, run: ResolvedRun, imageId: number): ItemDetail {
  const r = db
    .prepare(
      `SELECT ri.probs, ri.predicted_label, ri.importance_mean, i.path, i.quality, i.crop_x, i.crop_y, i.crop_w, i.crop_h,
         (SELECT group_concat(f.flag, ',') FROM quality_flags f WHERE f.image_id = i.id) AS flags
       FROM run_images ri JOIN images i ON i.id = ri.image_id
       WHERE ri.run_id = ? AND ri.image_id = ?`,
    )
    .get(run.id, imageId) as
    | ({ probs: string; predicted_label: string; importance_mean: number | null; path: string; quality: string | null; flags: string | null } & Parameters<
        typeof boxOfRow
      >[0])
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
    flags: r.flags ? r.flags.split(',').sort((a, b) => QUALITY_FLAGS.indexOf(a as QualityFlag) - QUALITY_FLAGS.indexOf(b as QualityFlag)) : [],
    probs,
    predicted: r.predicted_label,
    importanceMean: r.importance_mean,
  };
}

/**
 * The filter to the images of a dataset that carry a quality flag, as the last `fer-clean quality` stored them.
 * Refuses an unknown flag (naming the known ones) and a dataset never checked (saying which command checks it).
 */
export function flagFilter(db: DB, dataset: { id: number; name: string }, flag: string): FlagFilter {
  if (!(QUALITY_FLAGS as readonly string[]).includes(flag)) {
    throw new FerCleanError(`unknown quality flag '${flag}' (known: ${QUALITY_FLAGS.join(', ')})`);
  }
  if (!lastQualityCheck(db, dataset.id)) {
    throw new FerCleanError(`dataset ${dataset.name} has no quality check yet: run \`fer-clean quality --dataset ${dataset.name}\` first`);
  }
  const images = new Set(qualityFlags(db, dataset.id, { flag: flag as QualityFlag }).map((r) => r.image_id));
  return { by: 'flag', flag: flag as QualityFlag, images };
}
