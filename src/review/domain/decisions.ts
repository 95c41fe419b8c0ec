import { FerCleanError } from '../../errors.js';
import type { DB } from '../../store/db.js';
import { LEASE_MS, takeClaim, type Claimant } from './claims.js';

/**
 * The audit trail of review decisions (table `decisions`, append-only). Every decision is one row written in its own
 * committed transaction the moment it is made; an undo is a row that names the row it undoes. The label in force for
 * an image is read from the view `effective_decisions` (latest accepted/rejected/manual row not undone).
 *
 * Labels written:
 * - accepted: new_label = the proposed label;
 * - rejected: new_label = the dataset's given label (the proposal is turned down);
 * - manual:   new_label = the class the annotator chose;
 * - skipped:  new_label = previous_label (recorded, not a decision);
 * - undo:     previous_label = the undone row's new_label, new_label = the undone row's previous_label.
 * previous_label is always the label in force before the row: the effective decision's label, else the given label.
 */

export type Verdict = 'accepted' | 'rejected' | 'manual';
export type Action = Verdict | 'skipped' | 'undo';

export interface DecisionRow {
  id: number;
  run_id: number | null;
  image_id: number;
  annotator: string;
  action: Action;
  previous_label: string;
  new_label: string;
  undoes: number | null;
  decided_at: string;
  /** Estimated P(accept) shown when decided (migration 003); null when unknown. */
  estimate?: number | null;
  /** The bulk action that wrote this row (bulk_actions.id); null for an item-by-item decision. */
  bulk_id?: number | null;
  /** The duplicate-group decision that wrote this row (group_decisions.id, migration 009); null otherwise. */
  group_decision_id?: number | null;
}

export interface Effective {
  id: number;
  action: Verdict;
  label: string;
  annotator: string;
  decidedAt: string;
  /** The run the decision was made in (null when unknown). */
  runId: number | null;
  /** The bulk action that wrote it (null: decided item by item). */
  bulkId: number | null;
  /** The estimate shown when it was made (null when unknown). */
  estimate: number | null;
}

const EFFECTIVE_COLUMNS = `e.id, e.image_id, e.action, e.new_label, e.annotator, e.decided_at, e.run_id, e.bulk_id, e.estimate`;
type RawEffective = {
  id: number;
  image_id: number;
  action: Verdict;
  new_label: string;
  annotator: string;
  decided_at: string;
  run_id: number | null;
  bulk_id: number | null;
  estimate: number | null;
};
const toEffective = (r: RawEffective): Effective => ({
  id: r.id,
  action: r.action,
  label: r.new_label,
  annotator: r.annotator,
  decidedAt: r.decided_at,
  runId: r.run_id,
  bulkId: r.bulk_id ?? null,
  estimate: r.estimate ?? null,
});

/** The decision in force that a row just written puts on its image. */
export const inForceOf = (row: DecisionRow, action: Verdict): Effective => ({
  id: row.id,
  action,
  label: row.new_label,
  annotator: row.annotator,
  decidedAt: row.decided_at,
  runId: row.run_id,
  bulkId: row.bulk_id ?? null,
  estimate: row.estimate ?? null,
});

/** The decision in force for one image, if any. */
export function effectiveFor(db: DB, imageId: number): Effective | undefined {
  const r = db.prepare(`SELECT ${EFFECTIVE_COLUMNS} FROM effective_decisions e WHERE e.image_id = ?`).get(imageId) as RawEffective | undefined;
  return r && toEffective(r);
}

/**
 * The decisions in force (latest decision not undone, any annotator, any run), by image: on a run's proposals, or on
 * every image of a dataset. The one reader of that fact for the review, the estimates, training and export.
 */
export function decisionsInForce(db: DB, scope: { runId: number } | { datasetId: number }): Map<number, Effective> {
  const rows = (
    'runId' in scope
      ? db
          .prepare(
            `SELECT ${EFFECTIVE_COLUMNS} FROM run_images ri JOIN effective_decisions e ON e.image_id = ri.image_id
             WHERE ri.run_id = ? AND ri.proposed_label IS NOT NULL`,
          )
          .all(scope.runId)
      : db
          .prepare(`SELECT ${EFFECTIVE_COLUMNS} FROM effective_decisions e JOIN images i ON i.id = e.image_id WHERE i.dataset_id = ?`)
          .all(scope.datasetId)
  ) as RawEffective[];
  return new Map(rows.map((r) => [r.image_id, toEffective(r)]));
}

/** Id of the newest decision row (0 when there is none). */
export function latestDecisionId(db: DB): number {
  return (db.prepare(`SELECT coalesce(max(id), 0) AS id FROM decisions`).get() as { id: number }).id;
}

/** Images with a decision row (of any action, any run) newer than row `afterId`. */
export function imagesDecidedSince(db: DB, afterId: number): number[] {
  return (db.prepare(`SELECT DISTINCT image_id FROM decisions WHERE id > ?`).all(afterId) as { image_id: number }[]).map(
    (r) => r.image_id,
  );
}

/** What a decision is about: the image, its given label and the run's proposal. */
export interface Subject {
  imageId: number;
  given: string;
  proposed: string;
}

export interface DecideOptions {
  now?: number;
  leaseMs?: number;
  /** The proposal's estimated P(accept) at the time, stored with the row. */
  estimate?: number | null;
  /** Written by this bulk action (bulk_actions.id). */
  bulkId?: number | null;
  /** Take over the claim when another session of the same annotator holds the image (see takeClaim). */
  takeOwnClaim?: boolean;
}

/** Thrown when another session holds the item (its lease had expired here and was taken over). */
export class ClaimLostError extends FerCleanError {
  constructor(
    readonly imageId: number,
    readonly holder: string,
  ) {
    super(`image ${imageId} is being reviewed by ${holder} now; it was not changed`);
  }
}

/**
 * Records one decision (or skip) on an image in a single IMMEDIATE transaction that first makes sure this session
 * holds (or can take) the image's claim. Returns the row written.
 */
export function recordDecision(
  db: DB,
  who: Claimant,
  subject: Subject,
  action: Verdict | 'skipped',
  manualLabel?: string,
  opts: DecideOptions = {},
): DecisionRow {
  if (action === 'manual' && manualLabel === undefined) throw new Error('recordDecision: manual needs a label');
  const now = opts.now ?? Date.now();
  return db
    .transaction((): DecisionRow => {
      const claim = takeClaim(db, who, subject.imageId, now, opts.leaseMs ?? LEASE_MS, opts.takeOwnClaim ?? false);
      if (!claim.ok) throw new ClaimLostError(subject.imageId, claim.holder);
      const previous = effectiveFor(db, subject.imageId)?.label ?? subject.given;
      const next =
        action === 'accepted'
          ? subject.proposed
          : action === 'rejected'
            ? subject.given
            : action === 'manual'
              ? manualLabel!
              : previous;
      return insert(db, who, subject.imageId, action, previous, next, null, now, opts.estimate ?? null, opts.bulkId ?? null);
    })
    .immediate();
}

/** This annotator's latest row in the run that can still be undone (a decision or skip not yet undone). */
export function lastUndoable(db: DB, runId: number, annotator: string): DecisionRow | undefined {
  return db
    .prepare(
      `SELECT * FROM decisions d
       WHERE d.run_id = ? AND d.annotator = ? AND d.action != 'undo'
         AND NOT EXISTS (SELECT 1 FROM decisions u WHERE u.undoes = d.id)
       ORDER BY d.id DESC LIMIT 1`,
    )
    .get(runId, annotator) as DecisionRow | undefined;
}

/**
 * Undoes this annotator's latest decision (or skip) in the run: writes an `undo` row naming it, in an IMMEDIATE
 * transaction that also claims the image (so the annotator can decide it again). When that row belongs to a bulk
 * action, every row of the bulk action not yet undone is undone in the same transaction (`bulk` says how many; the
 * claims on the other items are let go). Returns the undone row and the undo row, or undefined when there is nothing
 * to undo.
 */
export function undoLast(
  db: DB,
  who: Claimant,
  opts: DecideOptions = {},
): { undone: DecisionRow; undo: DecisionRow; bulk?: { id: number; undone: number } } | undefined {
  const now = opts.now ?? Date.now();
  return db
    .transaction(() => {
      const undone = lastUndoable(db, who.runId, who.annotator);
      if (!undone) return undefined;
      const claim = takeClaim(db, who, undone.image_id, now, opts.leaseMs ?? LEASE_MS);
      if (!claim.ok) throw new ClaimLostError(undone.image_id, claim.holder);
      let bulk: { id: number; undone: number } | undefined;
      if (undone.bulk_id != null) {
        const rest = db
          .prepare(
            `SELECT * FROM decisions d WHERE d.bulk_id = ? AND d.id != ? AND d.action != 'undo'
               AND NOT EXISTS (SELECT 1 FROM decisions u WHERE u.undoes = d.id) ORDER BY d.id`,
          )
          .all(undone.bulk_id, undone.id) as DecisionRow[];
        for (const r of rest) {
          const c = takeClaim(db, who, r.image_id, now, opts.leaseMs ?? LEASE_MS);
          if (!c.ok) throw new ClaimLostError(r.image_id, c.holder);
          insert(db, who, r.image_id, 'undo', r.new_label, r.previous_label, r.id, now, null, null);
        }
        db.prepare(`DELETE FROM claims WHERE session_id = ? AND image_id != ?`).run(who.sessionId, undone.image_id);
        bulk = { id: undone.bulk_id, undone: rest.length + 1 };
      }
      const undo = insert(db, who, undone.image_id, 'undo', undone.new_label, undone.previous_label, undone.id, now, null, null);
      return bulk ? { undone, undo, bulk } : { undone, undo };
    })
    .immediate();
}

function insert(
  db: DB,
  who: Claimant,
  imageId: number,
  action: Action,
  previous: string,
  next: string,
  undoes: number | null,
  now: number,
  estimate: number | null,
  bulkId: number | null,
): DecisionRow {
  const decidedAt = new Date(now).toISOString();
  const info = db
    .prepare(
      `INSERT INTO decisions (run_id, image_id, annotator, action, previous_label, new_label, undoes, decided_at, estimate, bulk_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(who.runId, imageId, who.annotator, action, previous, next, undoes, decidedAt, estimate, bulkId);
  return {
    id: Number(info.lastInsertRowid),
    run_id: who.runId,
    image_id: imageId,
    annotator: who.annotator,
    action,
    previous_label: previous,
    new_label: next,
    undoes,
    decided_at: decidedAt,
    estimate,
    bulk_id: bulkId,
  };
}

/** The audit trail of a run, oldest first. */
export function decisionsOfRun(db: DB, runId: number): DecisionRow[] {
  return db.prepare(`SELECT * FROM decisions WHERE run_id = ? ORDER BY id`).all(runId) as DecisionRow[];
}
