/**
 * Scripted review: the verbs behind `fer-clean queue`, `decide`, `accept` and `undo`, for front ends and scripts.
 * They go through the same audit trail (decisions), leases (claims) and validation as the Ink session.
 */
import { randomUUID } from 'node:crypto';
import { FerCleanError } from '../errors.js';
import type { DB } from '../store/db.js';
import { readCsv } from '../ingest/csvfile.js';
import { claimedByOthers, releaseClaims, type Claimant } from './domain/claims.js';
import { effectiveFor, recordDecision, undoLast, type DecisionRow, type Verdict } from './domain/decisions.js';
import { estimatesNow, type RunEstimates } from './estimates/run-estimates.js';
import { flagFilter, REVIEW_ORDERS, reviewRun } from './domain/proposals.js';
import { reviewQueue, type QueueOrder } from './domain/order.js';
import { checkAnnotator, checkLimit, checkOrder } from './domain/options.js';
import {
  GROUP_ACTIONS,
  groupCounts,
  loadGroupItems,
  recordGroupDecision,
  undoLastGroupDecision,
  type GroupAction,
  type GroupDecisionRow,
  type GroupItem,
} from './domain/groups.js';
import type { ResolvedRun as RunInfo } from '../store/runs.js';
import type { PriorSource } from '../estimate/model.js';
import { datasetClass, LabelError, type LabelEncoding } from '../taxonomy.js';

export type { QueueOrder };
export { bulkAccept, previewBulkAccept, type BulkPreview, type BulkResult } from './domain/bulk.js';
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
  /** The quality flag the items were filtered to (queue --flag), when one was asked for. */
  flag?: string;
}

export interface QueueOptions {
  runId?: number;
  dataset?: string;
  /** Most items to return (default all). */
  limit?: number;
  /** Items leased to other annotators' sessions are left out; with a name, that annotator's own leases are not. */
  annotator?: string;
  order?: QueueOrder;
  /** Only images carrying this quality flag (non-face, outlier, dark, light, blurry, low-information). */
  flag?: string;
  now?: number;
}

const info = (e: RunEstimates): EstimateInfo => ({ prior: e.model.prior.source, priorRows: e.model.prior.rows, fittedOn: e.model.fittedOn });

/** The next undecided proposals, in the order the review session would show them, with their estimates. */
export function nextItems(db: DB, opts: QueueOptions = {}): QueueResult {
  checkLimit(opts.limit);
  const order = checkOrder(opts.order, QUEUE_ORDERS) ?? 'estimate';
  if (opts.annotator !== undefined) checkAnnotator(opts.annotator);
  const run = reviewRun(db, opts.runId, opts.dataset);
  const filter = opts.flag === undefined ? null : flagFilter(db, run.dataset, opts.flag);
  const e = estimatesNow(db, run);
  const places = reviewQueue({
    items: e.items,
    taxonomy: run.dataset.taxonomy,
    order,
    model: e.model,
    decided: e.decided,
    held: claimedByOthers(db, run.id, '', opts.now ?? Date.now()),
    annotator: opts.annotator,
    limit: opts.limit,
    filter,
  });
  const items: QueueEntry[] = places.map(({ item: it, estimate, explore }) => ({
    imageId: it.imageId,
    path: it.path,
    split: it.split,
    given: it.given,
    proposed: it.proposed,
    margin: it.margin,
    importance: it.importance,
    estimate,
    explore,
  }));
  const result: QueueResult = { run, order, total: e.items.length, undecided: e.items.length - e.decided.size, estimate: info(e), items };
  return filter ? { ...result, flag: filter.flag } : result;
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
 * A decisions CSV cell's label read as ingest reads labels (any case, synonyms, the dataset's numeric encoding);
 * a label it cannot read goes to `problems` at `where` and gives undefined.
 */
function labelOrProblem(label: string, encoding: LabelEncoding, tax: readonly string[], where: string, problems: string[]): string | undefined {
  try {
    return datasetClass(label, encoding, tax);
  } catch (err) {
    if (!(err instanceof LabelError)) throw err;
    problems.push(`${where}: ${err.message}`);
    return undefined;
  }
}

/** A decisions CSV (path, action[, label]) read through the checked open: its rows and the problems found so far. */
function readDecisionsCsv(file: string): { table: ReturnType<typeof readCsv>; problems: string[] } {
  const table = readCsv(file, 'decisions');
  for (const col of ['path', 'action']) {
    if (!table.header.includes(col)) {
      throw new FerCleanError(`${table.file}:1: no '${col}' column (expected path, action[, label]; found ${table.header.join(', ')})`);
    }
  }
  return { table, problems: table.problems.map((p) => `${p.where}: ${p.message}`) };
}

/**
 * Applies decisions from a CSV with columns path, action (accepted | rejected | manual) and label (for manual),
 * as `annotator`, in one transaction. Every problem (unknown path, unknown label or action, a path twice, an item
 * decided by someone else or leased to another session now) is collected and reported with file:line; when there is
 * any, nothing is written.
 */
export function decideFromCsv(db: DB, opts: { runId?: number; dataset?: string; annotator: string; file: string; now?: number }): DecideSummary {
  const annotator = checkAnnotator(opts.annotator);
  const run = reviewRun(db, opts.runId, opts.dataset);
  const { table, problems } = readDecisionsCsv(opts.file);
  const e = estimatesNow(db, run);
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
      cls = labelOrProblem(label, encoding, tax, where, problems);
      if (cls === undefined) continue;
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

/**
 * Undoes this annotator's last decision (or skip) in the run, or their whole last bulk action, from a script.
 * Returns the undone row and, for a bulk action, how many rows it reverted; undefined when there is nothing to undo.
 */
export function undoLastScripted(
  db: DB,
  opts: { runId?: number; dataset?: string; annotator: string; now?: number },
): { run: RunInfo; undone: DecisionRow; count: number } | undefined {
  const run = reviewRun(db, opts.runId, opts.dataset);
  const who: Claimant = { runId: run.id, sessionId: `undo-${randomUUID()}`, annotator: checkAnnotator(opts.annotator) };
  const r = undoLast(db, who, { now: opts.now });
  releaseClaims(db, who.sessionId);
  return r && { run, undone: r.undone, count: r.bulk?.undone ?? 1 };
}

// ---------------------------------------------------------------------------------------------------------------
// Duplicate groups whose labels disagree (`queue --duplicates`, `decide --duplicates`, `undo --duplicates`).

export interface GroupQueueResult {
  run: RunInfo;
  /** Groups in the review (settled ones included) and how many need a decision. */
  total: number;
  open: number;
  /** The groups: open ones only, unless `all`. */
  groups: GroupItem[];
}

/**
 * The duplicate groups of the run's dataset whose labels disagree (see domain/groups.ts), largest first: the open
 * ones (at most `limit`), or every one with `all` (each says whether and how it is settled).
 */
export function groupQueue(db: DB, opts: { runId?: number; dataset?: string; limit?: number; all?: boolean } = {}): GroupQueueResult {
  checkLimit(opts.limit);
  const run = reviewRun(db, opts.runId, opts.dataset);
  const items = loadGroupItems(db, run.dataset.id);
  const shown = items.filter((g) => opts.all || g.settled === null);
  return { run, total: items.length, open: groupCounts(items).open, groups: opts.limit === undefined ? shown : shown.slice(0, opts.limit) };
}

export interface GroupDecideSummary {
  run: RunInfo;
  file: string;
  keepLabel: number;
  differentFaces: number;
  /** Rows whose group is already settled that way: nothing written. */
  unchanged: number;
}

/**
 * Applies group decisions from a CSV with columns path (any image of the group), action (keep-label |
 * different-faces) and label (for keep-label), as `annotator`, in one transaction. Every problem (a path in no
 * group under review, an unknown action or label, a group named twice) is reported with file:line and then nothing
 * is applied. A row that repeats how its group is settled writes nothing.
 */
export function decideGroupsFromCsv(
  db: DB,
  opts: { runId?: number; dataset?: string; annotator: string; file: string; now?: number },
): GroupDecideSummary {
  const annotator = checkAnnotator(opts.annotator);
  const run = reviewRun(db, opts.runId, opts.dataset);
  const { table, problems } = readDecisionsCsv(opts.file);
  const items = loadGroupItems(db, run.dataset.id);
  const groupOfPath = new Map<string, GroupItem>();
  for (const g of items) for (const m of g.members) groupOfPath.set(m.path, g);
  const tax = run.dataset.taxonomy;
  const encoding = (run.dataset.options as { labelEncoding?: LabelEncoding }).labelEncoding ?? 'names';
  const seen = new Map<number, number>();
  const todo: { group: GroupItem; action: GroupAction; label?: string }[] = [];
  const summary: GroupDecideSummary = { run, file: opts.file, keepLabel: 0, differentFaces: 0, unchanged: 0 };
  for (const { line, record } of table.rows) {
    const where = `${table.file}:${line}`;
    const path = (record['path'] ?? '').trim();
    const action = (record['action'] ?? '').trim().toLowerCase();
    const label = (record['label'] ?? '').trim();
    const group = groupOfPath.get(path);
    if (!group) {
      problems.push(`${where}: ${path ? `'${path}' is in no duplicate group with disagreeing labels` : 'empty path'}`);
      continue;
    }
    if (seen.has(group.groupId)) {
      problems.push(`${where}: '${path}' is in the group already decided on line ${seen.get(group.groupId)}`);
      continue;
    }
    seen.set(group.groupId, line);
    if (!GROUP_ACTIONS.includes(action as GroupAction)) {
      problems.push(`${where}: action '${record['action'] ?? ''}' is not one of ${GROUP_ACTIONS.join(', ')}`);
      continue;
    }
    let cls: string | undefined;
    if (action === 'keep-label') {
      if (!label) {
        problems.push(`${where}: action keep-label needs a label (one of ${tax.join(', ')})`);
        continue;
      }
      cls = labelOrProblem(label, encoding, tax, where, problems);
      if (cls === undefined) continue;
    }
    const s = group.settled;
    if (s && ((action === 'different-faces' && s.kind === 'different') || (action === 'keep-label' && s.kind === 'kept' && s.label === cls))) {
      summary.unchanged++;
      continue;
    }
    todo.push({ group, action: action as GroupAction, label: cls });
  }
  if (problems.length) {
    throw new FerCleanError(
      `${problems.length === 1 ? problems[0] : `${table.file}: ${problems.length} problems`}; nothing was applied`,
      problems.length > 1 ? problems : [],
    );
  }
  const now = opts.now ?? Date.now();
  const who = { annotator, datasetId: run.dataset.id, runId: run.id };
  db.transaction(() => {
    for (const t of todo) {
      recordGroupDecision(db, who, t.group.members.map((m) => m.imageId), t.action, t.label, { now, taxonomy: tax });
      if (t.action === 'keep-label') summary.keepLabel++;
      else summary.differentFaces++;
    }
  }).immediate();
  return summary;
}

/** Undoes this annotator's last group decision in the run's dataset (a keep-label's label decisions with it). */
export function undoLastGroupScripted(
  db: DB,
  opts: { runId?: number; dataset?: string; annotator: string; now?: number },
): { run: RunInfo; undone: GroupDecisionRow; images: number[] } | undefined {
  const run = reviewRun(db, opts.runId, opts.dataset);
  const r = undoLastGroupDecision(db, { annotator: checkAnnotator(opts.annotator), datasetId: run.dataset.id, runId: run.id }, { now: opts.now });
  return r && { run, undone: r.undone, images: r.images };
}
