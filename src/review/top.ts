/**
 * How right the top of a run's review queue is, against the dataset's reference labels (e.g. the FER+ majority):
 * what an annotator meets first when they open `fer-clean review`.
 */
import type { DB } from '../store/db.js';
import { loadQueue, type ReviewOrder } from './queue.js';
import type { ResolvedRun } from '../store/runs.js';

export interface QueueTop {
  run: number;
  order: ReviewOrder;
  /** Items looked at: the first `n` of the review order (fewer when the run proposes fewer). */
  items: number;
  /** Of those, items whose image has a reference label. */
  scored: number;
  /** Scored items whose given label differs from the reference (the proposal found a wrong label). */
  wrongGiven: number;
  /** Scored items whose proposed label is the reference label (the proposal is the right fix). */
  rightProposal: number;
  /** Proposals in the whole queue. */
  queue: number;
}

/** Scores the first `n` items of a run's review queue (in `order`, default margin) against the reference labels. */
export function queueTop(db: DB, run: ResolvedRun, n: number, order: ReviewOrder = 'margin'): QueueTop {
  const queue = loadQueue(db, run, order);
  const top = queue.slice(0, n);
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
  return { run: run.id, order, items: top.length, scored, wrongGiven, rightProposal, queue: queue.length };
}
