/**
 * The face-location step after ingest: for each image of a dataset that has no face box yet, decide whether it is
 * already a face crop (`auto`: from its stored size, see isTightCrop) or detect the face in it, and store the box
 * (images.crop_*, crop_source 'detected') or a quality flag ('no-face', 'several-faces'). Flagged images are never
 * embedded (see UNUSABLE_QUALITIES) and are listed by `ingest` and `report`.
 */
import { FerCleanError } from '../errors.js';
import type { DB } from '../store/db.js';
import { getDatasetById, imageFile } from '../store/datasets.js';
import type { BackendPreference } from './backend.js';
import { createDetector, isTightCrop, type DetectMode, type FaceDetector } from './detect.js';
import { UNUSABLE_QUALITIES, type FaceBox } from './facebox.js';

export interface LocateOptions {
  datasetId: number;
  mode: DetectMode;
  backend?: BackendPreference;
  /** ssd_mobilenetv1 score below which a detection is not a face (default 0.5). */
  minScore?: number;
  /** A detector to use instead of face-api's (tests). */
  detector?: FaceDetector;
}

/** An image the step could not use, by its path relative to the dataset root. */
export interface FlaggedImage {
  imageId: number;
  path: string;
  quality: string;
  /** What was found, e.g. '3 faces (scores 0.99, 0.98, 0.61)'. */
  detail: string;
}

export interface LocateSummary {
  mode: DetectMode;
  /** Images looked at by the detector. */
  examined: number;
  /** Images where exactly one face was found, now cropped to it. */
  cropped: number;
  /** Images `auto` took for face crops already (not examined). */
  tight: number;
  /** Images left alone because they already had a box (annotated or detected before) or a flag. */
  kept: number;
  flagged: FlaggedImage[];
  seconds: number;
}

interface Row {
  id: number;
  path: string;
  width: number;
  height: number;
  crop_source: string | null;
  quality: string | null;
}

/**
 * Runs the step on a dataset's images that have no box and no flag (all of them once; a re-run only looks at new
 * images). Results are written in one transaction at the end, so a failure leaves the database as it was.
 */
export async function locateFaces(db: DB, opts: LocateOptions, onProgress?: (done: number, total: number) => void): Promise<LocateSummary> {
  const started = performance.now();
  const dataset = getDatasetById(db, opts.datasetId);
  const rows = db
    .prepare(`SELECT id, path, width, height, crop_source, quality FROM images WHERE dataset_id = ? ORDER BY id`)
    .all(dataset.id) as Row[];
  const summary: LocateSummary = { mode: opts.mode, examined: 0, cropped: 0, tight: 0, kept: 0, flagged: [], seconds: 0 };
  const todo: Row[] = [];
  for (const r of rows) {
    if (r.crop_source !== null || r.quality !== null) summary.kept++;
    else if (opts.mode === 'never') continue;
    else if (opts.mode === 'auto' && isTightCrop(r.width, r.height)) summary.tight++;
    else todo.push(r);
  }
  const boxes: { id: number; box: FaceBox }[] = [];
  if (todo.length) {
    const detector = opts.detector ?? (await createDetector({ backend: opts.backend, minScore: opts.minScore }));
    onProgress?.(0, todo.length);
    for (const [k, r] of todo.entries()) {
      const found = await detector.detect(imageFile(dataset.root, r.path));
      summary.examined++;
      if (found.faces.length === 1) boxes.push({ id: r.id, box: found.faces[0]!.box });
      else {
        const n = found.faces.length;
        summary.flagged.push({
          imageId: r.id,
          path: r.path,
          quality: n === 0 ? 'no-face' : 'several-faces',
          detail: n === 0 ? 'no face found' : `${n} faces (scores ${found.faces.map((f) => f.score.toFixed(2)).join(', ')})`,
        });
      }
      onProgress?.(k + 1, todo.length);
    }
  }
  const setBox = db.prepare(`UPDATE images SET crop_x = ?, crop_y = ?, crop_w = ?, crop_h = ?, crop_source = 'detected' WHERE id = ?`);
  const setFlag = db.prepare(`UPDATE images SET quality = ? WHERE id = ?`);
  db.transaction(() => {
    for (const { id, box } of boxes) setBox.run(box.x, box.y, box.w, box.h, id);
    for (const f of summary.flagged) setFlag.run(f.quality, f.imageId);
  })();
  summary.cropped = boxes.length;
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}

/** The images of a dataset whose quality flag keeps them out of embedding and training, by path. */
export function flaggedImages(db: DB, datasetId: number): { path: string; quality: string }[] {
  return db
    .prepare(
      `SELECT path, quality FROM images WHERE dataset_id = ? AND quality IN (${UNUSABLE_QUALITIES.map(() => '?').join(', ')}) ORDER BY path`,
    )
    .all(datasetId, ...UNUSABLE_QUALITIES) as { path: string; quality: string }[];
}

/** The error for flagged images when --skip-bad was not given: names every image and what was found. */
export function flaggedError(source: string, flagged: FlaggedImage[], max = 50): FerCleanError {
  const n = flagged.length;
  const listed = flagged.slice(0, max).map((f) => `${f.path}: ${f.quality} (${f.detail})`);
  if (n > max) listed.push(`... and ${n - max} more`);
  return new FerCleanError(
    `${n} image${n > 1 ? 's' : ''} in ${source} without exactly one face; nothing was written ` +
      `(crop ${n > 1 ? 'them' : 'it'}, or pass --skip-bad to ingest ${n > 1 ? 'them' : 'it'} flagged: flagged images are not embedded):`,
    listed,
  );
}
