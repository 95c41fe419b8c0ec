import type { DB } from '../store/db.js';
import { resolveRun } from '../store/runs.js';

/** What a dataset holds besides its expression labels: labels kept but not trained on, and data-quality flags. */
export interface DatasetLabelStats {
  dataset_id: number;
  images: number;
  /** Images whose label is not an expression class (labels.trainable = 0), by label: e.g. { none: 3, 'no-face': 1 }. */
  non_expression: Record<string, number>;
  /** Images with a data-quality flag (images.quality), by flag: e.g. { 'no-face': 1 }. */
  quality: Record<string, number>;
}

/** Counts of non-expression labels and quality flags of a dataset, given by its id or by one of its runs (`runId`). */
export function datasetLabelStats(db: DB, which: { datasetId: number } | { runId: number }): DatasetLabelStats {
  const datasetId = 'runId' in which ? resolveRun(db, { runId: which.runId, done: false }).dataset_id : which.datasetId;
  const count = (sql: string): Record<string, number> =>
    Object.fromEntries((db.prepare(sql).all(datasetId) as { k: string; n: number }[]).map((r) => [r.k, r.n]));
  return {
    dataset_id: datasetId,
    images: (db.prepare(`SELECT count(*) AS n FROM images WHERE dataset_id = ?`).get(datasetId) as { n: number }).n,
    non_expression: count(
      `SELECT l.given AS k, count(*) AS n FROM labels l JOIN images i ON i.id = l.image_id
       WHERE i.dataset_id = ? AND l.trainable = 0 GROUP BY l.given ORDER BY l.given`,
    ),
    quality: count(`SELECT quality AS k, count(*) AS n FROM images WHERE dataset_id = ? AND quality IS NOT NULL GROUP BY quality ORDER BY quality`),
  };
}

/** One line for `report` when the dataset has non-expression labels or quality flags; none otherwise. */
export function formatLabelStats(s: DatasetLabelStats): string[] {
  const list = (o: Record<string, number>): string => Object.entries(o).map(([k, v]) => `${k} ${v}`).join(', ');
  const total = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0);
  const lines: string[] = [];
  if (total(s.non_expression)) {
    lines.push(`not an expression (kept, left out of training and proposals): ${total(s.non_expression)} of ${s.images} images — ${list(s.non_expression)}`);
  }
  if (total(s.quality)) lines.push(`data-quality flags: ${list(s.quality)}`);
  return lines;
}

/**
 * Images of a run that a later re-ingest found with new bytes at the same path (images.pixels_changed_at after the
 * run started): the run scored and proposed on the old pictures, and their old embeddings no longer count.
 */
export function changedSinceRun(db: DB, run: { id: number; started_at: string }): number {
  return (
    db
      .prepare(
        `SELECT count(*) AS n FROM run_images ri JOIN images i ON i.id = ri.image_id
         WHERE ri.run_id = ? AND i.pixels_changed_at IS NOT NULL AND i.pixels_changed_at >= ?`,
      )
      .get(run.id, run.started_at) as { n: number }
  ).n;
}
