/**
 * Duplicate groups whose labels disagree, as review items of their own kind (issue 19): the reviewer keeps one label
 * for the whole group, or says the images are different faces. Pure functions on plain arrays (which groups need a
 * decision, what settles one, which comes next) and the store's side (read the groups, record a group decision,
 * undo one), each write in one IMMEDIATE transaction.
 *
 * A keep-label decision writes one `manual` row per image into `decisions` (naming its group_decisions row), so the
 * label kept is the decision in force for every image of the group: export, `train --trust-decisions` and the
 * proposal review read it through decisionsInForce like any other decision. A different-faces decision changes no
 * label; it settles the group. Groups are stored by their images (group_decision_images), not by
 * duplicate_groups.id, which every `fer-clean quality` renumbers: a decision holds for a group whose images it
 * covers, and a group that gained an image since is asked about again.
 */
import { FerCleanError } from '../../errors.js';
import type { DB } from '../../store/db.js';
import { imageFile } from '../../store/datasets.js';
import type { DatasetRow } from '../../store/datasets.js';
import { boxOfRow, type FaceBox } from '../../features/facebox.js';
import { duplicateGroups } from '../../quality/stored.js';
import { decisionsInForce, effectiveFor } from './decisions.js';

export type GroupAction = 'keep-label' | 'different-faces';
export const GROUP_ACTIONS: readonly GroupAction[] = ['keep-label', 'different-faces'];

/** One image of a group as the reviewer sees it. */
export interface GroupMember {
  imageId: number;
  path: string;
  split: string;
  /** The dataset's given label (null: none stored). */
  given: string | null;
  /** The label in force: the decision in force, else the given label. */
  label: string | null;
  /** Who made the decision in force on it (null: nobody, the given label stands). */
  decidedBy: string | null;
}

/** A group decision not undone, with the images it was made on. */
export interface StandingGroupDecision {
  id: number;
  action: GroupAction;
  label: string | null;
  annotator: string;
  decidedAt: string;
  images: ReadonlySet<number>;
}

/** Why a group needs no decision: one label in force for all its images, or marked as different faces. */
export type Settlement =
  | { kind: 'kept'; label: string; by: string | null; decisionId: number | null }
  | { kind: 'different'; by: string; decisionId: number };

/** A duplicate group in the review: its images and whether it is settled. */
export interface GroupItem {
  /** duplicate_groups.id as the last quality check numbered it. */
  groupId: number;
  kind: 'exact' | 'near';
  similarity: number;
  pixelSimilarity: number | null;
  splits: string[];
  members: GroupMember[];
  /** null: the labels in force disagree and nobody marked the images as different faces. */
  settled: Settlement | null;
}

const covers = (d: StandingGroupDecision, members: readonly GroupMember[]): boolean => members.every((m) => d.images.has(m.imageId));

/**
 * Whether a group is settled (pure): marked as different faces by a standing decision that covers all its images
 * (the latest such), else kept when every image's label in force is the same (naming the standing keep-label
 * decision that covers the group with that label, if any), else null.
 */
export function settlementOf(members: readonly GroupMember[], standing: readonly StandingGroupDecision[]): Settlement | null {
  const latest = [...standing].sort((a, b) => b.id - a.id);
  const different = latest.find((d) => d.action === 'different-faces' && covers(d, members));
  if (different) return { kind: 'different', by: different.annotator, decisionId: different.id };
  const labels = new Set(members.map((m) => m.label));
  if (labels.size !== 1) return null;
  const label = members[0]?.label ?? null;
  if (label === null) return null;
  const kept = latest.find((d) => d.action === 'keep-label' && d.label === label && covers(d, members));
  return { kind: 'kept', label, by: kept?.annotator ?? null, decisionId: kept?.id ?? null };
}

/**
 * Which groups are review items (pure): those whose given labels disagree, or whose labels in force disagree (an
 * image relabelled in the proposal review), or that a standing group decision covers (so a settled group stays in
 * the list to look at again). Order: largest group first, then group id (as duplicateGroups gives them).
 */
export function groupItemsOf(
  groups: readonly { id: number; kind: 'exact' | 'near'; similarity: number; pixel_similarity: number | null; splits: string[]; members: GroupMember[] }[],
  standing: readonly StandingGroupDecision[],
): GroupItem[] {
  const out: GroupItem[] = [];
  for (const g of groups) {
    const givenDisagree = new Set(g.members.map((m) => m.given)).size > 1;
    const inForceDisagree = new Set(g.members.map((m) => m.label)).size > 1;
    const decided = standing.some((d) => covers(d, g.members));
    if (!givenDisagree && !inForceDisagree && !decided) continue;
    out.push({
      groupId: g.id,
      kind: g.kind,
      similarity: g.similarity,
      pixelSimilarity: g.pixel_similarity,
      splits: g.splits,
      members: g.members,
      settled: settlementOf(g.members, standing),
    });
  }
  return out;
}

/** The place of the next group that needs a decision after place `from` (-1: from the top), wrapping; null if none. */
export function nextOpenGroup(items: readonly GroupItem[], from: number): number | null {
  const n = items.length;
  for (let k = 1; k <= n; k++) {
    const p = (from + k + n) % n;
    if (items[p]!.settled === null) return p;
  }
  return null;
}

/** Counts for the progress line: groups, open ones, kept, marked different. */
export function groupCounts(items: readonly GroupItem[]): { total: number; open: number; kept: number; different: number } {
  const c = { total: items.length, open: 0, kept: 0, different: 0 };
  for (const it of items) {
    if (it.settled === null) c.open++;
    else if (it.settled.kind === 'kept') c.kept++;
    else c.different++;
  }
  return c;
}

/** Identifies a group by its images (what a decision is stored by): sorted ids joined. */
export const groupKey = (members: readonly { imageId: number }[]): string =>
  members
    .map((m) => m.imageId)
    .sort((a, b) => a - b)
    .join(',');

// ---------------------------------------------------------------------------------------------------------------
// The store's side.

/** The group decisions of a dataset that are not undone (any annotator), with their images. */
export function standingGroupDecisions(db: DB, datasetId: number): StandingGroupDecision[] {
  const rows = db
    .prepare(
      `SELECT g.id, g.action, g.label, g.annotator, g.decided_at, gi.image_id
       FROM group_decisions g JOIN group_decision_images gi ON gi.decision_id = g.id
       WHERE g.dataset_id = ? AND g.action != 'undo' AND NOT EXISTS (SELECT 1 FROM group_decisions u WHERE u.undoes = g.id)
       ORDER BY g.id`,
    )
    .all(datasetId) as { id: number; action: GroupAction; label: string | null; annotator: string; decided_at: string; image_id: number }[];
  const byId = new Map<number, StandingGroupDecision & { images: Set<number> }>();
  for (const r of rows) {
    let d = byId.get(r.id);
    if (!d) byId.set(r.id, (d = { id: r.id, action: r.action, label: r.label, annotator: r.annotator, decidedAt: r.decided_at, images: new Set() }));
    d.images.add(r.image_id);
  }
  return [...byId.values()];
}

/**
 * The duplicate groups of a dataset that are review items (see groupItemsOf), as the last `fer-clean quality`
 * stored them, each image with its label in force.
 */
export function loadGroupItems(db: DB, datasetId: number): GroupItem[] {
  const inForce = decisionsInForce(db, { datasetId });
  const groups = duplicateGroups(db, datasetId).map((g) => ({
    id: g.id,
    kind: g.kind,
    similarity: g.similarity,
    pixel_similarity: g.pixel_similarity,
    splits: g.splits,
    members: g.images.map((m): GroupMember => {
      const e = inForce.get(m.image_id);
      return { imageId: m.image_id, path: m.path, split: m.split, given: m.label, label: e?.label ?? m.label, decidedBy: e?.annotator ?? null };
    }),
  }));
  return groupItemsOf(groups, standingGroupDecisions(db, datasetId));
}

/** Where each image of a group is on disk, and its face box (to draw it). */
export function memberFiles(db: DB, dataset: DatasetRow, members: readonly GroupMember[]): { imageId: number; file: string; box: FaceBox | null }[] {
  const get = db.prepare(`SELECT path, crop_x, crop_y, crop_w, crop_h FROM images WHERE id = ? AND dataset_id = ?`);
  return members.map((m) => {
    const r = get.get(m.imageId, dataset.id) as ({ path: string } & Parameters<typeof boxOfRow>[0]) | undefined;
    if (!r) throw new FerCleanError(`dataset ${dataset.name} has no image ${m.imageId}`);
    return { imageId: m.imageId, file: imageFile(dataset.root, r.path), box: boxOfRow(r) };
  });
}

/** Who decides on a group: the annotator, the dataset, and the run under review (context only, may be null). */
export interface GroupDecider {
  annotator: string;
  datasetId: number;
  runId: number | null;
}

export interface GroupDecisionRow {
  id: number;
  action: GroupAction | 'undo';
  label: string | null;
  annotator: string;
  undoes: number | null;
  decided_at: string;
}

/**
 * Records a decision on the group made of `imageIds`, in one IMMEDIATE transaction: the group_decisions row, its
 * images, and for keep-label one `manual` row per image in `decisions` (previous_label: the label in force before,
 * new_label: `label`), so that nothing of it is written unless all of it is. `label` must be one of the dataset's
 * classes (the caller's taxonomy check); every image must belong to the dataset.
 *
 * @param action 'keep-label' (needs `label`) or 'different-faces'
 */
export function recordGroupDecision(
  db: DB,
  who: GroupDecider,
  imageIds: readonly number[],
  action: GroupAction,
  label?: string,
  opts: { now?: number; taxonomy?: readonly string[] } = {},
): GroupDecisionRow {
  if (!GROUP_ACTIONS.includes(action)) throw new FerCleanError(`group decision '${String(action)}' is not one of ${GROUP_ACTIONS.join(', ')}`);
  if (action === 'keep-label' && !label) throw new FerCleanError('keep-label needs the label to keep');
  if (action === 'keep-label' && opts.taxonomy && !opts.taxonomy.includes(label!)) {
    throw new FerCleanError(`label '${label}' is not one of this dataset's classes (${opts.taxonomy.join(', ')})`);
  }
  const ids = [...new Set(imageIds)];
  if (ids.length < 2) throw new FerCleanError('a duplicate group has at least two images');
  const decidedAt = new Date(opts.now ?? Date.now()).toISOString();
  return db
    .transaction((): GroupDecisionRow => {
      const inDataset = db.prepare(`SELECT 1 FROM images WHERE id = ? AND dataset_id = ?`).pluck();
      for (const id of ids) if (!inDataset.get(id, who.datasetId)) throw new FerCleanError(`image ${id} is not in dataset ${who.datasetId}`);
      const keep = action === 'keep-label' ? label! : null;
      const id = Number(
        db
          .prepare(`INSERT INTO group_decisions (dataset_id, run_id, annotator, action, label, undoes, decided_at) VALUES (?, ?, ?, ?, ?, NULL, ?)`)
          .run(who.datasetId, who.runId, who.annotator, action, keep, decidedAt).lastInsertRowid,
      );
      const member = db.prepare(`INSERT INTO group_decision_images (decision_id, image_id) VALUES (?, ?)`);
      for (const img of ids) member.run(id, img);
      if (keep !== null) {
        const given = db.prepare(`SELECT given FROM labels WHERE image_id = ?`).pluck();
        const row = db.prepare(
          `INSERT INTO decisions (run_id, image_id, annotator, action, previous_label, new_label, undoes, decided_at, group_decision_id)
           VALUES (NULL, ?, ?, 'manual', ?, ?, NULL, ?, ?)`,
        );
        for (const img of ids) {
          const previous = effectiveFor(db, img)?.label ?? ((given.get(img) as string | undefined) ?? keep);
          row.run(img, who.annotator, previous, keep, decidedAt, id);
        }
      }
      return { id, action, label: keep, annotator: who.annotator, undoes: null, decided_at: decidedAt };
    })
    .immediate();
}

/** This annotator's latest group decision in the dataset that is not undone. */
export function lastUndoableGroupDecision(db: DB, datasetId: number, annotator: string): GroupDecisionRow | undefined {
  return db
    .prepare(
      `SELECT id, action, label, annotator, undoes, decided_at FROM group_decisions g
       WHERE g.dataset_id = ? AND g.annotator = ? AND g.action != 'undo'
         AND NOT EXISTS (SELECT 1 FROM group_decisions u WHERE u.undoes = g.id)
       ORDER BY g.id DESC LIMIT 1`,
    )
    .get(datasetId, annotator) as GroupDecisionRow | undefined;
}

/**
 * Undoes this annotator's latest group decision in the dataset, in one IMMEDIATE transaction: an `undo` row in
 * group_decisions naming it and, for keep-label, an `undo` row in `decisions` for each of its rows (a later decision
 * on an image stays in force). Returns the undone row and the images it covered, or undefined when there is none.
 */
export function undoLastGroupDecision(
  db: DB,
  who: GroupDecider,
  opts: { now?: number } = {},
): { undone: GroupDecisionRow; undo: GroupDecisionRow; images: number[] } | undefined {
  const decidedAt = new Date(opts.now ?? Date.now()).toISOString();
  return db
    .transaction(() => {
      const undone = lastUndoableGroupDecision(db, who.datasetId, who.annotator);
      if (!undone) return undefined;
      const id = Number(
        db
          .prepare(`INSERT INTO group_decisions (dataset_id, run_id, annotator, action, label, undoes, decided_at) VALUES (?, ?, ?, 'undo', NULL, ?, ?)`)
          .run(who.datasetId, who.runId, who.annotator, undone.id, decidedAt).lastInsertRowid,
      );
      const rows = db
        .prepare(
          `SELECT id, image_id, previous_label, new_label FROM decisions d WHERE d.group_decision_id = ? AND d.action != 'undo'
             AND NOT EXISTS (SELECT 1 FROM decisions u WHERE u.undoes = d.id) ORDER BY d.id`,
        )
        .all(undone.id) as { id: number; image_id: number; previous_label: string; new_label: string }[];
      const undo = db.prepare(
        `INSERT INTO decisions (run_id, image_id, annotator, action, previous_label, new_label, undoes, decided_at, group_decision_id)
         VALUES (NULL, ?, ?, 'undo', ?, ?, ?, ?, ?)`,
      );
      for (const r of rows) undo.run(r.image_id, who.annotator, r.new_label, r.previous_label, r.id, decidedAt, id);
      const images = (db.prepare(`SELECT image_id FROM group_decision_images WHERE decision_id = ? ORDER BY image_id`).pluck().all(undone.id) as number[]);
      return { undone, undo: { id, action: 'undo' as const, label: null, annotator: who.annotator, undoes: undone.id, decided_at: decidedAt }, images };
    })
    .immediate();
}
