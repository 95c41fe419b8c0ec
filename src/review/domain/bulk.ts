/**
 * Bulk accept (issue 8): every undecided proposal whose estimated P(accept) is at or above a threshold, accepted in
 * one action that one undo reverts; and its preview (how many, how many expected wrong) for a confirmation.
 */
import { randomUUID } from 'node:crypto';
import { FerCleanError } from '../../errors.js';
import { nowIso, type DB } from '../../store/db.js';
import type { ResolvedRun as RunInfo } from '../../store/runs.js';
import { claimedByOthers, LEASE_MS, releaseClaims, type Claimant } from './claims.js';
import { recordDecision } from './decisions.js';
import { reviewRun } from './proposals.js';
import { checkAnnotator, checkMinEstimate } from './options.js';
import { loadEstimates, MIN_DECISIONS_FOR_BULK, refit, type RunEstimates } from '../estimates/run-estimates.js';

export interface BulkPreview {
  run: RunInfo;
  minEstimate: number;
  /** Undecided proposals at or above the threshold (not leased to others) and the sum of (1 - estimate) over them. */
  items: number;
  expectedWrong: number;
  /** Undecided proposals at or above the threshold that other sessions hold now (left out). */
  held: number;
  fittedOn: number;
}

export interface BulkResult extends BulkPreview {
  bulkId: number;
}

/** Which undecided proposals a bulk accept at `minEstimate` would take, after a refit on the decisions so far. */
function bulkCandidates(db: DB, e: RunEstimates, minEstimate: number, sessionId: string, annotator: string, now: number) {
  const decided = refit(db, e);
  const fittedOn = e.model.fittedOn;
  if (fittedOn < MIN_DECISIONS_FOR_BULK) {
    throw new FerCleanError(
      `run ${e.run.id} has ${fittedOn} reviewer decision(s) on its proposals; bulk accept needs at least ${MIN_DECISIONS_FOR_BULK} ` +
        `to estimate from (${MIN_DECISIONS_FOR_BULK - fittedOn} more)`,
    );
  }
  const others = claimedByOthers(db, e.run.id, sessionId, now);
  const take: number[] = [];
  let held = 0;
  e.items.forEach((it, i) => {
    if (decided.has(it.imageId) || e.model.estimate(i) < minEstimate) return;
    const h = others.get(it.imageId);
    if (h !== undefined && h !== annotator) held++;
    else take.push(i);
  });
  const expectedWrong = take.reduce((s, i) => s + (1 - e.model.estimate(i)), 0);
  return { take, held, expectedWrong, fittedOn };
}

/** How many items a bulk accept would take and how many of them are expected wrong (for a confirmation). */
export function previewBulkAccept(
  db: DB,
  opts: { runId?: number; dataset?: string; annotator: string; minEstimate: number; now?: number; estimates?: RunEstimates },
): BulkPreview {
  checkMinEstimate(opts.minEstimate);
  checkAnnotator(opts.annotator);
  const e = opts.estimates ?? loadEstimates(db, reviewRun(db, opts.runId, opts.dataset));
  const c = bulkCandidates(db, e, opts.minEstimate, '', opts.annotator, opts.now ?? Date.now());
  return { run: e.run, minEstimate: opts.minEstimate, items: c.take.length, expectedWrong: c.expectedWrong, held: c.held, fittedOn: c.fittedOn };
}

/**
 * Accepts every undecided proposal whose estimate is at or above `minEstimate`: one bulk_actions row and one
 * decisions row per item (bulk_id, estimate), in one IMMEDIATE transaction. Refuses a threshold outside (0, 1] and
 * runs with fewer than MIN_DECISIONS_FOR_BULK reviewer decisions. One undo (undoLast) reverts the whole action.
 */
export function bulkAccept(
  db: DB,
  opts: { runId?: number; dataset?: string; annotator: string; minEstimate: number; now?: number; sessionId?: string; estimates?: RunEstimates },
): BulkResult {
  checkMinEstimate(opts.minEstimate);
  const annotator = checkAnnotator(opts.annotator);
  const e = opts.estimates ?? loadEstimates(db, reviewRun(db, opts.runId, opts.dataset));
  const now = opts.now ?? Date.now();
  const who: Claimant = { runId: e.run.id, sessionId: opts.sessionId ?? `accept-${randomUUID()}`, annotator };
  return db
    .transaction((): BulkResult => {
      const c = bulkCandidates(db, e, opts.minEstimate, who.sessionId, annotator, now);
      const rule = `accept every undecided proposal with estimate >= ${opts.minEstimate}`;
      const bulkId = Number(
        db
          .prepare(
            `INSERT INTO bulk_actions (run_id, annotator, rule, min_estimate, items, expected_wrong, fitted_on, decided_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(e.run.id, annotator, rule, opts.minEstimate, c.take.length, c.expectedWrong, c.fittedOn, nowIso()).lastInsertRowid,
      );
      for (const i of c.take) {
        // the annotator's own open review session does not block their bulk accept (bulkCandidates counted it in)
        recordDecision(db, who, e.items[i]!, 'accepted', undefined, { now, estimate: e.model.estimate(i), bulkId, leaseMs: LEASE_MS, takeOwnClaim: true });
      }
      releaseClaims(db, who.sessionId);
      return { run: e.run, minEstimate: opts.minEstimate, items: c.take.length, expectedWrong: c.expectedWrong, held: c.held, fittedOn: c.fittedOn, bulkId };
    })
    .immediate();
}

