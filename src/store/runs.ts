/**
 * Training runs in the store (runs, run_epochs, run_noise, run_images): the one place that reads and writes them,
 * and `resolveRun`, the one way a command finds the run it works on.
 */
import { FerCleanError } from '../errors.js';
import { nowIso, type DB } from './db.js';
import { getDatasetById, type DatasetRow } from './datasets.js';

/** How a run was made: trained here (scn, ce, cl), or imported out-of-fold probabilities (`train --probs FILE`). */
export type Method = 'scn' | 'ce' | 'cl' | 'probs';
/** The methods `train --method` trains. */
export const METHODS: readonly Exclude<Method, 'probs'>[] = ['scn', 'ce', 'cl'];

export interface RunRow {
  id: number;
  dataset_id: number;
  method: Method;
  backbone: string;
  backend: string;
  seed: number;
  noise_rate: number;
  noise_type: string | null;
  config: Record<string, unknown>;
  status: 'running' | 'done' | 'failed' | 'interrupted';
  started_at: string;
  finished_at: string | null;
  duration_s: number | null;
  metrics: Record<string, unknown> | null;
}

type RawRun = Omit<RunRow, 'config' | 'metrics'> & { config: string; metrics: string | null };

const decode = (r: RawRun): RunRow => ({
  ...r,
  config: JSON.parse(r.config) as Record<string, unknown>,
  metrics: r.metrics === null ? null : (JSON.parse(r.metrics) as Record<string, unknown>),
});

/** One epoch's figures as stored in run_epochs (the training loop's EpochStats has this shape). */
export interface EpochRecord {
  loss: number;
  trainAccuracy: number | null;
  valAccuracy: number | null;
  importanceGap: number | null;
  relabeled: number;
  durationS: number;
}

export function createRun(
  db: DB,
  r: { datasetId: number; method: Method; backbone: string; backend: string; seed: number; noiseRate: number; noiseType: string | null; config: object },
): number {
  const info = db
    .prepare(
      `INSERT INTO runs (dataset_id, method, backbone, backend, seed, noise_rate, noise_type, config, status, started_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)`,
    )
    .run(r.datasetId, r.method, r.backbone, r.backend, r.seed, r.noiseRate, r.noiseType, JSON.stringify(r.config), nowIso());
  return Number(info.lastInsertRowid);
}

export interface RunImageRow {
  image_id: number;
  given_label: string;
  trained_label: string;
  in_training: number;
  importance: number | null;
  importance_mean: number | null;
  probs: number[];
  predicted_label: string;
  proposed_label: string | null;
  proposal_margin: number | null;
}

/** Probabilities are stored with 5 decimals (enough to rank; keeps a 35k-image run to a few MB). */
const round5 = (v: number): number => Math.round(v * 1e5) / 1e5;

/** Writes everything a finished run produced, in one transaction, and marks it done. */
export function saveRunResults(
  db: DB,
  runId: number,
  r: {
    epochs: EpochRecord[];
    noise: { imageId: number; original: string; noisy: string }[];
    images: RunImageRow[];
    durationS: number;
  },
): void {
  const epoch = db.prepare(
    `INSERT INTO run_epochs (run_id, epoch, loss, train_accuracy, val_accuracy, importance_gap, relabeled, duration_s)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const noise = db.prepare(`INSERT INTO run_noise (run_id, image_id, original, noisy) VALUES (?, ?, ?, ?)`);
  const image = db.prepare(
    `INSERT INTO run_images (run_id, image_id, given_label, trained_label, in_training, importance, importance_mean, probs,
       predicted_label, proposed_label, proposal_margin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  db.transaction(() => {
    r.epochs.forEach((e, k) =>
      epoch.run(runId, k + 1, e.loss, e.trainAccuracy, e.valAccuracy, e.importanceGap, e.relabeled, e.durationS),
    );
    for (const n of r.noise) noise.run(runId, n.imageId, n.original, n.noisy);
    for (const m of r.images) {
      image.run(
        runId,
        m.image_id,
        m.given_label,
        m.trained_label,
        m.in_training,
        m.importance === null ? null : round5(m.importance),
        m.importance_mean === null ? null : round5(m.importance_mean),
        JSON.stringify(m.probs.map(round5)),
        m.predicted_label,
        m.proposed_label,
        m.proposal_margin === null ? null : round5(m.proposal_margin),
      );
    }
    db.prepare(`UPDATE runs SET status = 'done', finished_at = ?, duration_s = ? WHERE id = ?`).run(nowIso(), r.durationS, runId);
  })();
}

export function setRunMetrics(db: DB, runId: number, metrics: object): void {
  db.prepare(`UPDATE runs SET metrics = ? WHERE id = ?`).run(JSON.stringify(metrics), runId);
}

/** Marks a run that stopped without results: 'failed' (an error) or 'interrupted' (Ctrl-C, SIGTERM). */
export function failRun(db: DB, runId: number, message: string, durationS: number, status: 'failed' | 'interrupted' = 'failed'): void {
  db.prepare(`UPDATE runs SET status = ?, finished_at = ?, duration_s = ?, metrics = ? WHERE id = ?`).run(
    status,
    nowIso(),
    durationS,
    JSON.stringify({ error: message }),
    runId,
  );
}

/** A run with its dataset. */
export type ResolvedRun = RunRow & { dataset: DatasetRow };

/** What a caller requires of the run it works on. */
export interface RunQuery {
  /** The run asked for; without it, the latest run that meets the other requirements. */
  runId?: number;
  /** The run must belong to this dataset (without runId: the latest run of this dataset, else of any dataset). */
  dataset?: DatasetRow;
  /** Only a finished run (status 'done'); default true. */
  done?: boolean;
  /** Only a run of this method. */
  method?: Method;
  /** What the run is for, ending the messages: e.g. 'to review' ("only a finished run can be used to review"). */
  purpose?: string;
  /** Without runId, no matching run gives null instead of an error. */
  optional?: boolean;
}

/**
 * The run a command works on: the one asked for (refused with a reason when it does not meet the requirements),
 * else the latest (highest id) run that meets them.
 */
export function resolveRun(db: DB, q: RunQuery & { optional: true }): ResolvedRun | null;
export function resolveRun(db: DB, q?: RunQuery): ResolvedRun;
export function resolveRun(db: DB, q: RunQuery = {}): ResolvedRun | null {
  const done = q.done ?? true;
  const purpose = q.purpose ? ` ${q.purpose}` : '';
  if (q.runId !== undefined) {
    const r = db.prepare(`SELECT * FROM runs WHERE id = ?`).get(q.runId) as RawRun | undefined;
    if (!r) {
      const ids = (db.prepare(`SELECT id FROM runs ORDER BY id`).all() as { id: number }[]).map((x) => x.id);
      throw new FerCleanError(
        `no run with id ${q.runId} (runs in this database: ${ids.length ? ids.join(', ') : 'none; run `fer-clean train` first'})`,
      );
    }
    const dataset = getDatasetById(db, r.dataset_id);
    if (q.dataset && r.dataset_id !== q.dataset.id) {
      throw new FerCleanError(`run ${r.id} is on dataset '${dataset.name}', not '${q.dataset.name}'`);
    }
    if (q.method && r.method !== q.method) {
      throw new FerCleanError(`run ${r.id} is a ${r.method} run: only a ${q.method} run can be used${purpose}`);
    }
    if (done && r.status !== 'done') {
      throw new FerCleanError(`run ${r.id} has status '${r.status}': only a finished run (status 'done') can be used${purpose}`);
    }
    return { ...decode(r), dataset };
  }
  const where = [done ? `status = 'done'` : '1'];
  const args: unknown[] = [];
  if (q.dataset) {
    where.push('dataset_id = ?');
    args.push(q.dataset.id);
  }
  if (q.method) {
    where.push('method = ?');
    args.push(q.method);
  }
  const r = db.prepare(`SELECT * FROM runs WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT 1`).get(...args) as RawRun | undefined;
  if (!r) {
    if (q.optional) return null;
    const of = q.dataset ? `dataset '${q.dataset.name}' has` : 'the database holds';
    throw new FerCleanError(
      `${of} no ${done ? 'finished ' : ''}${q.method ? `${q.method} ` : ''}run${purpose}: run \`fer-clean train\` first`,
    );
  }
  return { ...decode(r), dataset: q.dataset ?? getDatasetById(db, r.dataset_id) };
}

export interface RunEpochRow {
  epoch: number;
  loss: number;
  train_accuracy: number | null;
  val_accuracy: number | null;
  importance_gap: number | null;
  relabeled: number;
  duration_s: number;
}

export function runEpochs(db: DB, runId: number): RunEpochRow[] {
  return db
    .prepare(`SELECT epoch, loss, train_accuracy, val_accuracy, importance_gap, relabeled, duration_s FROM run_epochs WHERE run_id = ? ORDER BY epoch`)
    .all(runId) as RunEpochRow[];
}

/** One image of a run with what scoring needs: its split, dataset labels and (synthetic runs) its original label. */
export interface ScoredImageRow extends RunImageRow {
  split: string;
  dataset_given: string;
  reference: string | null;
  /** The label before synthetic noise, when this run flipped it. */
  noise_original: string | null;
}

export function runImagesForScoring(db: DB, runId: number): ScoredImageRow[] {
  const rows = db
    .prepare(
      `SELECT ri.*, i.split, l.given AS dataset_given, l.reference, n.original AS noise_original
       FROM run_images ri
       JOIN images i ON i.id = ri.image_id
       LEFT JOIN labels l ON l.image_id = ri.image_id
       LEFT JOIN run_noise n ON n.run_id = ri.run_id AND n.image_id = ri.image_id
       WHERE ri.run_id = ? ORDER BY ri.image_id`,
    )
    .all(runId) as (Omit<ScoredImageRow, 'probs'> & { probs: string; run_id: number })[];
  return rows.map(({ run_id: _r, ...r }) => ({ ...r, probs: JSON.parse(r.probs) as number[] }));
}
