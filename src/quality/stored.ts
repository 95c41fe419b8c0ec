/**
 * The stored findings of `fer-clean quality` read back (duplicate groups, quality flags, the flagged images, the
 * last check): what report, export and review use. Kept apart from the check itself (index.ts) so that reading them
 * loads no image decoder or ONNX code: the review session imports these. Nothing here writes.
 */
import { FerCleanError } from '../errors.js';
import type { DB } from '../store/db.js';
import { QUALITY_FLAGS, type QualityFlag } from './checks.js';
import { UNUSABLE_QUALITIES } from '../features/facebox.js';

/** When a dataset was last checked, or null if never. */
export function lastQualityCheck(db: DB, datasetId: number): { backbone: string | null; images: number; checked_at: string; options: unknown } | null {
  const r = db.prepare(`SELECT backbone, images, checked_at, options FROM quality_checks WHERE dataset_id = ?`).get(datasetId) as
    | { backbone: string | null; images: number; checked_at: string; options: string }
    | undefined;
  return r ? { ...r, options: JSON.parse(r.options) as unknown } : null;
}

/** One image of a duplicate group. */
export interface DuplicateMember {
  image_id: number;
  path: string;
  split: string;
  /** The given label (labels.given). */
  label: string | null;
}

export interface DuplicateGroup {
  id: number;
  kind: 'exact' | 'near';
  /** Lowest embedding cosine of the pairs that joined the group (1 for exact). */
  similarity: number;
  /** Lowest aligned pixel correlation of its near pairs; null for exact groups. */
  pixel_similarity: number | null;
  /** Splits its images are in (more than one: leakage across splits). */
  splits: string[];
  /** Whether its images carry different given labels. */
  labels_disagree: boolean;
  images: DuplicateMember[];
}

/**
 * A dataset's duplicate groups as the last check stored them: largest first, each image with path, split and label.
 *
 * @param opts.conflicting only groups whose images carry different labels (what a reviewer must settle)
 * @param opts.acrossSplits only groups that span more than one split
 */
export function duplicateGroups(db: DB, datasetId: number, opts: { conflicting?: boolean; acrossSplits?: boolean } = {}): DuplicateGroup[] {
  const rows = db
    .prepare(
      `SELECT g.id, g.kind, g.similarity, g.pixel_similarity, i.id AS image_id, i.path, i.split, l.given AS label
       FROM duplicate_groups g JOIN duplicate_members m ON m.group_id = g.id JOIN images i ON i.id = m.image_id
       LEFT JOIN labels l ON l.image_id = i.id
       WHERE g.dataset_id = ? ORDER BY g.id, i.id`,
    )
    .all(datasetId) as (Omit<DuplicateGroup, 'images' | 'splits' | 'labels_disagree'> & DuplicateMember)[];
  const groups: DuplicateGroup[] = [];
  for (const r of rows) {
    let g = groups[groups.length - 1];
    if (!g || g.id !== r.id) {
      groups.push((g = { id: r.id, kind: r.kind, similarity: r.similarity, pixel_similarity: r.pixel_similarity, splits: [], labels_disagree: false, images: [] }));
    }
    g.images.push({ image_id: r.image_id, path: r.path, split: r.split, label: r.label });
  }
  for (const g of groups) {
    g.splits = [...new Set(g.images.map((m) => m.split))].sort();
    g.labels_disagree = new Set(g.images.map((m) => m.label)).size > 1;
  }
  return groups
    .filter((g) => (!opts.conflicting || g.labels_disagree) && (!opts.acrossSplits || g.splits.length > 1))
    .sort((a, b) => b.images.length - a.images.length || a.id - b.id);
}

/** Groups whose images carry different labels: each needs one label for the group, or to be marked as different faces. */
export function conflictingDuplicateGroups(db: DB, datasetId: number): DuplicateGroup[] {
  return duplicateGroups(db, datasetId, { conflicting: true });
}

/**
 * The images `export --dedupe drop` leaves out: in each duplicate group every image but the one kept (none of a group
 * a reviewer marked as different faces, `review --duplicates`). Kept: an image
 * of the test split first (so a benchmark keeps its faces and train loses its copies), then valid, then train, then the
 * lowest image id.
 */
export function redundantImageIds(db: DB, datasetId: number): Set<number> {
  const rank = (split: string): number => ({ test: 0, valid: 1, train: 2 })[split] ?? 3;
  const out = new Set<number>();
  const different = differentFacesDecisions(db, datasetId);
  for (const g of duplicateGroups(db, datasetId)) {
    // a reviewer said these are different faces (review --duplicates, d): not duplicates, none is dropped
    if (different.some((d) => g.images.every((m) => d.has(m.image_id)))) continue;
    const keep = [...g.images].sort((a, b) => rank(a.split) - rank(b.split) || a.image_id - b.image_id)[0]!;
    for (const m of g.images) if (m.image_id !== keep.image_id) out.add(m.image_id);
  }
  return out;
}

/** The image sets of the dataset's standing different-faces group decisions (migration 009; not undone). */
function differentFacesDecisions(db: DB, datasetId: number): Set<number>[] {
  const rows = db
    .prepare(
      `SELECT g.id, gi.image_id FROM group_decisions g JOIN group_decision_images gi ON gi.decision_id = g.id
       WHERE g.dataset_id = ? AND g.action = 'different-faces' AND NOT EXISTS (SELECT 1 FROM group_decisions u WHERE u.undoes = g.id)`,
    )
    .all(datasetId) as { id: number; image_id: number }[];
  const byId = new Map<number, Set<number>>();
  for (const r of rows) (byId.get(r.id) ?? byId.set(r.id, new Set()).get(r.id)!).add(r.image_id);
  return [...byId.values()];
}

export interface FlagRow {
  image_id: number;
  path: string;
  split: string;
  label: string | null;
  flag: QualityFlag;
  score: number;
  detail: string;
}

/**
 * Quality flags of a dataset's images, by flag (QUALITY_FLAGS order) then image; `flag` picks one kind.
 */
export function qualityFlags(db: DB, datasetId: number, opts: { flag?: QualityFlag } = {}): FlagRow[] {
  if (opts.flag !== undefined && !QUALITY_FLAGS.includes(opts.flag)) {
    throw new FerCleanError(`unknown quality flag '${String(opts.flag)}' (known: ${QUALITY_FLAGS.join(', ')})`);
  }
  const rows = db
    .prepare(
      `SELECT f.image_id, i.path, i.split, l.given AS label, f.flag, f.score, f.detail
       FROM quality_flags f JOIN images i ON i.id = f.image_id LEFT JOIN labels l ON l.image_id = i.id
       WHERE i.dataset_id = ? AND (? IS NULL OR f.flag = ?) ORDER BY f.image_id`,
    )
    .all(datasetId, opts.flag ?? null, opts.flag ?? null) as FlagRow[];
  const order = (f: string): number => QUALITY_FLAGS.indexOf(f as QualityFlag);
  return rows.sort((a, b) => order(a.flag) - order(b.flag) || a.image_id - b.image_id);
}

/** Why an image is flagged: its ingest flag, a label that is not an expression, or a quality check. */
export interface FlagReason {
  /** 'ingest' (images.quality: no face, several faces), 'label' (not an expression class), 'quality' (checkQuality). */
  source: 'ingest' | 'label' | 'quality';
  flag: string;
  score: number | null;
  detail: string;
}

export interface FlaggedImage {
  image_id: number;
  path: string;
  split: string;
  label: string | null;
  reasons: FlagReason[];
}

/**
 * Every flagged image of a dataset, ONCE, with all its reasons: the ingest flag (no face, several faces: not
 * embedded), a label that is not an expression class (AffectNet none, uncertain, no-face: not trained on), and the
 * quality checks' flags. An AffectNet code-10 image is one entry with two reasons, not two listings. By path.
 */
export function flaggedImages(db: DB, datasetId: number): FlaggedImage[] {
  const rows = db
    .prepare(
      `SELECT i.id AS image_id, i.path, i.split, l.given AS label, i.quality, coalesce(l.trainable, 1) AS trainable
       FROM images i LEFT JOIN labels l ON l.image_id = i.id
       WHERE i.dataset_id = ? AND (i.quality IS NOT NULL OR l.trainable = 0 OR EXISTS (SELECT 1 FROM quality_flags f WHERE f.image_id = i.id))
       ORDER BY i.path`,
    )
    .all(datasetId) as { image_id: number; path: string; split: string; label: string | null; quality: string | null; trainable: number }[];
  const flagsOf = db.prepare(`SELECT flag, score, detail FROM quality_flags WHERE image_id = ?`);
  return rows.map((r) => {
    const reasons: FlagReason[] = [];
    if (r.quality !== null) {
      const unusable = UNUSABLE_QUALITIES.includes(r.quality);
      reasons.push({ source: 'ingest', flag: r.quality, score: null, detail: unusable ? 'flagged at ingest, not embedded' : 'flagged at ingest' });
    }
    if (r.trainable === 0) reasons.push({ source: 'label', flag: r.label ?? 'none', score: null, detail: 'label is not an expression class: kept, not trained on' });
    const q = (flagsOf.all(r.image_id) as { flag: QualityFlag; score: number; detail: string }[]).sort(
      (a, b) => QUALITY_FLAGS.indexOf(a.flag) - QUALITY_FLAGS.indexOf(b.flag),
    );
    for (const f of q) reasons.push({ source: 'quality', flag: f.flag, score: f.score, detail: f.detail });
    return { image_id: r.image_id, path: r.path, split: r.split, label: r.label, reasons };
  });
}
