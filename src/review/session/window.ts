/**
 * A run's review queue as a session holds it: the first window of its order when it opens (loadQueueHead), then the
 * rest in slices read between keys (readSlice) or all at once (readRest, loadQueue), with each item's place by image
 * id and the details of the items shown.
 */
import type { DB } from '../../store/db.js';
import type { ResolvedRun } from '../../store/runs.js';
import { countQueue, loadDetail, loadImageSlice, loadMarginSlice, loadQueue, loadQueueHead, type ItemDetail, type QueueItem, type ReviewOrder } from '../domain/proposals.js';
import { compareItems } from '../domain/order.js';

/** Items read when a session opens (the first window of its order); the rest is read by readSlice() or readRest(). */
export const FIRST_WINDOW = 500;

/**
 * Items read by one readSlice(): a few milliseconds of SQL, so that a key typed meanwhile waits no longer than that
 * (the whole rest of a 1M-image run's queue took 0.5 s in one read).
 */
export const REST_SLICE = 500;

/** What a read did: whether the items read before are the prefix of the queue read now (their places unchanged). */
export interface Read {
  prefix: boolean;
}

export class QueueWindow {
  /** The queue read so far, in `order`: its first window, growing by readSlice() (margin order), then all of it. */
  items: QueueItem[];
  /** Proposals in the run (the queue's length, read or not). */
  readonly total: number;
  private readonly place = new Map<number, number>();
  private readonly details = new Map<number, ItemDetail>();
  private complete: boolean;
  /** Other orders than margin: the rest read so far in image order (sorted into items once all of it is read). */
  private rest: QueueItem[] = [];

  constructor(
    private readonly db: DB,
    private readonly run: ResolvedRun,
    readonly order: ReviewOrder,
    firstWindow = FIRST_WINDOW,
    private readonly slice = REST_SLICE,
  ) {
    this.total = countQueue(db, run);
    this.items = loadQueueHead(db, run, order, firstWindow);
    this.items.forEach((it, i) => this.place.set(it.imageId, i));
    this.complete = this.items.length >= this.total;
  }

  /** Whether the whole queue has been read. */
  get loaded(): boolean {
    return this.complete;
  }

  /** Place of an image in items (undefined: not in the part read). */
  indexOf(imageId: number): number | undefined {
    return this.place.get(imageId);
  }

  /**
   * Reads the whole queue; returns whether the window read before is its prefix (then every place read before stays
   * the same), or null when it was read already.
   */
  readRest(): Read | null {
    if (this.loaded) return null;
    return this.replaceBy(loadQueue(this.db, this.run, this.order));
  }

  /**
   * Reads the next `limit` items of the rest. In margin order (and the learning order, which starts from it) they
   * come in queue order and are appended: the part read stays a prefix of the queue, so nothing read before moves. In
   * the other orders the rest is read in image order and sorted in once the last slice is in. Null when the whole
   * queue was read already.
   */
  readSlice(limit = this.slice): Read | null {
    if (this.loaded) return null;
    if (this.order === 'margin') {
      const next = loadMarginSlice(this.db, this.run, this.items.at(-1) ?? null, limit);
      for (const it of next) {
        this.place.set(it.imageId, this.items.length);
        this.items.push(it);
      }
      if (next.length < limit || this.items.length >= this.total) this.complete = true;
      return { prefix: true };
    }
    const next = loadImageSlice(this.db, this.run, this.rest.at(-1)?.imageId ?? -1, limit);
    this.rest = this.rest.concat(next);
    if (next.length === limit && this.rest.length < this.total) return { prefix: true };
    const all = this.rest.sort(compareItems(this.order, this.run.dataset.taxonomy));
    this.rest = [];
    return this.replaceBy(all);
  }

  /** Takes `all` (the whole queue) as the items; says whether the items read before are its prefix. */
  private replaceBy(all: QueueItem[]): Read {
    const prefix = this.items.every((it, i) => all[i]?.imageId === it.imageId);
    this.items = all;
    this.place.clear();
    all.forEach((it, i) => this.place.set(it.imageId, i));
    this.complete = true;
    this.rest = [];
    return { prefix };
  }

  /** The whole queue in margin order (the estimates' order). */
  marginOrdered(): QueueItem[] {
    this.readRest();
    return this.order === 'margin' ? this.items : [...this.items].sort(compareItems('margin', this.run.dataset.taxonomy));
  }

  /** File, face box, probabilities of an item (read once, kept for the last few hundred items). */
  detail(item: QueueItem): ItemDetail {
    let d = this.details.get(item.imageId);
    if (!d) {
      d = loadDetail(this.db, this.run, item.imageId);
      if (this.details.size > 256) this.details.clear();
      this.details.set(item.imageId, d);
    }
    return d;
  }
}
