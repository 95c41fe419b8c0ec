/**
 * Training runs in the store (runs, run_epochs, run_noise, run_images): the one place that reads and writes them,
 * and `resolveRun`, the one way a command finds the run it works on.
 */
import { FerCleanError } from '../errors.js';
import { nowIso, type DB } from './db.js';
import { getDatasetById, listDatasets, resolveDataset, type DatasetRow } from './datasets.js';

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

/** `--run ID` names a run of one dataset and `--dataset NAME` another: the command refuses rather than guess. */
export class RunDatasetMismatchError extends FerCleanError {
  constructor(
    readonly runId: number,
    /** The dataset the run belongs to. */
    readonly runDataset: string,
    /** The dataset that was asked for. */
    readonly asked: string,
    /** How the run was named on the command line. */
    readonly runFlag = `--run ${runId}`,
  ) {
    super(`${runFlag} is a run of dataset '${runDataset}' but --dataset names '${asked}': give one of them, or both naming the same dataset`);
  }
}

/** What a caller requires of the run it works on. */
export interface RunQuery {
  /** The run asked for (`--run ID`); it names its dataset. Without it, the latest run that meets the other requirements. */
  runId?: number;
  /**
   * The dataset asked for (`--dataset NAME`, or a dataset already looked up). With runId it must be the run's own
   * dataset (else RunDatasetMismatchError); without runId, the run is this dataset's latest; when neither is given,
   * the dataset is the only one in the database (several: an error asking for --dataset or --run).
   */
  dataset?: DatasetRow | string;
  /** Only a finished run (status 'done'); default true. */
  done?: boolean;
  /** Only a run of this method. */
  method?: Method;
  /** What the run is for, ending the messages: e.g. 'to review' ("only a finished run can be used to review"). */
  purpose?: string;
  /** Without runId, no matching run gives null instead of an error. */
  optional?: boolean;
  /** How runId was given on the command line, for messages (default `--run ID`). */
  runFlag?: string;
}

/**
 * The run a command works on, by the one rule every command follows (resolve it once, at the door, and pass the
 * result on): `--run ID` wins and names its dataset; `--dataset NAME` alone picks that dataset's latest finished
 * run; both, naming different datasets, is a RunDatasetMismatchError; neither picks the only dataset's latest
 * finished run. A run asked for that does not meet the requirements is refused with the reason.
 */
export function resolveRun(db: DB, q: RunQuery & { optional: true }): ResolvedRun | null;
export function resolveRun(db: DB, q?: RunQuery): ResolvedRun;
export function resolveRun(db: DB, q: RunQuery = {}): ResolvedRun | null {
  const done = q.done ?? true;
  const purpose = q.purpose ? ` ${q.purpose}` : '';
  const asked = typeof q.dataset === 'string' ? resolveDataset(db, q.dataset) : q.dataset;
  if (q.runId !== undefined) {
    const r = db.prepare(`SELECT * FROM runs WHERE id = ?`).get(q.runId) as RawRun | undefined;
    if (!r) {
      const ids = (db.prepare(`SELECT id FROM runs ORDER BY id`).all() as { id: number }[]).map((x) => x.id);
      throw new FerCleanError(
        `no run with id ${q.runId} (runs in this database: ${ids.length ? ids.join(', ') : 'none; run `fer-clean train` first'})`,
      );
    }
    const dataset = getDatasetById(db, r.dataset_id);
    if (asked && r.dataset_id !== asked.id) throw new RunDatasetMismatchError(r.id, dataset.name, asked.name, q.runFlag);
    if (q.method && r.method !== q.method) {
      throw new FerCleanError(`run ${r.id} is a ${r.method} run: only a ${q.method} run can be used${purpose}`);
    }
    if (done && r.status !== 'done') {
      throw new FerCleanError(`run ${r.id} has status '${r.status}': only a finished run (status 'done') can be used${purpose}`);
    }
    return { ...decode(r), dataset };
  }
  const dataset = asked ?? onlyDataset(db);
  const where = [done ? `status = 'done'` : '1', 'dataset_id = ?'];
  const args: unknown[] = [dataset.id];
  if (q.method) {
    where.push('method = ?');
    args.push(q.method);
  }
  const r = db.prepare(`SELECT * FROM runs WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT 1`).get(...args) as RawRun | undefined;
  if (!r) {
    if (q.optional) return null;
    throw new FerCleanError(
      `dataset '${dataset.name}' has no ${done ? 'finished ' : ''}${q.method ? `${q.method} ` : ''}run${purpose}: run \`fer-clean train\` first`,
    );
  }
  return { ...decode(r), dataset };
}

/** The dataset when none was named: the only one (several: ask for --dataset or --run). */
function onlyDataset(db: DB): DatasetRow {
  const all = listDatasets(db);
  if (all.length > 1) {
    throw new FerCleanError(
      `the database holds ${all.length} datasets (${all.map((x) => x.name).join(', ')}): pick one with --dataset NAME or --run ID`,
    );
  }
  return resolveDataset(db);
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
