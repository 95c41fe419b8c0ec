import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { nowIso, openStore, type DB } from '../src/store/db.js';
import { defaultTaxonomy } from '../src/taxonomy.js';
import { fixture } from './helpers.js';


export interface SeedOptions {
  /** How many fixture train images (in labels.csv order) to put in the run. */
  images?: number;
  /** How many of them (the first ones) get a proposal; the rest have none. */
  proposals?: number;
  contempt?: boolean;
  /** Add a later run (status done, so the dataset's latest) with no proposals; its id is returned as emptyRunId. */
  emptyRun?: boolean;
}

export interface Seeded {
  db: DB;
  runId: number;
  emptyRunId?: number;
  datasetId: number;
  taxonomy: string[];
  /** Images of the run in insertion order, with their given and proposed labels. */
  images: { imageId: number; path: string; given: string; proposed: string | null; margin: number | null }[];
}

/**
 * A database at `dbPath` holding the FER+ fixture's first train images (real files under fixtures/ferplus) and one
 * finished run whose probabilities come from the FER+ votes; the proposed label is the most voted class other than
 * the given one, so every image with a proposal has a real alternative.
 */
export function seedReviewDb(dbPath: string, opts: SeedOptions = {}): Seeded {
  const n = opts.images ?? 10;
  const nProposals = opts.proposals ?? n;
  const taxonomy = defaultTaxonomy(opts.contempt ?? false);
  const root = fixture('ferplus');
  const rows = (parse(readFileSync(join(root, 'labels.csv')), { columns: true }) as Record<string, string>[])
    .filter((r) => r['split'] === 'train' && r['fer2013_label_ambiguous'] === '0')
    .slice(0, n);
  const db = openStore(dbPath);
  const now = nowIso();
  const datasetId = Number(
    db
      .prepare(
        `INSERT INTO datasets (name, format, source, root, taxonomy, options, created_at, updated_at)
         VALUES ('ferplus-fixture', 'ferplus', ?, ?, ?, '{}', ?, ?)`,
      )
      .run(join(root, 'labels.csv'), root, JSON.stringify(taxonomy), now, now).lastInsertRowid,
  );
  const newRun = () =>
    Number(
      db
        .prepare(
          `INSERT INTO runs (dataset_id, method, backbone, backend, seed, config, status, started_at, finished_at)
           VALUES (?, 'scn', 'test', 'cpu', 1, '{}', 'done', ?, ?)`,
        )
        .run(datasetId, now, now).lastInsertRowid,
    );
  const runId = newRun();
  const images: Seeded['images'] = [];
  const insImage = db.prepare(
    `INSERT INTO images (dataset_id, path, sha256, width, height, channels, split) VALUES (?, ?, ?, 48, 48, 1, 'train')`,
  );
  const insLabel = db.prepare(`INSERT INTO labels (image_id, given, given_raw, reference) VALUES (?, ?, ?, NULL)`);
  const insRun = db.prepare(
    `INSERT INTO run_images (run_id, image_id, given_label, trained_label, importance, importance_mean, probs,
       predicted_label, proposed_label, proposal_margin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  db.transaction(() => {
    rows.forEach((r, k) => {
      const path = r['image']!;
      const sha = createHash('sha256').update(readFileSync(join(root, path))).digest('hex');
      const imageId = Number(insImage.run(datasetId, path, sha).lastInsertRowid);
      const given = r['fer2013_label']!;
      insLabel.run(imageId, given, given);
      const votes = taxonomy.map((c) => Number(r[`votes_${c}`] ?? 0) + 0.5);
      const sum = votes.reduce((a, b) => a + b, 0);
      const probs = votes.map((v) => Math.round((v / sum) * 1e4) / 1e4);
      const gi = taxonomy.indexOf(given);
      let best = gi === 0 ? 1 : 0;
      probs.forEach((p, i) => {
        if (i !== gi && p > probs[best]!) best = i;
      });
      const predicted = taxonomy[probs.indexOf(Math.max(...probs))]!;
      const proposed = k < nProposals ? taxonomy[best]! : null;
      const margin = proposed ? Math.round((probs[best]! - probs[gi]!) * 1e4) / 1e4 : null;
      // Margins of the seeded rows are made distinct and decreasing so margin order = insertion order.
      const orderedMargin = proposed ? 1 - k / 100 : null;
      insRun.run(runId, imageId, given, given, probs[gi]!, probs[gi]!, JSON.stringify(probs), predicted, proposed, orderedMargin);
      images.push({ imageId, path, given, proposed, margin: orderedMargin ?? margin });
    });
  })();
  let emptyRunId: number | undefined;
  if (opts.emptyRun) {
    emptyRunId = newRun();
    const first = images[0]!;
    insRun.run(emptyRunId, first.imageId, first.given, first.given, 0.9, 0.9, JSON.stringify(taxonomy.map(() => 1 / taxonomy.length)), first.given, null, null);
  }
  return { db, runId, emptyRunId, datasetId, taxonomy, images };
}
