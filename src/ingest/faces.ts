/**
 * Ingest followed by the face-location step (features/locate.ts) as one unit of work: when the step finds images
 * without exactly one face and `skipBad` is off, nothing is written; with `skipBad` they are stored with their
 * quality flag (never embedded) and listed.
 */
import type { DB } from '../store/db.js';
import type { BackendPreference } from '../features/backend.js';
import type { DetectMode, FaceDetector } from '../features/detect.js';
import { flaggedError, locateFaces, type LocateSummary } from '../features/locate.js';
import { ingest } from './index.js';
import type { IngestOptions, IngestSummary, ProgressFn } from './types.js';

export interface FaceOptions {
  mode: DetectMode;
  backend?: BackendPreference;
  minScore?: number;
  /** A detector to use instead of face-api's (tests). */
  detector?: FaceDetector;
}

export async function ingestWithFaces(
  db: DB,
  opts: IngestOptions,
  faces: FaceOptions,
  progress: { ingest?: ProgressFn; detect?: ProgressFn } = {},
): Promise<{ ingest: IngestSummary; faces: LocateSummary }> {
  // ingest's and locate's own transactions become savepoints of this one
  db.exec('BEGIN IMMEDIATE');
  try {
    const summary = await ingest(db, opts, progress.ingest);
    const located = await locateFaces(
      db,
      { datasetId: summary.dataset.id, mode: faces.mode, backend: faces.backend, minScore: faces.minScore, detector: faces.detector },
      progress.detect,
    );
    if (located.flagged.length && !opts.skipBad) throw flaggedError(opts.source, located.flagged);
    db.exec('COMMIT');
    return { ingest: summary, faces: located };
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw e;
  }
}
