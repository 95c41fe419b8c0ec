/**
 * The estimate model of one run, read from the store: its proposals' features, the prior calibrated on its
 * validation split, and a refit on the review decisions so far (see src/estimate/model.ts).
 */
import type { DB } from '../store/db.js';
import { EstimateModel, fitPrior, pairCounts, rankByEstimate, type HeldOutRow, type Outcome, type ProposalFeatures } from '../estimate/model.js';
import { loadQueue, type QueueItem, type RunInfo } from './queue.js';

/** Decisions a bulk accept needs first (reviewer decisions on the run's proposals, bulk ones not counted). */
export const MIN_DECISIONS_FOR_BULK = 200;

export interface RunEstimates {
  run: RunInfo;
  /** The run's proposals, in margin order (the queue's default order before issue 8). */
  items: QueueItem[];
  /** Index in `items` by image id. */
  index: Map<number, number>;
  model: EstimateModel;
}

/** Builds the run's estimate model (prior only; call refit to take decisions into account). */
export function loadEstimates(db: DB, run: RunInfo): RunEstimates {
  const items = loadQueue(db, run, 'margin');
  const tax = run.dataset.taxonomy;
  const cls = (c: string | null): number => (c === null ? -1 : tax.indexOf(c));
  const probsOf = new Map<number, number[]>();
  for (const r of db
    .prepare(`SELECT image_id, probs FROM run_images WHERE run_id = ? AND proposed_label IS NOT NULL`)
    .all(run.id) as { image_id: number; probs: string }[]) {
    probsOf.set(r.image_id, JSON.parse(r.probs) as number[]);
  }
  const features: ProposalFeatures[] = items.map((it) => {
    const p = probsOf.get(it.imageId)!;
    const g = cls(it.given);
    const q = cls(it.proposed);
    return { given: g, proposed: q, margin: it.margin ?? 0, importance: it.importance, pProposed: p[q] ?? 0, pGiven: p[g] ?? 0 };
  });
  const heldOut: HeldOutRow[] = (
    db
      .prepare(
        `SELECT ri.probs, ri.given_label, l.reference FROM run_images ri
         JOIN images i ON i.id = ri.image_id LEFT JOIN labels l ON l.image_id = ri.image_id
         WHERE ri.run_id = ? AND i.split = 'valid'`,
      )
      .all(run.id) as { probs: string; given_label: string; reference: string | null }[]
  ).map((r) => ({ given: cls(r.given_label), reference: cls(r.reference), probs: JSON.parse(r.probs) as number[] }));
  const model = new EstimateModel(features, fitPrior(heldOut), tax.length);
  return { run, items, index: new Map(items.map((it, i) => [it.imageId, i])), model };
}

/** The decision in force on each of the run's proposals (any annotator, any run), with whether it is a bulk one. */
export function decidedProposals(db: DB, e: RunEstimates): Map<number, { label: string; bulk: boolean }> {
  const rows = db
    .prepare(
      `SELECT e.image_id, e.new_label, e.bulk_id FROM run_images ri JOIN effective_decisions e ON e.image_id = ri.image_id
       WHERE ri.run_id = ? AND ri.proposed_label IS NOT NULL`,
    )
    .all(e.run.id) as { image_id: number; new_label: string; bulk_id: number | null }[];
  return new Map(rows.map((r) => [r.image_id, { label: r.new_label, bulk: r.bulk_id !== null }]));
}

/**
 * What the refit learns from: every reviewer decision in force on a proposal of the run, accepted = the label in
 * force is the proposed one. Bulk accepts are left out: they are the estimate's own output, not a reviewer's
 * judgement.
 */
export function outcomesOf(e: RunEstimates, decided: Map<number, { label: string; bulk: boolean }>): Outcome[] {
  const out: Outcome[] = [];
  for (const [imageId, d] of decided) {
    if (d.bulk) continue;
    const i = e.index.get(imageId);
    if (i === undefined) continue;
    out.push({ index: i, accepted: d.label === e.items[i]!.proposed });
  }
  return out.sort((a, b) => a.index - b.index);
}

/** Refits the model on the decisions in the store now; returns them (the decided proposals). */
export function refit(db: DB, e: RunEstimates): Map<number, { label: string; bulk: boolean }> {
  const decided = decidedProposals(db, e);
  e.model.fit(outcomesOf(e, decided));
  return decided;
}

/**
 * The undecided proposals in learning order: by estimate with the exploration bonus for class pairs with few
 * decisions (rankByEstimate). Returns indices into e.items.
 */
export function learningOrder(e: RunEstimates, decided: Map<number, unknown>): number[] {
  const decidedIdx: number[] = [];
  const open: number[] = [];
  e.items.forEach((it, i) => (decided.has(it.imageId) ? decidedIdx.push(i) : open.push(i)));
  return rankByEstimate(e.model, open, pairCounts(e.model, decidedIdx));
}
