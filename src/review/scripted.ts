/**
 * Scripted review: the verbs behind `fer-clean queue`, `decide`, `accept` and `undo`, for front ends and scripts.
 * They go through the same audit trail (decisions), leases (claims) and validation as the Ink session.
 */
import { randomUUID } from 'node:crypto';
import { FerCleanError } from '../errors.js';
import { nowIso, type DB } from '../store/db.js';
import { readCsv } from '../ingest/csvfile.js';
import { claimedByOthers, LEASE_MS, releaseClaims, type Claimant } from './claims.js';
import { effectiveFor, recordDecision, undoLast, type DecisionRow, type Verdict } from './decisions.js';
import { learningOrder, loadEstimates, MIN_DECISIONS_FOR_BULK, refit, type RunEstimates } from './estimates.js';
import { loadQueue, REVIEW_ORDERS, reviewRun, type ReviewOrder } from './queue.js';
import type { ResolvedRun as RunInfo } from '../store/runs.js';

import type { PriorSource } from '../estimate/model.js';
import { annotatorName } from '../printable.js';
import { datasetClass, LabelError, type LabelEncoding } from '../taxonomy.js';

/** Queue order: 'estimate' (learning order, the default) or one of the fixed orders of the review session. */
export type QueueOrder = 'estimate' | ReviewOrder;
export const QUEUE_ORDERS: readonly QueueOrder[] = ['estimate', ...REVIEW_ORDERS];

export interface QueueEntry {
  imageId: number;
  path: string;
  split: string;
  given: string;
  proposed: string;
  margin: number | null;
  importance: number | null;
  /** Estimated probability that a reviewer accepts the proposal (refitted on the decisions so far). */
  estimate: number;
  /** Placed here by exploration (a random draw), not by its estimate. */
  explore: boolean;
}

export interface EstimateInfo {
  /** Where the estimate before decisions comes from (see Prior in src/estimate/model.ts). */
  prior: PriorSource;
  /** Validation images the prior was fitted on. */
  priorRows: number;
  /** Reviewer decisions the refit used (bulk accepts not counted). */
  fittedOn: number;
}

export interface QueueResult {
  run: RunInfo;
  order: QueueOrder;
  /** Proposals of the run and how many have no decision in force. */
  total: number;
  undecided: number;
  estimate: EstimateInfo;
  items: QueueEntry[];
}

export interface QueueOptions {
  runId?: number;
  dataset?: string;
  /** Most items to return (default all). */
  limit?: number;
  /** Items leased to other annotators' sessions are left out; with a name, that annotator's own leases are not. */
  annotator?: string;
  order?: QueueOrder;
  now?: number;
}

const info = (e: RunEstimates): EstimateInfo => ({ prior: e.model.prior.source, priorRows: e.model.prior.rows, fittedOn: e.model.fittedOn });

/** The next undecided proposals, in the order the review session would show them, with their estimates. */
export function nextItems(db: DB, opts: QueueOptions = {}): QueueResult {
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 1)) {
    throw new FerCleanError(`limit must be a whole number >= 1, got ${opts.limit}`);
  }
  const order = opts.order ?? 'estimate';
  if (!QUEUE_ORDERS.includes(order)) throw new FerCleanError(`order must be one of ${QUEUE_ORDERS.join(', ')}, got '${order}'`);
  const run = reviewRun(db, opts.runId, opts.dataset);
  const e = loadEstimates(db, run);
  const decided = refit(db, e);
  const held = claimedByOthers(db, run.id, '', opts.now ?? Date.now());
  const blocked = (imageId: number): boolean => {
    const who = held.get(imageId);
    return who !== undefined && who !== opts.annotator;
  };
  let indices: number[];
  let explored = new Set<number>();
  if (order === 'estimate') ({ order: indices, explored } = learningOrder(e, decided));
  else {
    indices = loadQueue(db, run, order)
      .map((it) => e.index.get(it.imageId)!)
      .filter((i) => !decided.has(e.items[i]!.imageId));
  }
  const items: QueueEntry[] = [];
  for (const i of indices) {
    const it = e.items[i]!;
    if (blocked(it.imageId)) continue;
    items.push({
      imageId: it.imageId,
      path: it.path,
      split: it.split,
      given: it.given,
      proposed: it.proposed,
      margin: it.margin,
      importance: it.importance,
      estimate: e.model.estimate(i),
      explore: explored.has(i),
    });
    if (opts.limit !== undefined && items.length >= opts.limit) break;
  }
  return { run, order, total: e.items.length, undecided: e.items.length - decided.size, estimate: info(e), items };
}

export interface DecideSummary {
  run: RunInfo;
  file: string;
  /** Rows written, by action. */
  accepted: number;
  rejected: number;
  manual: number;
  /** Rows that repeat this annotator's decision in force (same label): nothing written. */
  unchanged: number;
}

const ACTIONS: readonly Verdict[] = ['accepted', 'rejected', 'manual'];

/**
 * Applies decisions from a CSV with columns path, action (accepted | rejected | manual) and label (for manual),
 * as `annotator`, in one transaction. Every problem (unknown path, unknown label or action, a path twice, an item
 * decided by someone else or leased to another session now) is collected and reported with file:line; when there is
 * any, nothing is written.
 */
export function decideFromCsv(db: DB, opts: { runId?: number; dataset?: string; annotator: string; file: string; now?: number }): DecideSummary {
  const annotator = annotatorName(opts.annotator);
  const run = reviewRun(db, opts.runId, opts.dataset);
  const table = readCsv(opts.file, 'decisions');
  for (const col of ['path', 'action']) {
    if (!table.header.includes(col)) {
      throw new FerCleanError(`${table.file}:1: no '${col}' column (expected path, action[, label]; found ${table.header.join(', ')})`);
    }
  }
  const problems = table.problems.map((p) => `${p.where}: ${p.message}`);
  const e = loadEstimates(db, run);
  refit(db, e);
  // A path's proposal: the image by its stored path (the dataset's unique index), then its place in the queue.
  const imageOf = db.prepare(`SELECT id FROM images WHERE dataset_id = ? AND path = ?`).pluck();
  const indexOfPath = (path: string): number | undefined => {
    const id = imageOf.get(run.dataset.id, path) as number | undefined;
    return id === undefined ? undefined : e.index.get(id);
  };
  const tax = run.dataset.taxonomy;
  const encoding = (run.dataset.options as { labelEncoding?: LabelEncoding }).labelEncoding ?? 'names';
  const seen = new Map<string, number>();
  const todo: { line: number; index: number; action: Verdict; label?: string }[] = [];
  for (const { line, record } of table.rows) {
    const where = `${table.file}:${line}`;
    const path = (record['path'] ?? '').trim();
    const action = (record['action'] ?? '').trim().toLowerCase();
    const label = (record['label'] ?? '').trim();
    const index = indexOfPath(path);
    if (index === undefined) {
      problems.push(`${where}: ${path ? `'${path}' is not a proposal of run ${run.id}` : 'empty path'}`);
      continue;
    }
    if (seen.has(path)) {
      problems.push(`${where}: '${path}' already appears on line ${seen.get(path)}`);
      continue;
    }
    seen.set(path, line);
    if (!ACTIONS.includes(action as Verdict)) {
      problems.push(`${where}: action '${record['action'] ?? ''}' is not one of ${ACTIONS.join(', ')}`);
      continue;
    }
    if (action === 'manual' && !label) {
      problems.push(`${where}: action manual needs a label (one of ${tax.join(', ')})`);
      continue;
    }
    // the label as ingest reads the dataset's labels: any case, synonyms (happy), its numeric encoding
    let cls: string | undefined;
    if (label) {
      try {
        cls = datasetClass(label, encoding, tax);
      } catch (err) {
        if (!(err instanceof LabelError)) throw err;
        problems.push(`${where}: ${err.message}`);
        continue;
      }
    }
    const it = e.items[index]!;
    if (cls !== undefined && action === 'accepted' && cls !== it.proposed) {
      problems.push(`${where}: label '${label}' does not match the proposal (${it.proposed}) of an accepted row`);
      continue;
    }
    if (cls !== undefined && action === 'rejected' && cls !== it.given) {
      // a rejection keeps the given label: another label here means the row says something else than it does
      problems.push(`${where}: label '${label}' on a rejected row: rejecting keeps the given label (${it.given}); for another label write manual,${cls}`);
      continue;
    }
    todo.push({ line, index, action: action as Verdict, label: action === 'manual' ? cls : undefined });
  }
  const now = opts.now ?? Date.now();
  const who: Claimant = { runId: run.id, sessionId: `decide-${randomUUID()}`, annotator };
  const summary: DecideSummary = { run, file: opts.file, accepted: 0, rejected: 0, manual: 0, unchanged: 0 };
  db.transaction(() => {
    const held = claimedByOthers(db, run.id, who.sessionId, now);
    const write: typeof todo = [];
    for (const t of todo) {
      const it = e.items[t.index]!;
      const where = `${table.file}:${t.line}`;
      const holder = held.get(it.imageId);
      if (holder !== undefined) {
        problems.push(`${where}: '${it.path}' is being reviewed by ${holder} now (in another session)`);
        continue;
      }
      const eff = effectiveFor(db, it.imageId);
      const next = t.action === 'accepted' ? it.proposed : t.action === 'rejected' ? it.given : t.label!;
      if (eff && eff.annotator !== annotator) {
        problems.push(`${where}: '${it.path}' was already decided by ${eff.annotator} (${eff.action} -> ${eff.label})`);
        continue;
      }
      if (eff && eff.label === next) {
        summary.unchanged++;
        continue;
      }
      write.push(t);
    }
    if (problems.length) return;
    for (const t of write) {
      const it = e.items[t.index]!;
      recordDecision(db, who, it, t.action, t.label, { now, estimate: e.model.estimate(t.index) });
      summary[t.action]++;
    }
    releaseClaims(db, who.sessionId);
  }).immediate();
  if (problems.length) {
    throw new FerCleanError(
      `${problems.length === 1 ? problems[0] : `${table.file}: ${problems.length} problems`}; nothing was applied`,
      problems.length > 1 ? problems : [],
    );
  }
  return summary;
}

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

function checkThreshold(p: number): void {
  if (!(Number.isFinite(p) && p > 0 && p <= 1)) throw new FerCleanError(`min estimate must be in (0, 1], got ${p}`);
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
  checkThreshold(opts.minEstimate);
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
  checkThreshold(opts.minEstimate);
  const annotator = annotatorName(opts.annotator);
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

/**
 * Undoes this annotator's last decision (or skip) in the run, or their whole last bulk action, from a script.
 * Returns the undone row and, for a bulk action, how many rows it reverted; undefined when there is nothing to undo.
 */
export function undoLastScripted(
  db: DB,
  opts: { runId?: number; dataset?: string; annotator: string; now?: number },
): { run: RunInfo; undone: DecisionRow; count: number } | undefined {
  const run = reviewRun(db, opts.runId, opts.dataset);
  const who: Claimant = { runId: run.id, sessionId: `undo-${randomUUID()}`, annotator: annotatorName(opts.annotator) };
  const r = undoLast(db, who, { now: opts.now });
  releaseClaims(db, who.sessionId);
  return r && { run, undone: r.undone, count: r.bulk?.undone ?? 1 };
}
