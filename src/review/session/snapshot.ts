/**
 * What a review session gives its screen: the options it opens with, what an action did (Outcome) and the immutable
 * Snapshot of what to show after each action or tick.
 */
import type { DecisionRow, Effective } from '../domain/decisions.js';
import type { EndState, Filter } from '../domain/order.js';
import type { Stats } from '../domain/progress.js';
import type { ItemDetail, QueueItem, ReviewOrder } from '../domain/proposals.js';
import type { BulkPreview } from '../domain/bulk.js';
import { isFerCleanError } from '../../errors.js';
import type { ReviewSession } from './session.js';

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
  /** Items read when the session opens (default FIRST_WINDOW); the rest is read in slices between keys, or by loadRest(). */
  firstWindow?: number;
  /** Items read by one background step (default REST_SLICE). */
  restSlice?: number;
}

/** What an action did: its row (if it wrote one) and a line for the status bar (e.g. why it did nothing). */
export interface Outcome {
  row?: DecisionRow;
  status: string | null;
}

/** The item shown, with everything the screen says about it. */
export interface Shown {
  item: QueueItem;
  detail: ItemDetail;
  decision?: Effective;
  /** P(a reviewer accepts), the reviewer decisions the last refit used, and whether exploration placed it; undefined before the first refit. */
  estimate?: { p: number; fittedOn: number; explore: boolean };
}

/** What the screen shows after an action or a tick: the session's state at that moment, never changed afterwards. */
export interface Snapshot extends Outcome {
  /** Grows with every snapshot of a session. */
  version: number;
  /** The item shown; undefined at the end of the queue (or for an empty queue). */
  shown?: Shown;
  /** The item the next decision would most likely show (to draw its face ahead of time). */
  next?: { item: QueueItem; detail: ItemDetail };
  position: { index: number; of: number };
  stats: Stats;
  /** At the end of the queue: why nothing is shown. */
  end?: EndState;
  filter: Filter | null;
  /** The bulk accept offered on the confirmation page (null when none is offered). */
  bulkOffer: BulkPreview | null;
}

const freeze = <T extends object>(o: T): Readonly<T> => Object.freeze(o);

/** What `session` shows now, frozen (the item shown with its detail, decision and estimate, the next item, counts). */
export function snapshotOf(session: ReviewSession, outcome: Outcome, version: number): Snapshot {
  const item = session.current;
  let shown: Shown | undefined;
  if (item) {
    const p = session.estimateOf(item);
    const { learner } = session;
    shown = freeze({
      item,
      detail: session.detail(item),
      decision: session.decisionOf(item),
      estimate: p === undefined ? undefined : freeze({ p, fittedOn: learner.lastFit?.fittedOn ?? 0, explore: learner.isExplore(item.imageId) }),
    });
  }
  let next: Snapshot['next'];
  const peek = session.peekNext();
  if (peek) {
    try {
      next = freeze({ item: peek, detail: session.detail(peek) });
    } catch (e) {
      if (!isFerCleanError(e)) throw e; // a face that cannot be read is said so when it is shown
    }
  }
  return freeze({
    ...outcome,
    version,
    shown,
    next,
    position: freeze(session.position),
    stats: freeze(session.stats()),
    end: item || session.total === 0 ? undefined : freeze(session.endState()),
    filter: session.filter,
    bulkOffer: session.bulkOffer,
  });
}
