import { nowIso, openStore, type DB } from '../src/store/db.js';
import { defaultTaxonomy } from '../src/taxonomy.js';
import { Rng } from '../src/scn/prng.js';

export interface Synthetic {
  db: DB;
  runId: number;
  taxonomy: string[];
  /** Train-split proposals: path, labels and the truth a simulated reviewer knows. */
  proposals: { imageId: number; path: string; given: string; proposed: string; truth: string }[];
}

/**
 * A database with one finished run over synthetic images (paths only: the scripted verbs never open the files):
 * `n` train images with a proposal and `valid` validation images with reference labels. Two kinds of proposal:
 * given anger -> proposed neutral, right 90% of the time; given fear -> proposed surprise, right 20% of the time;
 * both kinds get the same probabilities, so only decisions can tell them apart.
 */
export function seedSynthetic(dbPath: string, n = 400, valid = 300, seed = 1): Synthetic {
  const taxonomy = defaultTaxonomy(false);
  const rng = new Rng(seed);
  const db = openStore(dbPath);
  const now = nowIso();
  const datasetId = Number(
    db
      .prepare(`INSERT INTO datasets (name, format, source, root, taxonomy, options, created_at, updated_at) VALUES ('syn', 'csv', '/syn.csv', '/syn', ?, '{}', ?, ?)`)
      .run(JSON.stringify(taxonomy), now, now).lastInsertRowid,
  );
  const runId = Number(
    db
      .prepare(`INSERT INTO runs (dataset_id, method, backbone, backend, seed, config, status, started_at, finished_at) VALUES (?, 'scn', 'test', 'cpu', 1, '{}', 'done', ?, ?)`)
      .run(datasetId, now, now).lastInsertRowid,
  );
  const insImage = db.prepare(`INSERT INTO images (dataset_id, path, sha256, width, height, channels, split) VALUES (?, ?, ?, 48, 48, 1, ?)`);
  const insLabel = db.prepare(`INSERT INTO labels (image_id, given, given_raw, reference) VALUES (?, ?, ?, ?)`);
  const insRun = db.prepare(
    `INSERT INTO run_images (run_id, image_id, given_label, trained_label, in_training, importance, importance_mean, probs,
       predicted_label, proposed_label, proposal_margin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const proposals: Synthetic['proposals'] = [];
  const idx = (c: string) => taxonomy.indexOf(c);
  const probsFor = (g: string, q: string, top: number): number[] => {
    const p = taxonomy.map(() => (1 - top - 0.1) / (taxonomy.length - 2));
    p[idx(q)] = top;
    p[idx(g)] = 0.1;
    return p.map((v) => Math.round(v * 1e5) / 1e5);
  };
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const kind = i % 2;
      const [g, q] = kind === 0 ? ['anger', 'neutral'] : ['fear', 'surprise'];
      const right = rng.next() < (kind === 0 ? 0.9 : 0.2);
      const truth = right ? q! : rng.next() < 0.5 ? g! : 'sadness';
      const top = 0.5 + 0.4 * rng.next();
      const path = `images/train/s${String(i).padStart(5, '0')}.png`;
      const imageId = Number(insImage.run(datasetId, path, `sha${i}`, 'train').lastInsertRowid);
      insLabel.run(imageId, g, g, truth);
      const probs = probsFor(g!, q!, top);
      insRun.run(runId, imageId, g, g, 1, rng.next(), 0.5, JSON.stringify(probs), q, q, Math.round((top - 0.1) * 1e5) / 1e5);
      proposals.push({ imageId, path, given: g!, proposed: q!, truth });
    }
    for (let i = 0; i < valid; i++) {
      const top = 0.4 + 0.5 * rng.next();
      const path = `images/valid/v${String(i).padStart(5, '0')}.png`;
      const imageId = Number(insImage.run(datasetId, path, `vsha${i}`, 'valid').lastInsertRowid);
      // Validation images whose label disagrees with the top class, right in proportion to the top probability.
      const reference = rng.next() < top ? 'happiness' : 'sadness';
      insLabel.run(imageId, 'sadness', 'sadness', reference);
      insRun.run(runId, imageId, 'sadness', 'sadness', 0, 0.5, 0.5, JSON.stringify(probsFor('sadness', 'happiness', top)), 'happiness', null, null);
    }
  })();
  return { db, runId, taxonomy, proposals };
}

/** What a reviewer who knows the truth does with a proposal. */
export function simulatedAction(p: { given: string; proposed: string; truth: string }): { action: string; label: string } {
  if (p.truth === p.proposed) return { action: 'accepted', label: '' };
  if (p.truth === p.given) return { action: 'rejected', label: '' };
  return { action: 'manual', label: p.truth };
}
