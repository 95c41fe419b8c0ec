import { randomUUID } from 'node:crypto';
import { isFerCleanError } from '../../errors.js';
import type { DB } from '../../store/db.js';
import type { ResolvedRun } from '../../store/runs.js';
import { claimedByOthers, claimImage, LEASE_MS, releaseClaims, renewClaims, type Claimant } from '../domain/claims.js';
import {
  ClaimLostError,
  decisionsInForce,
  effectiveFor,
  imagesDecidedSince,
  latestDecisionId,
  recordDecision,
  undoLast,
  inForceOf,
  type Effective,
  type Verdict,
} from '../domain/decisions.js';
import { flagFilter, REVIEW_ORDERS, reviewRun, type ItemDetail, type QueueItem } from '../domain/proposals.js';
import { QueueWindow, type Read } from './window.js';
import { describeFilter, endState, filteredView, placesAfter, rankedView, type EndState, type Filter } from '../domain/order.js';
import { InForce, statsOf, type Stats } from '../domain/progress.js';
import { Learner } from '../estimates/learner.js';
import { checkAnnotator, checkOrder } from '../domain/options.js';
import { snapshotOf, type Outcome, type SessionOptions, type Snapshot } from './snapshot.js';
import type { BulkPreview } from '../domain/bulk.js';

export type { EndState, Filter } from '../domain/order.js';
export type { Stats } from '../domain/progress.js';
export { describeFilter } from '../domain/order.js';

export type { Outcome, SessionOptions, Shown, Snapshot } from './snapshot.js';
export { FIRST_WINDOW, REST_SLICE } from './window.js';

/** The orders a session walks: the learning order or a fixed one. */
const SESSION_ORDERS = ['estimate', ...REVIEW_ORDERS] as const;

/**
 * One annotator's review of a run, as a cursor over the run's queue plus a lease on the item shown. Every action
 * (decide, skip, undo, move, filter, bulk) and every tick writes to SQLite first (decisions, claims) and returns an
 * immutable Snapshot of what to show; the order itself comes from order.ts and the estimates from learner.ts.
 * Nothing here prints.
 */
export class ReviewSession {
  readonly who: Claimant;
  readonly taxonomy: string[];
  /** The run's estimates (shown with every order) and, with order 'estimate', the learning order. */
  readonly learner: Learner;
  readonly learning: boolean;
  /** The bulk accept offered on the confirmation page (null when none is offered). */
  bulkOffer: BulkPreview | null = null;
  /** The run's queue in the session's base order, read in a first window, then in slices between keys. */
  private readonly queue: QueueWindow;
  private effective = new InForce();
  /** Images other sessions hold (as last read, plus those found taken since). */
  private others = new Map<number, string>();
  private readonly skipped = new Set<number>();
  private readonly now: () => number;
  private readonly leaseMs: number;
  private readonly startedAt: number;
  private readonly myDecisions = new Set<number>();
  /** The cursor: indices into items in view order, and the place shown in it (null: the end). */
  private view: number[];
  private viewPos: number | null = null;
  private filterValue: Filter | null = null;
  private closed = false;
  /** Id of the newest decision row already taken into account (null before the first refresh). */
  private seenDecisionId: number | null = null;
  private version = 0;

  private constructor(
    readonly db: DB,
    readonly run: ResolvedRun,
    opts: SessionOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.leaseMs = opts.leaseMs ?? LEASE_MS;
    this.who = { runId: run.id, sessionId: opts.sessionId ?? randomUUID(), annotator: opts.annotator };
    const order = opts.order ?? 'margin';
    this.learning = order === 'estimate';
    // The learning order starts from the margin order; relearn() re-ranks it once the estimates are loaded.
    this.queue = new QueueWindow(db, run, order === 'estimate' ? 'margin' : order, opts.firstWindow, opts.restSlice);
    // The estimates need the whole queue: read it through loadRest, so that the view follows.
    this.learner = new Learner(db, run, () => {
      this.loadRest();
      return this.queue.marginOrdered();
    });
    this.taxonomy = run.dataset.taxonomy;
    this.view = this.items.map((_, i) => i);
    this.startedAt = this.now();
    this.refresh();
  }

  /** Opens the run (by id, else the dataset's latest finished run) and reads the first window of its queue. */
  static open(db: DB, opts: SessionOptions): ReviewSession {
    checkAnnotator(opts.annotator);
    checkOrder(opts.order, SESSION_ORDERS);
    return new ReviewSession(db, reviewRun(db, opts.runId, opts.dataset), opts);
  }

  /** Goes to the first undecided item nobody else holds (where a previous session left off). */
  start(): this {
    this.viewPos = null;
    this.advance(-1);
    return this;
  }

  get filter(): Filter | null {
    return this.filterValue;
  }

  /** The item shown, or undefined at the end of the queue (or for an empty queue). */
  get current(): QueueItem | undefined {
    return this.viewPos === null ? undefined : this.items[this.view[this.viewPos]!];
  }

  /** Position of the current item in the (filtered) queue, 1-based, and the queue's length. */
  get position(): { index: number; of: number } {
    return { index: this.viewPos === null ? 0 : this.viewPos + 1, of: this.loaded || this.filterValue ? this.view.length : this.total };
  }

  /** The queue read so far: its first window, then more as the slices come in (all of it once loaded), in the session's base order. */
  get items(): QueueItem[] {
    return this.queue.items;
  }

  /** Proposals in the run (the queue's length, read or not). */
  get total(): number {
    return this.queue.total;
  }

  /** Whether the whole queue has been read (else only its first window and the slices read since: see loadRest). */
  get loaded(): boolean {
    return this.queue.loaded;
  }

  /**
   * Reads the rest of the queue at once (what background() otherwise reads in slices between keys; every step that
   * needs the whole queue does it first). The part read before is a prefix of the whole queue in the same order, so
   * the item shown and the positions before it stay where they are.
   */
  loadRest(): void {
    this.follow(() => this.queue.readRest());
  }

  /** File, face box, probabilities of an item (read once, kept for the last few hundred items). */
  detail(item: QueueItem): ItemDetail {
    return this.queue.detail(item);
  }

  decisionOf(item: QueueItem): Effective | undefined {
    return this.effective.get(item.imageId);
  }

  /** P(a reviewer accepts) the item's proposal, once the estimates are loaded (relearn). */
  estimateOf(item: QueueItem): number | undefined {
    return this.learner.estimate(item.imageId);
  }

  /** What to show now (see Snapshot); `outcome` is what the action that led here did. */
  snapshot(outcome: Outcome = { status: null }): Snapshot {
    return snapshotOf(this, outcome, ++this.version);
  }

  /** Accept the proposal, reject it (keep the given label) or set a label by hand; then go to the next item. */
  decide(verdict: Verdict, label?: string): Snapshot {
    const item = this.current;
    if (!item) return this.snapshot({ status: 'nothing to decide: end of the queue' });
    if (verdict === 'manual' && (label === undefined || !this.taxonomy.includes(label))) {
      return this.snapshot({ status: `no class ${label ?? ''} in this dataset` });
    }
    const estimate = this.learner.estimate(item.imageId) ?? null;
    const g = this.guard(() => recordDecision(this.db, this.who, item, verdict, label, { ...this.opts(), estimate }));
    if (g.lost !== undefined) return this.snapshot({ status: g.lost });
    const row = g.value;
    this.myDecisions.add(row.id);
    this.learner.pending++;
    this.effective.set(item.imageId, inForceOf(row, verdict));
    this.skipped.delete(item.imageId);
    this.advance(this.viewPos!);
    return this.snapshot({ row, status: `${item.path}: ${verdict === 'manual' ? 'set to' : verdict + ' →'} ${row.new_label}` });
  }

  /** Records a skip (not a decision) and goes on; skipped items come back once the rest is done. */
  skip(): Snapshot {
    const item = this.current;
    if (!item) return this.snapshot({ status: 'nothing to skip: end of the queue' });
    const g = this.guard(() => recordDecision(this.db, this.who, item, 'skipped', undefined, this.opts()));
    if (g.lost !== undefined) return this.snapshot({ status: g.lost });
    this.skipped.add(item.imageId);
    this.advance(this.viewPos!);
    return this.snapshot({ row: g.value, status: `${item.path}: skipped` });
  }

  /** Undoes this annotator's last decision or skip in the run and shows that item again. */
  undo(): Snapshot {
    const g = this.guard(() => undoLast(this.db, this.who, this.opts()));
    if (g.lost !== undefined) return this.snapshot({ status: g.lost });
    if (!g.value) return this.snapshot({ status: 'nothing to undo' });
    const { undone, undo, bulk } = g.value;
    if (bulk) {
      // A whole bulk accept was undone: its items (anywhere in the queue) are undecided again; show the last one.
      this.loadRest();
      this.refresh();
      this.learner.pending += bulk.undone;
    }
    this.myDecisions.delete(undone.id);
    this.skipped.delete(undone.image_id);
    this.refreshImage(undone.image_id);
    // The item undone may lie beyond the part of the queue read so far.
    if (this.queue.indexOf(undone.image_id) === undefined) this.loadRest();
    const idx = this.queue.indexOf(undone.image_id);
    if (idx !== undefined) {
      let at = this.view.indexOf(idx);
      if (at < 0) {
        this.applyFilter(null);
        at = this.view.indexOf(idx);
      }
      this.viewPos = at;
      claimImage(this.db, this.who, undone.image_id, this.now(), this.leaseMs);
    }
    const item = idx === undefined ? undefined : this.items[idx];
    if (bulk) return this.snapshot({ row: undo, status: `undid bulk accept ${bulk.id}: ${bulk.undone} proposal(s) undecided again` });
    const what = `${undone.action}${undone.action === 'skipped' ? '' : ` (${undone.new_label})`}`;
    return this.snapshot({ row: undo, status: `undid ${what} on ${item?.path ?? `image ${undone.image_id}`}` });
  }

  /** Moves to the next (+1) or previous (-1) item of the queue, decided or not, skipping items others hold. */
  move(dir: 1 | -1): Snapshot {
    if (this.viewPos === null) {
      if (dir === 1) {
        // At the end: go round again through the items skipped in this session.
        if (this.skipped.size === 0) return this.snapshot({ status: 'end of the queue' });
        this.skipped.clear();
        this.advance(-1);
        return this.snapshot();
      }
      this.loadRest();
      for (let p = this.view.length - 1; p >= 0; p--) if (this.enter(p, false)) return this.snapshot();
      return this.snapshot({ status: 'no item to go back to' });
    }
    for (;;) {
      for (let p = this.viewPos + dir; p >= 0 && p < this.view.length; p += dir) {
        if (this.enter(p, false)) return this.snapshot();
      }
      // The end of the part read is not the queue's: read the rest and go on from the item shown.
      if (dir === -1 || this.loaded) break;
      this.loadRest();
      if (this.viewPos === null) break;
    }
    return this.snapshot({ status: dir === 1 ? 'last item of the queue' : 'first item of the queue' });
  }

  /**
   * Shows only items whose image carries a quality flag (as the last `fer-clean quality` stored them), from the first
   * undecided one. An unknown flag or a dataset never checked is a FerCleanError and leaves the filter as it was.
   */
  setFlagFilter(flag: string): Snapshot {
    return this.setFilter(flagFilter(this.db, this.run.dataset, flag));
  }

  /** Shows only items whose given and/or proposed label is a class (null: all), from the first undecided one. */
  setFilter(filter: Filter | null): Snapshot {
    this.loadRest();
    this.applyFilter(filter);
    this.viewPos = null;
    this.advance(-1);
    return this.snapshot({ status: filter && this.view.length === 0 ? `no item with ${describeFilter(filter)}` : null });
  }

  /** Whether a refit is due: never done, or REFIT_EVERY decisions since the last one. */
  relearnDue(): boolean {
    return !this.closed && this.learner.due;
  }

  /**
   * The work to do off the key path, after a frame: reading the rest of the queue (at once: its slices are short),
   * then reading the estimates and refitting them when a refit is due, after a pause of `waitMs` in the keys (their
   * steps take longer: tens of milliseconds at 1M images). The one place that decides when to refit.
   */
  background(): { step: 'read-rest' | 'load-estimates' | 'refit'; waitMs: number } | null {
    if (this.closed) return null;
    if (!this.loaded) return { step: 'read-rest', waitMs: 0 };
    if (!this.learner.loaded) return { step: 'load-estimates', waitMs: this.learner.waitMs };
    if (!this.relearnDue()) return null;
    return { step: 'refit', waitMs: this.learner.waitMs };
  }

  /**
   * Does one step of what background() names, each a few milliseconds so that a key typed meanwhile is handled
   * between two: a slice of the rest of the queue (REST_SLICE items), a step of reading the estimates, or a refit.
   * Returns the snapshot to show, or null when nothing shown has changed (a slice before the last, a load step).
   */
  runBackground(): Snapshot | null {
    const plan = this.background();
    if (!plan) return null;
    if (plan.step === 'read-rest') {
      this.follow(() => this.queue.readSlice());
      return this.loaded ? this.snapshot() : null;
    }
    if (plan.step === 'load-estimates') {
      this.learner.loadStep();
      return null;
    }
    this.relearn();
    return this.snapshot();
  }

  /**
   * Refits the estimates on every decision in the store and, in the learning order, re-ranks what comes after the
   * item shown: undecided items by the new order, then the decided ones as they were. The item shown and everything
   * before it stay where they are.
   */
  relearn(): void {
    this.loadRest();
    this.learner.relearn();
    if (this.learning) this.rerankAfterShown();
  }

  /** How many undecided proposals a bulk accept at `minEstimate` would take, and how many are expected wrong. */
  previewBulk(minEstimate: number): BulkPreview {
    return this.learner.previewBulk(this.who.annotator, minEstimate);
  }

  /** Offers a bulk accept at `min` (the confirmation page), or says on the status line why it cannot be offered. */
  offerBulk(min: number): Snapshot {
    try {
      this.bulkOffer = this.previewBulk(min);
      return this.snapshot();
    } catch (e) {
      if (!isFerCleanError(e)) throw e;
      this.bulkOffer = null;
      return this.snapshot({ status: `bulk accept: ${e.message}` });
    }
  }

  /** Accepts every undecided proposal with estimate >= minEstimate (one undo reverts it; one refit), then goes on. */
  bulkAccept(minEstimate: number): Snapshot {
    this.bulkOffer = null;
    this.loadRest();
    const r = this.learner.bulk(this.who.annotator, minEstimate, this.who.sessionId);
    this.refresh();
    if (this.learning) this.rerankAfterShown();
    const cur = this.current;
    if (!cur || this.effective.has(cur.imageId)) this.advance(this.viewPos ?? -1);
    else claimImage(this.db, this.who, cur.imageId, this.now(), this.leaseMs);
    return this.snapshot({
      status: `bulk accept ${r.bulkId}: accepted ${r.items} proposal(s) with estimate >= ${minEstimate} (expected wrong ${r.expectedWrong.toFixed(1)}); u undoes it`,
    });
  }

  /** Renews this session's lease and re-reads what other sessions did (decisions, claims). */
  tick(): Snapshot {
    if (!this.closed) {
      renewClaims(this.db, this.who.sessionId, this.now(), this.leaseMs);
      this.refresh();
    }
    return this.snapshot();
  }

  /** Why nothing is shown (at the end of the queue). */
  endState(): EndState {
    this.loadRest();
    return endState(this.items, this.view, this.effective, this.skipped, this.others);
  }

  stats(): Stats {
    const filtered = this.filterValue
      ? { total: this.view.length, reviewed: this.view.filter((i) => this.effective.has(this.items[i]!.imageId)).length }
      : undefined;
    return statsOf({
      total: this.total,
      inForce: this.effective,
      sessionDecisions: this.myDecisions.size,
      elapsedMs: this.now() - this.startedAt,
      // Read now, not from `others` (which only lists items this session tried and found taken since its last
      // refresh, and keeps them after they are let go): a handful of rows, one per live session.
      heldByOthers: claimedByOthers(this.db, this.run.id, this.who.sessionId, this.now()).size,
      filtered,
    });
  }

  /** The item next() after a decision would most likely show (to prefetch its face); claims nothing. */
  peekNext(): QueueItem | undefined {
    for (const p of placesAfter(this.view.length, this.viewPos ?? -1)) {
      const it = this.items[this.view[p]!]!;
      if (p !== this.viewPos && this.isCandidate(it.imageId)) return it;
    }
    return undefined;
  }

  /** Lets go of this session's claims (on quit). The decisions are already stored. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    releaseClaims(this.db, this.who.sessionId);
  }

  /**
   * Takes in what a read of the queue added: the view grows by the new items (they come after the part read, in
   * order), or is made again where the part read was not a prefix, a filter is set or the learning order ranks it.
   * Once the whole queue is in, decisions on items outside the part read so far are read again.
   */
  private follow(read: () => Read | null): void {
    const shown = this.current?.imageId;
    const r = read();
    if (r === null) return;
    if (!r.prefix || this.filterValue || (this.learning && this.learner.ready)) {
      this.applyFilter(this.filterValue);
      const at = shown === undefined ? -1 : this.view.indexOf(this.queue.indexOf(shown)!);
      this.viewPos = at < 0 ? null : at;
    } else {
      for (let i = this.view.length; i < this.items.length; i++) this.view.push(i);
    }
    if (this.loaded) {
      this.seenDecisionId = null;
      this.refresh();
    }
  }

  private opts() {
    return { now: this.now(), leaseMs: this.leaseMs };
  }

  /** Runs a write; a lost claim becomes `lost` (the message to show) and the session moves on. */
  private guard<T>(fn: () => T): { value: T; lost?: undefined } | { lost: string } {
    try {
      return { value: fn() };
    } catch (e) {
      if (e instanceof ClaimLostError) {
        this.others.set(e.imageId, e.holder);
        const pos = this.viewPos;
        if (pos !== null && this.current?.imageId === e.imageId) this.advance(pos);
        return { lost: e.message };
      }
      throw e;
    }
  }

  private isCandidate(imageId: number): boolean {
    return !this.effective.has(imageId) && !this.skipped.has(imageId) && !this.others.has(imageId);
  }

  /** Goes to the first candidate after view position `from` (wrapping round), or to the end of the queue. */
  private advance(from: number): void {
    if (!this.loaded) {
      // Within the first window; past its end, the rest of the queue is read and the search goes on.
      for (let p = from + 1; p < this.view.length; p++) {
        if (this.isCandidate(this.items[this.view[p]!]!.imageId) && this.enter(p, true)) return;
      }
      this.loadRest();
    }
    for (const p of placesAfter(this.view.length, from)) {
      if (this.isCandidate(this.items[this.view[p]!]!.imageId) && this.enter(p, true)) return;
    }
    this.viewPos = null;
    releaseClaims(this.db, this.who.sessionId);
  }

  /** Claims the item at view position p and shows it; false when another session holds it (or it got decided). */
  private enter(p: number, mustBeUndecided: boolean): boolean {
    const item = this.items[this.view[p]!]!;
    if (this.others.has(item.imageId)) return false;
    const r = claimImage(this.db, this.who, item.imageId, this.now(), this.leaseMs);
    if (!r.ok) {
      // Re-read who holds what: items others let go of since the last refresh become candidates again.
      this.others = claimedByOthers(this.db, this.run.id, this.who.sessionId, this.now());
      this.others.set(item.imageId, r.holder);
      return false;
    }
    this.refreshImage(item.imageId);
    if (mustBeUndecided && this.effective.has(item.imageId)) return false;
    this.viewPos = p;
    return true;
  }

  private refreshImage(imageId: number): void {
    const e = effectiveFor(this.db, imageId);
    if (e) this.effective.set(imageId, e);
    else this.effective.delete(imageId);
  }

  /**
   * Re-reads what other sessions did. The first time, every decision in force; after that only the images with
   * decision rows newer than the last one seen (the table is append-only), so a tick stays cheap late in a review.
   */
  private refresh(): void {
    const latest = latestDecisionId(this.db);
    if (this.seenDecisionId === null) this.effective = new InForce(decisionsInForce(this.db, { runId: this.run.id }));
    else if (latest > this.seenDecisionId) {
      for (const id of imagesDecidedSince(this.db, this.seenDecisionId)) if (this.queue.indexOf(id) !== undefined) this.refreshImage(id);
    }
    this.seenDecisionId = latest;
    this.others = claimedByOthers(this.db, this.run.id, this.who.sessionId, this.now());
  }

  /** In the learning order: what comes after the item shown, by the last refit (the rest stays where it is). */
  private rerankAfterShown(): void {
    this.view = rankedView(this.view, this.viewPos === null ? 0 : this.viewPos + 1, this.items, this.effective, (id) => this.learner.rankOf(id));
  }

  private applyFilter(filter: Filter | null): void {
    this.filterValue = filter;
    this.view = filteredView(this.items, filter);
    // In the learning order a new view follows the last refit, not the margin order the items were loaded in.
    if (this.learning && this.learner.ready) this.view = rankedView(this.view, 0, this.items, this.effective, (id) => this.learner.rankOf(id), true);
  }
}
