/**
 * The estimate model of one run, read from the store: its proposals' features, the prior calibrated on its
 * validation split, and a refit on the review decisions so far (see src/estimate/model.ts).
 */
import type { DB } from '../../store/db.js';
import { calibrationByDecile, EstimateModel, fitPrior, type HeldOutRow, type Outcome, type Prior, type ProposalFeatures } from '../../estimate/model.js';
import type { ResolvedRun as RunInfo } from '../../store/runs.js';
import { loadQueue, type QueueItem } from '../domain/proposals.js';
import { decisionsInForce, type Effective } from '../domain/decisions.js';

/**
 * Validation images the prior is calibrated on, at most (every k-th one of a larger split): a 3-parameter logistic fit
 * needs no more, and at 1M images the whole split (72k rows of JSON) took 0.35 s to read.
 */
export const MAX_PRIOR_ROWS = 20_000;

/** Decisions a bulk accept needs first (reviewer decisions on the run's proposals, bulk ones not counted). */
export const MIN_DECISIONS_FOR_BULK = 200;

export interface RunEstimates {
  run: RunInfo;
  /** The run's proposals, in margin order (the queue's default order before issue 8). */
  items: QueueItem[];
  /** Index in `items` by image id. */
  index: Map<number, number>;
  model: EstimateModel;
}

export interface LoadEstimatesOptions {
  /** The run's proposals in margin order when already read (loadQueue(db, run, 'margin')); else read here. */
  items?: QueueItem[];
  /** Validation rows the prior is calibrated on, at most (default MAX_PRIOR_ROWS). */
  maxPriorRows?: number;
}

/** Builds the run's estimate model (prior only; call refit to take decisions into account). */
export function loadEstimates(db: DB, run: RunInfo, opts: LoadEstimatesOptions = {}): RunEstimates {
  return new EstimatesLoad(db, run, opts.items ?? loadQueue(db, run, 'margin'), opts.maxPriorRows).finish();
}

/** Image ids one step of EstimatesLoad looks through for validation rows (3-80 ms a span at 1M images, under load). */
export const HELD_OUT_SPAN = 50_000;

/**
 * loadEstimates in steps of bounded cost, for a review session to run between keys: the size of the validation
 * split, its rows by spans of HELD_OUT_SPAN image ids, the prior's fit, the proposals' features, the model. step()
 * does one; finish() the rest.
 * The rows, their order and so the model are the same as a load in one go (loadEstimates is finish()).
 */
export class EstimatesLoad {
  private stride = 0;
  private maxId = 0;
  /** Image ids up to this one have been looked through. */
  private doneId = 0;
  private readonly heldOut: HeldOutRow[] = [];
  private prior: Prior | null = null;
  private features: ProposalFeatures[] | null = null;
  private index = new Map<number, number>();
  private result: RunEstimates | null = null;

  constructor(
    private readonly db: DB,
    private readonly run: RunInfo,
    private readonly items: QueueItem[],
    private readonly maxPriorRows = MAX_PRIOR_ROWS,
  ) {}

  /** Does the next step; returns the estimates once the last step is done. */
  step(): RunEstimates | null {
    if (this.result) return this.result;
    const tax = this.run.dataset.taxonomy;
    const cls = (c: string | null): number => (c === null ? -1 : tax.indexOf(c));
    if (this.stride === 0) {
      // The prior's calibration rows: the validation split, every k-th image of it beyond maxPriorRows.
      const valid = (this.db.prepare(`SELECT count(*) AS n FROM images WHERE dataset_id = ? AND split = 'valid'`).get(this.run.dataset.id) as { n: number }).n;
      this.stride = Math.max(1, Math.ceil(valid / this.maxPriorRows));
      this.maxId = (this.db.prepare(`SELECT coalesce(max(id), 0) AS m FROM images`).get() as { m: number }).m;
      return null;
    }
    if (this.doneId < this.maxId) {
      const to = Math.min(this.maxId, this.doneId + HELD_OUT_SPAN);
      const rows = this.db
        .prepare(
          `SELECT ri.probs, ri.given_label, l.reference FROM images i
           JOIN run_images ri ON ri.run_id = ? AND ri.image_id = i.id LEFT JOIN labels l ON l.image_id = i.id
           WHERE i.dataset_id = ? AND i.split = 'valid' AND i.id % ? = 0 AND i.id > ? AND i.id <= ? ORDER BY i.id`,
        )
        .all(this.run.id, this.run.dataset.id, this.stride, this.doneId, to) as { probs: string; given_label: string; reference: string | null }[];
      for (const r of rows) {
        const row = { given: cls(r.given_label), reference: cls(r.reference), probs: JSON.parse(r.probs) as number[] };
        if (row.given >= 0 && row.probs.length === tax.length && row.probs.every(Number.isFinite)) this.heldOut.push(row);
      }
      this.doneId = to;
      return null;
    }
    if (!this.prior) {
      this.prior = fitPrior(this.heldOut);
      return null;
    }
    const items = this.items;
    if (!this.features) {
      this.features = items.map((it) => ({
        given: Math.max(0, cls(it.given)),
        proposed: Math.max(0, cls(it.proposed)),
        margin: it.margin ?? 0,
        importance: it.importance,
        pProposed: it.pProposed,
        pGiven: it.pGiven,
      }));
      this.index = new Map(items.map((it, i) => [it.imageId, i]));
      return null;
    }
    const model = new EstimateModel(this.features, this.prior, tax.length);
    return (this.result = { run: this.run, items, index: this.index, model });
  }

  /** Does every step left; returns the estimates. */
  finish(): RunEstimates {
    let e: RunEstimates | null;
    while (!(e = this.step()));
    return e;
  }
}

/**
 * What the refit learns from: every reviewer decision in force on a proposal of the run, accepted = the label in
 * force is the proposed one. Bulk accepts are left out: they are the estimate's own output, not a reviewer's
 * judgement.
 */
export function outcomesOf(e: RunEstimates, decided: ReadonlyMap<number, Effective>): Outcome[] {
  const out: Outcome[] = [];
  for (const [imageId, d] of decided) {
    if (d.bulkId !== null) continue;
    const i = e.index.get(imageId);
    if (i === undefined) continue;
    out.push({ index: i, accepted: d.label === e.items[i]!.proposed });
  }
  return out.sort((a, b) => a.index - b.index);
}

/**
 * Refits the model on the decisions in force now (read here unless given: decisionsInForce for the run); returns
 * them.
 */
export function refit(db: DB, e: RunEstimates, decided: Map<number, Effective> = decisionsInForce(db, { runId: e.run.id })): Map<number, Effective> {
  e.model.fit(outcomesOf(e, decided));
  return decided;
}

/** The run's estimates now: the model loaded and refitted once on the decisions in force, and those decisions. */
export interface EstimatesNow extends RunEstimates {
  decided: Map<number, Effective>;
}

/**
 * The one reader of "the run's estimates now": loads the run's estimate model (loadEstimates) and refits it on the
 * decisions in force (read once).
 */
export function estimatesNow(db: DB, run: RunInfo, opts: LoadEstimatesOptions = {}): EstimatesNow {
  const e = loadEstimates(db, run, opts);
  return { ...e, decided: refit(db, e) };
}

export interface EstimateSummary {
  prior: string;
  priorRows: number;
  /** Reviewer decisions the refit used. */
  fittedOn: number;
  proposals: number;
  undecided: number;
  /** Sum of the estimates over the undecided proposals: how many of them a reviewer is expected to accept. */
  expectedAccepted: number;
  /** Undecided proposals by tenths of the estimate (0-0.1, ..., 0.9-1). */
  histogram: number[];
  /**
   * Out-of-sample check: for decisions that stored the estimate shown when they were made (bulk ones left out),
   * the mean estimate and the rate accepted, by tenths.
   */
  calibration: { lo: number; hi: number; n: number; predicted: number | null; observed: number | null }[];
}

/** The run's estimates for `fer-clean report`: where they come from, what is left, how well they held so far. */
export function summarizeEstimates(db: DB, run: RunInfo): EstimateSummary {
  const e = estimatesNow(db, run);
  const decided = e.decided;
  const histogram = new Array<number>(10).fill(0);
  let expectedAccepted = 0;
  e.items.forEach((it, i) => {
    if (decided.has(it.imageId)) return;
    const p = e.model.estimate(i);
    expectedAccepted += p;
    histogram[Math.min(9, Math.floor(p * 10))]!++;
  });
  // Out-of-sample check: decisions of this run, item by item, that stored the estimate shown.
  const shown: { estimate: number; accepted: boolean }[] = [];
  for (const [imageId, d] of decided) {
    const i = e.index.get(imageId);
    if (i === undefined || d.runId !== run.id || d.bulkId !== null || d.estimate === null) continue;
    shown.push({ estimate: d.estimate, accepted: d.label === e.items[i]!.proposed });
  }
  return {
    prior: e.model.prior.source,
    priorRows: e.model.prior.rows,
    fittedOn: e.model.fittedOn,
    proposals: e.items.length,
    undecided: e.items.length - decided.size,
    expectedAccepted,
    histogram,
    calibration: calibrationByDecile(shown.map((r) => r.estimate), shown.map((r) => r.accepted)),
  };
}

/** Lines for the terminal report. */
export function formatEstimateSummary(s: EstimateSummary): string[] {
  const lines = [
    `estimated correctness (P a reviewer accepts): prior ${s.prior}${s.priorRows ? ` (${s.priorRows} validation images)` : ''}, ` +
      `refitted on ${s.fittedOn} reviewer decision(s); ${s.undecided} of ${s.proposals} proposals undecided, ` +
      `${Math.round(s.expectedAccepted)} of them expected to be accepted`,
    `  undecided by estimate: ${s.histogram.map((n, k) => `${(k / 10).toFixed(1)}+ ${n}`).join(', ')}`,
  ];
  const used = s.calibration.filter((b) => b.n > 0);
  if (used.length) {
    lines.push(
      `  estimate shown vs accepted, decisions so far: ${used.map((b) => `${b.predicted!.toFixed(2)}/${b.observed!.toFixed(2)} (${b.n})`).join(', ')}`,
    );
  }
  return lines;
}
