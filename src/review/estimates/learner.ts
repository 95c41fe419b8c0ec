/**
 * The review session's live estimates (issue 8): the run's estimate model, refitted on the decisions in the store
 * and turned into a learning order (order.ts), when a refit is due, and the bulk accept behind the session's key.
 * The estimates are read and refitted off the key path (the App runs the steps the session schedules: loadStep, then
 * relearn); nothing here prints.
 */
import type { DB } from '../../store/db.js';
import { loadQueue, type QueueItem } from '../domain/proposals.js';
import { EstimatesLoad, refit, type RunEstimates } from './run-estimates.js';
import { decisionsInForce, type Effective } from '../domain/decisions.js';
import { learningOrder } from '../domain/order.js';
import type { ResolvedRun as RunInfo } from '../../store/runs.js';
import { bulkAccept, previewBulkAccept, type BulkPreview, type BulkResult } from '../domain/bulk.js';

/** Refit after this many decisions of the session (and at start). */
export const REFIT_EVERY = 10;
/** A due refit waits for this long without a key (a pause in the keys)... */
export const REFIT_PAUSE_MS = 150;
/** ...but no longer than this many decisions: then it runs after the next frame. */
export const REFIT_LATEST = 2 * REFIT_EVERY;

export class Learner {
  private est: RunEstimates | null = null;
  /** The estimates being read in steps (loadStep), until they are read. */
  private load: EstimatesLoad | null = null;
  private rank = new Map<number, number>();
  private explored = new Set<number>();
  /** Decisions this session made since the last refit. */
  pending = 0;
  /** The last refit: reviewer decisions it used and how long it took (ms, estimates loaded on the first one). */
  lastFit: { fittedOn: number; ms: number } | null = null;

  /**
   * @param queue the run's proposals in margin order, when the caller has read them already (a review session);
   *   else they are read from the store on the first refit.
   */
  constructor(
    private readonly db: DB,
    readonly run: RunInfo,
    private readonly queue?: () => QueueItem[],
  ) {}

  /** The run's estimates, read now if they are not yet (the steps loadStep has not done yet, at once). */
  private estimates(): RunEstimates {
    if (!this.est) {
      this.est = (this.load ?? this.startLoad()).finish();
      this.load = null;
    }
    return this.est;
  }

  private startLoad(): EstimatesLoad {
    return new EstimatesLoad(this.db, this.run, this.queue?.() ?? loadQueue(this.db, this.run, 'margin'));
  }

  /** Whether the estimates have been read (by loadStep's steps, or at once by a refit or a bulk accept). */
  get loaded(): boolean {
    return this.est !== null;
  }

  /** Does one step of reading the estimates (a few milliseconds: see EstimatesLoad); true once they are read. */
  loadStep(): boolean {
    if (!this.est) {
      this.est = (this.load ??= this.startLoad()).step();
      if (this.est) this.load = null;
    }
    return this.est !== null;
  }

  /** Whether the estimates have been fitted once (by relearn or a bulk accept): rankOf and estimate follow them. */
  get ready(): boolean {
    return this.lastFit !== null;
  }

  /** Whether a refit is due (never done, or REFIT_EVERY decisions since the last one). */
  get due(): boolean {
    return this.lastFit === null || this.pending >= REFIT_EVERY;
  }

  /**
   * How long a due refit (or a step of reading the estimates before the first one) waits for a pause in the keys
   * (ms): 0 when it must run after the next frame, REFIT_LATEST decisions after the last refit (or the start).
   */
  get waitMs(): number {
    return this.pending >= REFIT_LATEST ? 0 : REFIT_PAUSE_MS;
  }

  /** Loads the estimates (first call), refits once on the decisions in force and recomputes the learning order. */
  relearn(): void {
    const t0 = performance.now();
    const est = this.estimates();
    this.reorder(refit(this.db, est));
    this.lastFit = { fittedOn: est.model.fittedOn, ms: performance.now() - t0 };
  }

  private reorder(decided: Map<number, Effective>): void {
    const est = this.estimates();
    const { order, explored } = learningOrder(est.items, est.model, decided);
    const items = est.items;
    this.rank = new Map(order.map((i, k) => [items[i]!.imageId, k]));
    this.explored = new Set([...explored].map((i) => items[i]!.imageId));
    this.pending = 0;
  }

  /** P(a reviewer accepts) for the image's proposal; undefined before the first relearn. */
  estimate(imageId: number): number | undefined {
    const i = this.lastFit === null ? undefined : this.est?.index.get(imageId);
    return i === undefined ? undefined : this.est!.model.estimate(i);
  }

  /** Place in the learning order among the undecided items at the last refit (Infinity: decided or unknown). */
  rankOf(imageId: number): number {
    return this.rank.get(imageId) ?? Infinity;
  }

  /** Placed by exploration (a random draw) at the last refit. */
  isExplore(imageId: number): boolean {
    return this.explored.has(imageId);
  }

  /** How many undecided proposals a bulk accept at `minEstimate` would take and how many are expected wrong. */
  previewBulk(annotator: string, minEstimate: number): BulkPreview {
    return previewBulkAccept(this.db, { annotator, minEstimate, estimates: this.estimates() });
  }

  /**
   * The bulk accept itself (one undo reverts it), under this session's id. It refits once, on the decisions in
   * force when it runs; its own decisions are not reviewer judgements (the refit leaves them out), so afterwards only
   * the learning order is recomputed.
   */
  bulk(annotator: string, minEstimate: number, sessionId: string): BulkResult {
    const r = bulkAccept(this.db, { annotator, minEstimate, sessionId, estimates: this.estimates() });
    this.reorder(decisionsInForce(this.db, { runId: this.run.id }));
    this.lastFit = { fittedOn: this.estimates().model.fittedOn, ms: this.lastFit?.ms ?? 0 };
    return r;
  }
}
