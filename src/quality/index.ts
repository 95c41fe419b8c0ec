/**
 * Data quality beyond labels (issue 19): near-duplicate groups and leakage across splits, outliers in embedding
 * space, images that are not faces, and CleanVision's image checks that matter for faces. `checkQuality` looks at a
 * dataset and stores what it found (migration 006); the readers in stored.ts (duplicateGroups, qualityFlags,
 * flaggedImages...) are what report, export and review use. Nothing here changes an image, a label or a decision.
 */
import { FerCleanError } from '../errors.js';
import { nowIso, type DB } from '../store/db.js';
import { getDatasetById, imageFile } from '../store/datasets.js';
import { boxOfRow, UNUSABLE_QUALITIES } from '../features/facebox.js';
import { DEFAULT_BACKBONE, loadEmbeddings, countStored } from '../features/store.js';
import { backboneVersion, resolveBackbone } from '../features/backbones.js';
import { DEFAULT_IMAGE_CHECKS, imageFlags, type FlagFinding, type ImageCheckThresholds } from './checks.js';
import { groupPairs, type DuplicatePair } from './duplicates.js';
import { classMeans, distanceToClasses } from './outliers.js';
import { alignedCorrelation, greyFace, pixelStats, shrink, STATS_SIDE } from './pixels.js';
import { cosinePairs, unitRows } from './similarity.js';

export { QUALITY_FLAGS, DEFAULT_IMAGE_CHECKS, type QualityFlag, type ImageCheckThresholds } from './checks.js';

export interface QualityOptions {
  datasetId: number;
  /** Embeddings for near-duplicates and outliers (default faceexpr). Without any stored, only exact duplicates and pixel checks run. */
  backbone?: string;
  /** Embedding cosine at which a pair becomes a near-duplicate candidate, confirmed by its pixels (default 0.85). */
  candidate?: number;
  /** Aligned pixel correlation that confirms a candidate (default 0.93). */
  pixelMatch?: number;
  /** Embedding cosine that makes a near-duplicate without pixel confirmation (default 0.98). */
  nearCosine?: number;
  /** Distance to the nearest class mean above which an image is an outlier (default 0.45). */
  outlier?: number;
  imageChecks?: Partial<ImageCheckThresholds>;
  /** Images decoded at once (default 8). */
  concurrency?: number;
}

/** Sides of the two quick looks at a candidate pair, and how far below pixelMatch each may be and still pass. */
const COARSE_SIDE = 12;
const MIDDLE_SIDE = 24;
const MIDDLE_MARGIN = 0.08;
/** Shifts (pixels at 48 x 48, each way) allowed when two faces are compared. */
const MAX_SHIFT = 2;
const COARSE_MARGIN = 0.15;

/** Defaults, calibrated in docs/QUALITY.md. */
export const DEFAULT_QUALITY = { candidate: 0.85, pixelMatch: 0.93, nearCosine: 0.98, outlier: 0.45 } as const;

export interface QualitySummary {
  dataset_id: number;
  images: number;
  /** Embeddings used; null when none were stored (near-duplicates and outliers not looked for). */
  backbone: string | null;
  groups: { exact: number; near: number };
  /** Images in a duplicate group beyond its first: what --dedupe drops. */
  redundant_images: number;
  /** Pairs of images in one group. */
  pairs: number;
  /** Pairs whose two images are in different splits (test faces also in train: benchmark leakage). */
  pairs_across_splits: number;
  /** Groups that span more than one split. */
  groups_across_splits: number;
  /** Pairs whose two images carry different given labels. */
  pairs_conflicting: number;
  /** Groups whose images carry different given labels. */
  groups_conflicting: number;
  /** Images flagged, by flag. */
  flags: Record<string, number>;
  seconds: { pixels: number; pairs: number; total: number };
  options: Required<Omit<QualityOptions, 'datasetId' | 'backbone' | 'imageChecks' | 'concurrency'>> & { imageChecks: ImageCheckThresholds };
}

interface ImageRow {
  id: number;
  path: string;
  sha256: string;
  split: string;
  quality: string | null;
  given: string | null;
  trainable: number | null;
  crop_x: number | null;
  crop_y: number | null;
  crop_w: number | null;
  crop_h: number | null;
}

/**
 * Looks at every image of a dataset and stores the duplicate groups and quality flags it finds (replacing the
 * previous check's, in one transaction at the end: a failure leaves the database as it was).
 *
 * @param db the store
 * @param opts which dataset, which embeddings, and the thresholds (DEFAULT_QUALITY, DEFAULT_IMAGE_CHECKS)
 * @param onProgress called with (images decoded, images) during the pixel pass
 */
export async function checkQuality(db: DB, opts: QualityOptions, onProgress?: (done: number, total: number) => void): Promise<QualitySummary> {
  const started = performance.now();
  const dataset = getDatasetById(db, opts.datasetId);
  const o = {
    candidate: opts.candidate ?? DEFAULT_QUALITY.candidate,
    pixelMatch: opts.pixelMatch ?? DEFAULT_QUALITY.pixelMatch,
    nearCosine: opts.nearCosine ?? DEFAULT_QUALITY.nearCosine,
    outlier: opts.outlier ?? DEFAULT_QUALITY.outlier,
    imageChecks: { ...DEFAULT_IMAGE_CHECKS, ...opts.imageChecks },
  };
  for (const [name, v, lo, hi] of [
    ['candidate', o.candidate, -1, 1],
    ['pixelMatch', o.pixelMatch, -1, 1],
    ['nearCosine', o.nearCosine, -1, 1],
    ['outlier', o.outlier, 0, 2],
  ] as const) {
    if (!Number.isFinite(v) || v < lo || v > hi) throw new FerCleanError(`quality: ${name} must be a number from ${lo} to ${hi}, got ${v}`);
  }
  const rows = db
    .prepare(
      `SELECT i.id, i.path, i.sha256, i.split, i.quality, l.given, l.trainable, i.crop_x, i.crop_y, i.crop_w, i.crop_h
       FROM images i LEFT JOIN labels l ON l.image_id = i.id WHERE i.dataset_id = ? ORDER BY i.id`,
    )
    .all(dataset.id) as ImageRow[];
  const index = new Map(rows.map((r, k) => [r.id, k]));
  const usable = rows.map((r) => r.quality === null || !UNUSABLE_QUALITIES.includes(r.quality));

  // 1. pixels: checks and the small grey image each face is compared on
  const t0 = performance.now();
  const findings = new Map<number, FlagFinding[]>();
  const faces: (Uint8Array | null)[] = rows.map(() => null);
  const coarse: (Float32Array | null)[] = rows.map(() => null);
  const middle: (Float32Array | null)[] = rows.map(() => null);
  const todo = rows.map((_, k) => k).filter((k) => usable[k]);
  let next = 0;
  let done = 0;
  onProgress?.(0, todo.length);
  const worker = async (): Promise<void> => {
    while (next < todo.length) {
      const k = todo[next++]!;
      const r = rows[k]!;
      const grey = await greyFace(imageFile(dataset.root, r.path), boxOfRow(r));
      const found = imageFlags(pixelStats(grey), o.imageChecks);
      if (found.length) findings.set(k, found);
      faces[k] = Uint8Array.from(grey);
      middle[k] = shrink(grey, STATS_SIDE, MIDDLE_SIDE);
      coarse[k] = shrink(middle[k]!, MIDDLE_SIDE, COARSE_SIDE);
      onProgress?.(++done, todo.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 8) }, worker));
  const pixelSeconds = (performance.now() - t0) / 1000;

  // 2. exact duplicates: the same bytes
  const pairs: DuplicatePair[] = [];
  const bySha = new Map<string, number>();
  rows.forEach((r, k) => {
    const first = bySha.get(r.sha256);
    if (first === undefined) bySha.set(r.sha256, k);
    else pairs.push({ i: first, j: k, cos: 1, pixel: null, exact: true });
  });

  // 3. near duplicates and outliers, from the embeddings
  const t1 = performance.now();
  const backbone = resolveBackbone(opts.backbone ?? DEFAULT_BACKBONE);
  const hasEmbeddings = backbone.parts.every((p) => countStored(db, dataset.id, p.id, backboneVersion(p)) > 0);
  if (hasEmbeddings) {
    const emb = loadEmbeddings(db, { datasetId: dataset.id, backbone: backbone.name });
    const rowOf = emb.imageIds.map((id) => index.get(id)!);
    const { pairs: candidates } = await cosinePairs(emb.data, emb.dim, Math.min(o.candidate, o.nearCosine));
    for (const c of candidates) {
      const i = rowOf[c.i]!;
      const j = rowOf[c.j]!;
      if (rows[i]!.sha256 === rows[j]!.sha256) continue; // already an exact pair
      // most candidates are two different photos of similar faces: a 12 x 12 look (shifts of 4 px), then a 24 x 24
      // one (2 px), turn them away at a hundredth and a tenth of the cost of the 48 x 48 comparison; a copy
      // correlates higher at a coarser scale (averaging smooths the differences), so the margins lose none of them
      if (c.cos < o.nearCosine) {
        if (alignedCorrelation(coarse[i]!, coarse[j]!, 1) < o.pixelMatch - COARSE_MARGIN) continue;
        if (alignedCorrelation(middle[i]!, middle[j]!, 1) < o.pixelMatch - MIDDLE_MARGIN) continue;
      }
      const pixel = alignedCorrelation(faces[i]!, faces[j]!, MAX_SHIFT);
      if (c.cos >= o.nearCosine || pixel >= o.pixelMatch) pairs.push({ i, j, cos: c.cos, pixel, exact: false });
    }
    // outliers: far from every class mean (given labels of expression classes)
    const unit = unitRows(emb.data, emb.dim);
    const labels = Int32Array.from(rowOf, (k) => (rows[k]!.trainable === 0 || rows[k]!.given === null ? -1 : dataset.taxonomy.indexOf(rows[k]!.given!)));
    const distance = distanceToClasses(unit, emb.dim, classMeans(unit, emb.dim, labels, dataset.taxonomy.length));
    distance.forEach((d, e) => {
      if (d <= o.outlier) return;
      const k = rowOf[e]!;
      const list = findings.get(k) ?? [];
      list.unshift({ flag: 'outlier', score: d, detail: `cosine ${(1 - d).toFixed(3)} to the nearest class mean (distance ${d.toFixed(3)} > ${o.outlier})` });
      findings.set(k, list);
    });
  }
  const pairSeconds = (performance.now() - t1) / 1000;

  // 4. groups, counted and stored
  const groups = groupPairs(rows.length, pairs);
  const summary: QualitySummary = {
    dataset_id: dataset.id,
    images: rows.length,
    backbone: hasEmbeddings ? backbone.name : null,
    groups: { exact: 0, near: 0 },
    redundant_images: 0,
    pairs: 0,
    pairs_across_splits: 0,
    groups_across_splits: 0,
    pairs_conflicting: 0,
    groups_conflicting: 0,
    flags: {},
    seconds: { pixels: pixelSeconds, pairs: pairSeconds, total: 0 },
    options: o,
  };
  for (const g of groups) {
    summary.groups[g.kind]++;
    summary.redundant_images += g.members.length - 1;
    const ms = g.members.map((k) => rows[k]!);
    if (new Set(ms.map((m) => m.split)).size > 1) summary.groups_across_splits++;
    if (new Set(ms.map((m) => m.given)).size > 1) summary.groups_conflicting++;
    for (let a = 0; a < ms.length; a++) {
      for (let b = a + 1; b < ms.length; b++) {
        summary.pairs++;
        if (ms[a]!.split !== ms[b]!.split) summary.pairs_across_splits++;
        if (ms[a]!.given !== ms[b]!.given) summary.pairs_conflicting++;
      }
    }
  }
  for (const list of findings.values()) for (const f of list) summary.flags[f.flag] = (summary.flags[f.flag] ?? 0) + 1;

  const ids = rows.map((r) => r.id);
  db.transaction(() => {
    db.prepare(`DELETE FROM quality_flags WHERE image_id IN (SELECT id FROM images WHERE dataset_id = ?)`).run(dataset.id);
    db.prepare(`DELETE FROM duplicate_groups WHERE dataset_id = ?`).run(dataset.id);
    const addGroup = db.prepare(`INSERT INTO duplicate_groups (dataset_id, kind, similarity, pixel_similarity) VALUES (?, ?, ?, ?)`);
    const addMember = db.prepare(`INSERT INTO duplicate_members (group_id, image_id) VALUES (?, ?)`);
    for (const g of groups) {
      const gid = Number(addGroup.run(dataset.id, g.kind, g.similarity, g.pixelSimilarity).lastInsertRowid);
      for (const k of g.members) addMember.run(gid, ids[k]);
    }
    const addFlag = db.prepare(`INSERT INTO quality_flags (image_id, flag, score, detail) VALUES (?, ?, ?, ?)`);
    for (const [k, list] of findings) for (const f of list) addFlag.run(ids[k], f.flag, f.score, f.detail);
    summary.seconds.total = (performance.now() - started) / 1000;
    db.prepare(
      `INSERT INTO quality_checks (dataset_id, backbone, options, images, seconds, checked_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (dataset_id) DO UPDATE SET backbone = excluded.backbone, options = excluded.options, images = excluded.images,
         seconds = excluded.seconds, checked_at = excluded.checked_at`,
    ).run(dataset.id, summary.backbone, JSON.stringify(o), rows.length, summary.seconds.total, nowIso());
  })();
  return summary;
}

export * from './stored.js';
