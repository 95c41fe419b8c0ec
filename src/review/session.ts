import { randomUUID } from 'node:crypto';
import { FerCleanError } from '../errors.js';
import { annotatorName } from '../printable.js';
import type { DB } from '../store/db.js';
import { claimedByOthers, claimImage, LEASE_MS, releaseClaims, renewClaims, type Claimant } from './claims.js';
import {
  ClaimLostError,
  effectiveFor,
  effectiveForRun,
  imagesDecidedSince,
  latestDecisionId,
  recordDecision,
  undoLast,
  type DecisionRow,
  type Effective,
  type Verdict,
} from './decisions.js';
import { compareItems, countQueue, loadDetail, loadQueue, loadQueueHead, reviewRun, type ItemDetail, type QueueItem, type ReviewOrder } from './queue.js';
import type { ResolvedRun } from '../store/runs.js';
import { Learner } from './learner.js';
import type { BulkPreview } from './scripted.js';

/** Which items the annotator wants to see: those whose given and/or proposed label is `cls`. */
export interface Filter {
  by: 'either' | 'given' | 'proposed';
  cls: string;
}

export interface SessionOptions {
  runId?: number;
  dataset?: string;
  annotator: string;
  /** 'estimate': the learning order (issue 8), re-ranked as decisions arrive; else a fixed order. Default margin. */
  order?: ReviewOrder | 'estimate';
  /** Unique per running session (a random UUID unless given). */
  sessionId?: string;
  /** Clock in unix ms (tests move it to expire leases). */
  now?: () => number;
  leaseMs?: number;
  /** Items read when the session opens (default FIRST_WINDOW); the rest is read by loadRest(). */
  firstWindow?: number;
}

export interface Stats {
  /** Items in the queue (the run's proposals). */
  total: number;
  /** Items with a decision in force (any annotator). */
  reviewed: number;
  accepted: number;
  rejected: number;
  manual: number;
  /** Decisions made in this session (undone ones not counted). */
  sessionDecisions: number;
  /** Decisions per minute in this session. */
  ratePerMin: number;
  /** Seconds to review what is left at that rate; Infinity before the first decision. */
  etaSeconds: number;
  /** Items other sessions hold now. */
  heldByOthers: number;
  /** With a filter: items matching it and how many of those are reviewed. */
  filtered?: { total: number; reviewed: number };
}

/** Why there is nothing to show. */
export interface EndState {
  /** Undecided items skipped in this session (shown again with next()). */
  skipped: number;
  /** Undecided items other sessions hold. */
  held: number;
  /** Undecided items in the whole queue (ignoring the filter). */
  undecided: number;
}

/**
 * One annotator's review of a run: the queue, where they are in it, their lease on the item shown and the decisions
 * in force. All state changes go to SQLite first (decisions, claims); nothing here prints.
 */
/** What an action did: its row (if it wrote one) and a line for the status bar (e.g. why it did nothing). */
export interface Outcome {
  row?: DecisionRow;
  status: string | null;
}

/** Items read when a session opens (the first window of its order); the rest is read by loadRest(). */
export const FIRST_WINDOW = 500;

/** The decisions in force on a run's proposals, by image, with counts by action kept as they change. */
class InForce {
  private readonly map: Map<number, Effective>;
  readonly counts = { accepted: 0, rejected: 0, manual: 0 };
  constructor(entries: Map<number, Effective> = new Map()) {
    this.map = entries;
    for (const e of entries.values()) this.counts[e.action]++;
  }
  get(imageId: number): Effective | undefined {
    return this.map.get(imageId);
  }
  has(imageId: number): boolean {
    return this.map.has(imageId);
  }
  set(imageId: number, e: Effective): void {
    this.delete(imageId);
    this.map.set(imageId, e);
    this.counts[e.action]++;
  }
  delete(imageId: number): void {
    const old = this.map.get(imageId);
    if (!old) return;
    this.map.delete(imageId);
    this.counts[old.action]--;
  }
}

export class ReviewSession {
  readonly who: Claimant;
  /** The queue read so far: its first window until loadRest() (then all of it), in the session's base order. */
  items: QueueItem[];
  /** Proposals in the run (the queue's length, read or not). */
  readonly total: number;
  readonly taxonomy: string[];
  private readonly baseOrder: ReviewOrder;
  private readonly byImage = new Map<number, number>();
  private effective = new InForce();
  private others = new Map<number, string>();
  private readonly skipped = new Set<number>();
  private readonly details = new Map<number, ItemDetail>();
  private readonly now: () => number;
  private readonly leaseMs: number;
  private readonly startedAt: number;
  private readonly myDecisions = new Set<number>();
  private view: number[];
  private viewPos: number | null = null;
  private filterValue: Filter | null = null;
  private closed = false;
  /** Id of the newest decision row already taken into account (null before the first refresh). */
  private seenDecisionId: number | null = null;
  /** The run's estimates (shown with every order) and, with order 'estimate', the learning order. */
  readonly learner: Learner;
  readonly learning: boolean;
  /** The bulk accept offered on the confirmation page (null when none is offered). */
  bulkOffer: BulkPreview | null = null;

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
    this.baseOrder = order === 'estimate' ? 'margin' : order;
    this.total = countQueue(db, run);
    this.items = loadQueueHead(db, run, this.baseOrder, opts.firstWindow ?? FIRST_WINDOW);
    this.learner = new Learner(db, run, () => this.marginOrdered());
    this.taxonomy = run.dataset.taxonomy;
    this.items.forEach((it, i) => this.byImage.set(it.imageId, i));
    this.view = this.items.map((_, i) => i);
    this.startedAt = this.now();
    this.refresh();
  }

  /** Opens the run (by id, else the dataset's latest finished run) and reads the first window of its queue. */
  static open(db: DB, opts: SessionOptions): ReviewSession {
    annotatorName(opts.annotator); // not empty, no control characters
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

  /** Whether the whole queue has been read (else only its first window: see loadRest). */
  get loaded(): boolean {
    return this.items.length === this.total;
  }

  /**
   * Reads the rest of the queue after its first window (the App does it after the first frame; every step that
   * needs the whole queue does it first). The window is a prefix of the whole queue in the same order, so the item
   * shown and the positions before it stay where they are.
   */
  loadRest(): void {
    if (this.loaded) return;
    const all = loadQueue(this.db, this.run, this.baseOrder);
    const prefix = this.items.every((it, i) => all[i]?.imageId === it.imageId);
    const shown = this.current?.imageId;
    this.items = all;
    this.byImage.clear();
    all.forEach((it, i) => this.byImage.set(it.imageId, i));
    if (!prefix || this.filterValue || (this.learning && this.learner.ready)) {
      this.applyFilter(this.filterValue);
      const at = shown === undefined ? -1 : this.view.indexOf(this.byImage.get(shown)!);
      this.viewPos = at < 0 ? null : at;
    } else {
      for (let i = this.view.length; i < all.length; i++) this.view.push(i);
    }
    // Decisions on items outside the window were not followed until now: read them all again.
    this.seenDecisionId = null;
    this.refresh();
  }

  /** The whole queue in margin order (the estimates' order). */
  private marginOrdered(): QueueItem[] {
    this.loadRest();
    return this.baseOrder === 'margin' ? this.items : [...this.items].sort(compareItems('margin', this.taxonomy));
  }

  detail(item: QueueItem): ItemDetail {
    let d = this.details.get(item.imageId);
    if (!d) {
      d = loadDetail(this.db, this.run, item.imageId);
      if (this.details.size > 256) this.details.clear();
      this.details.set(item.imageId, d);
    }
    return d;
  }

  decisionOf(item: QueueItem): Effective | undefined {
    return this.effective.get(item.imageId);
  }

  /** Accept the proposal, reject it (keep the given label) or set a label by hand; then go to the next item. */
  decide(verdict: Verdict, label?: string): Outcome {
    const item = this.current;
    if (!item) return { status: 'nothing to decide: end of the queue' };
    if (verdict === 'manual' && (label === undefined || !this.taxonomy.includes(label))) {
      return { status: `no class ${label ?? ''} in this dataset` };
    }
    const estimate = this.learner.estimate(item.imageId) ?? null;
    const g = this.guard(() => recordDecision(this.db, this.who, item, verdict, label, { ...this.opts(), estimate }));
    if (g.lost !== undefined) return { status: g.lost };
    const row = g.value;
    this.myDecisions.add(row.id);
    this.learner.pending++;
    this.effective.set(item.imageId, { id: row.id, action: verdict, label: row.new_label, annotator: row.annotator, decidedAt: row.decided_at });
    this.skipped.delete(item.imageId);
    this.advance(this.viewPos!);
    return { row, status: `${item.path}: ${verdict === 'manual' ? 'set to' : verdict + ' →'} ${row.new_label}` };
  }

  /** Records a skip (not a decision) and goes on; skipped items come back once the rest is done. */
  skip(): Outcome {
    const item = this.current;
    if (!item) return { status: 'nothing to skip: end of the queue' };
    const g = this.guard(() => recordDecision(this.db, this.who, item, 'skipped', undefined, this.opts()));
    if (g.lost !== undefined) return { status: g.lost };
    this.skipped.add(item.imageId);
    this.advance(this.viewPos!);
    return { row: g.value, status: `${item.path}: skipped` };
  }

  /** Undoes this annotator's last decision or skip in the run and shows that item again. */
  undo(): Outcome {
    this.loadRest(); // the item undone may lie beyond the first window
    const g = this.guard(() => undoLast(this.db, this.who, this.opts()));
    if (g.lost !== undefined) return { status: g.lost };
    if (!g.value) return { status: 'nothing to undo' };
    const { undone, undo, bulk } = g.value;
    if (bulk) {
      // A whole bulk accept was undone: its items are undecided again; show the last one.
      this.refresh();
      this.learner.pending += bulk.undone;
    }
    this.myDecisions.delete(undone.id);
    this.skipped.delete(undone.image_id);
    this.refreshImage(undone.image_id);
    const idx = this.byImage.get(undone.image_id);
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
    if (bulk) return { row: undo, status: `undid bulk accept ${bulk.id}: ${bulk.undone} proposal(s) undecided again` };
    return { row: undo, status: `undid ${undone.action}${undone.action === 'skipped' ? '' : ` (${undone.new_label})`} on ${item?.path ?? `image ${undone.image_id}`}` };
  }

  /** Moves to the next (+1) or previous (-1) item of the queue, decided or not, skipping items others hold. */
  move(dir: 1 | -1): Outcome {
    const moved = { status: null };
    if (this.viewPos === null) {
      if (dir === 1) {
        // At the end: go round again through the items skipped in this session.
        if (this.skipped.size === 0) return { status: 'end of the queue' };
        this.skipped.clear();
        this.advance(-1);
        return moved;
      }
      this.loadRest();
      for (let p = this.view.length - 1; p >= 0; p--) if (this.enter(p, false)) return moved;
      return { status: 'no item to go back to' };
    }
    if (dir === 1) this.loadRest(); // the first window's end is not the queue's
    for (let p = this.viewPos + dir; p >= 0 && p < this.view.length; p += dir) {
      if (this.enter(p, false)) return moved;
    }
    return { status: dir === 1 ? 'last item of the queue' : 'first item of the queue' };
  }

  /** Shows only items whose given and/or proposed label is a class (null: all), from the first undecided one. */
  setFilter(filter: Filter | null): Outcome {
    this.loadRest();
    this.applyFilter(filter);
    this.viewPos = null;
    this.advance(-1);
    return { status: filter && this.view.length === 0 ? `no item with ${describeFilter(filter)}` : null };
  }

  /** P(a reviewer accepts) the item's proposal, once the estimates are loaded (relearn). */
  estimateOf(item: QueueItem): number | undefined {
    return this.learner.estimate(item.imageId);
  }

  /** Whether a refit is due: never done, or REFIT_EVERY decisions since the last one. Callers run relearn off the key path. */
  relearnDue(): boolean {
    return !this.closed && this.learner.due;
  }

  /**
   * Refits the estimates on every decision in the store and, in the learning order, re-ranks what comes after the
   * item shown: undecided items by the new order, then the decided ones as they were. The item shown and everything
   * before it stay where they are.
   */
  relearn(): void {
    this.loadRest();
    this.learner.relearn();
    if (this.learning) this.rankView(this.viewPos === null ? 0 : this.viewPos + 1);
  }

  /**
   * Puts the view from place `from` on in learning order: the undecided items by rank, and the decided ones as they
   * were, after them (re-ranking what follows the item shown) or before them (a new view: ← goes back to them).
   */
  private rankView(from: number, decidedFirst = false): void {
    const rest = this.view.slice(from);
    const open = rest.filter((i) => !this.effective.has(this.items[i]!.imageId));
    const done = rest.filter((i) => this.effective.has(this.items[i]!.imageId));
    // Each rank looked up once (not twice per comparison: 187k items at 1M images).
    const ranked = open.map((i) => ({ i, rank: this.learner.rankOf(this.items[i]!.imageId) }));
    ranked.sort((a, b) => a.rank - b.rank || a.i - b.i);
    const byRank = ranked.map((r) => r.i);
    this.view = decidedFirst ? [...this.view.slice(0, from), ...done, ...byRank] : [...this.view.slice(0, from), ...byRank, ...done];
  }

  /** How many undecided proposals a bulk accept at `minEstimate` would take, and how many are expected wrong. */
  previewBulk(minEstimate: number): BulkPreview {
    return this.learner.previewBulk(this.who.annotator, minEstimate);
  }

  /** Accepts every undecided proposal with estimate >= minEstimate (one undo reverts it), then goes on. */
  bulkAccept(minEstimate: number): Outcome {
    this.loadRest();
    const r = this.learner.bulk(this.who.annotator, minEstimate, this.who.sessionId);
    this.refresh();
    if (this.learning) this.relearn();
    const cur = this.current;
    if (!cur || this.effective.has(cur.imageId)) this.advance(this.viewPos ?? -1);
    else claimImage(this.db, this.who, cur.imageId, this.now(), this.leaseMs);
    return { status: `bulk accept ${r.bulkId}: accepted ${r.items} proposal(s) with estimate >= ${minEstimate} (expected wrong ${r.expectedWrong.toFixed(1)}); u undoes it` };
  }

  /** Renews this session's lease and re-reads what other sessions did (decisions, claims). */
  tick(): void {
    if (this.closed) return;
    renewClaims(this.db, this.who.sessionId, this.now(), this.leaseMs);
    this.refresh();
  }

  /** Why nothing is shown (at the end of the queue). */
  endState(): EndState {
    this.loadRest();
    let skipped = 0;
    let held = 0;
    for (const i of this.view) {
      const id = this.items[i]!.imageId;
      if (this.effective.has(id)) continue;
      if (this.skipped.has(id)) skipped++;
      else if (this.others.has(id)) held++;
    }
    let undecided = 0;
    for (const it of this.items) if (!this.effective.has(it.imageId)) undecided++;
    return { skipped, held, undecided };
  }

  stats(): Stats {
    // Kept as decisions come and go (a pass over a 187k-item queue took 8-16 ms a frame).
    const { accepted, rejected, manual } = this.effective.counts;
    const reviewed = accepted + rejected + manual;
    const minutes = Math.max(1e-6, (this.now() - this.startedAt) / 60_000);
    const sessionDecisions = this.myDecisions.size;
    const ratePerMin = sessionDecisions / minutes;
    const left = this.total - reviewed;
    const s: Stats = {
      total: this.total,
      reviewed,
      accepted,
      rejected,
      manual,
      sessionDecisions,
      ratePerMin,
      etaSeconds: left === 0 ? 0 : ratePerMin > 0 ? (left / ratePerMin) * 60 : Infinity,
      // Read now, not from `others` (which only lists items this session tried and found taken since its last
      // refresh, and keeps them after they are let go): a handful of rows, one per live session.
      heldByOthers: claimedByOthers(this.db, this.run.id, this.who.sessionId, this.now()).size,
    };
    if (this.filterValue) {
      s.filtered = {
        total: this.view.length,
        reviewed: this.view.filter((i) => this.effective.has(this.items[i]!.imageId)).length,
      };
    }
    return s;
  }

  /** The item next() after a decision would most likely show (to prefetch its face); claims nothing. */
  peekNext(): QueueItem | undefined {
    const n = this.view.length;
    const from = this.viewPos ?? -1;
    for (let k = 1; k <= n; k++) {
      const p = (from + k + n) % n;
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
    const n = this.view.length;
    for (let k = 1; k <= n; k++) {
      const p = (from + k + n) % n;
      if (!this.isCandidate(this.items[this.view[p]!]!.imageId)) continue;
      if (this.enter(p, true)) return;
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
    if (this.seenDecisionId === null) this.effective = new InForce(effectiveForRun(this.db, this.run.id));
    else if (latest > this.seenDecisionId) {
      for (const id of imagesDecidedSince(this.db, this.seenDecisionId)) if (this.byImage.has(id)) this.refreshImage(id);
    }
    this.seenDecisionId = latest;
    this.others = claimedByOthers(this.db, this.run.id, this.who.sessionId, this.now());
  }

  private applyFilter(filter: Filter | null): void {
    this.filterValue = filter;
    this.view = [];
    this.items.forEach((it, i) => {
      if (!filter) this.view.push(i);
      else if (filter.by !== 'proposed' && it.given === filter.cls) this.view.push(i);
      else if (filter.by !== 'given' && it.proposed === filter.cls) this.view.push(i);
    });
    // In the learning order a new view follows the last refit, not the margin order the items were loaded in.
    if (this.learning && this.learner.ready) this.rankView(0, true);
  }
}

export function describeFilter(f: Filter): string {
  return f.by === 'either' ? `given or proposed ${f.cls}` : `${f.by} ${f.cls}`;
}
