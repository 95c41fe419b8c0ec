/**
 * A run's review queue as a session holds it: the first window of its order when it opens (loadQueueHead), all of
 * it after readRest() (loadQueue), with each item's place by image id and the details of the items shown.
 */
import type { DB } from '../../store/db.js';
import type { ResolvedRun } from '../../store/runs.js';
import { countQueue, loadDetail, loadQueue, loadQueueHead, type ItemDetail, type QueueItem, type ReviewOrder } from '../domain/proposals.js';
import { compareItems } from '../domain/order.js';

/** Items read when a session opens (the first window of its order); the rest is read by readRest(). */
export const FIRST_WINDOW = 500;

export class QueueWindow {
  /** The queue read so far, in `order`: its first window until readRest(), then all of it. */
  items: QueueItem[];
  /** Proposals in the run (the queue's length, read or not). */
  readonly total: number;
  private readonly place = new Map<number, number>();
  private readonly details = new Map<number, ItemDetail>();

  constructor(
    private readonly db: DB,
    private readonly run: ResolvedRun,
    readonly order: ReviewOrder,
    firstWindow = FIRST_WINDOW,
  ) {
    this.total = countQueue(db, run);
    this.items = loadQueueHead(db, run, order, firstWindow);
    this.items.forEach((it, i) => this.place.set(it.imageId, i));
  }

  /** Whether the whole queue has been read. */
  get loaded(): boolean {
    return this.items.length === this.total;
  }

  /** Place of an image in items (undefined: not in the part read). */
  indexOf(imageId: number): number | undefined {
    return this.place.get(imageId);
  }

  /**
   * Reads the whole queue; returns whether the window read before is its prefix (then every place read before stays
   * the same), or null when it was read already.
   */
  readRest(): boolean | null {
    if (this.loaded) return null;
    const all = loadQueue(this.db, this.run, this.order);
    const prefix = this.items.every((it, i) => all[i]?.imageId === it.imageId);
    this.items = all;
    this.place.clear();
    all.forEach((it, i) => this.place.set(it.imageId, i));
    return prefix;
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
