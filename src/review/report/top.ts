/**
 * How right the top of a run's review queue is, against the dataset's reference labels (e.g. the FER+ majority):
 * what an annotator meets first when they open `fer-clean review`.
 */
import type { DB } from '../../store/db.js';
import { nextItems, type QueueOrder } from '../verbs.js';
import type { ResolvedRun } from '../../store/runs.js';

export interface QueueTop {
  run: number;
  order: QueueOrder;
  /** Items looked at: the first `n` undecided proposals of the review order (fewer when there are fewer). */
  items: number;
  /** Of those, items whose image has a reference label. */
  scored: number;
  /** Scored items whose given label differs from the reference (the proposal found a wrong label). */
  wrongGiven: number;
  /** Scored items whose proposed label is the reference label (the proposal is the right fix). */
  rightProposal: number;
  /** Proposals of the run. */
  queue: number;
}

/**
 * Scores the first `n` undecided proposals of a run's review queue, in the review session's order (default: the
 * learning order, by estimate), against the reference labels.
 */
export function queueTop(db: DB, run: ResolvedRun, n: number, order?: QueueOrder): QueueTop {
  const q = nextItems(db, { runId: run.id, limit: n, order });
  const top = q.items;
  const refOf = db.prepare(`SELECT reference FROM labels WHERE image_id = ?`);
  let scored = 0;
  let wrongGiven = 0;
  let rightProposal = 0;
  for (const q of top) {
    const ref = (refOf.get(q.imageId) as { reference: string | null } | undefined)?.reference ?? null;
    if (ref === null) continue;
    scored++;
    if (ref !== q.given) wrongGiven++;
    if (ref === q.proposed) rightProposal++;
  }
  return { run: run.id, order: q.order, items: top.length, scored, wrongGiven, rightProposal, queue: q.total };
}
