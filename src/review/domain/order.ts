/**
 * Which undecided proposal comes next: the review queue as pure functions of the run's items, the decisions in
 * force, the claims other sessions hold and the current estimates. No SQL, no clock, no Ink: the terminal session,
 * `fer-clean queue`, the sheet, the report's top of the queue and the demo all order through here.
 */
import { EXPLORE, EXPLORE_EVERY, pairCounts, rankByEstimate, type EstimateModel, type RankOptions } from '../../estimate/model.js';
import type { QueueItem, ReviewOrder } from './proposals.js';
import type { QualityFlag } from '../../quality/checks.js';

/** Queue order: 'estimate' (the learning order) or one of the fixed orders. */
export type QueueOrder = 'estimate' | ReviewOrder;

/** Which items the annotator wants to see: those whose given and/or proposed label is `cls`. */
export interface ClassFilter {
  by: 'either' | 'given' | 'proposed';
  cls: string;
}

/** Items whose image carries a quality flag (`fer-clean quality`): `images` are the flagged images' ids. */
export interface FlagFilter {
  by: 'flag';
  flag: QualityFlag;
  images: ReadonlySet<number>;
}

/** A class filter or a quality-flag filter. */
export type Filter = ClassFilter | FlagFilter;

/** Something that says whether an image has a decision in force (a Set or Map of image ids). */
export interface Decided {
  has(imageId: number): boolean;
}

export function describeFilter(f: Filter): string {
  if (f.by === 'flag') return `quality flag ${f.flag}`;
  return f.by === 'either' ? `given or proposed ${f.cls}` : `${f.by} ${f.cls}`;
}

/** Whether an item shows under a filter (null: every item does). */
export function matchesFilter(it: QueueItem, filter: Filter | null | undefined): boolean {
  if (!filter) return true;
  if (filter.by === 'flag') return filter.images.has(it.imageId);
  return (filter.by !== 'proposed' && it.given === filter.cls) || (filter.by !== 'given' && it.proposed === filter.cls);
}

/** Largest first, NULL last (as SQLite's DESC puts it). */
const desc = (a: number | null, b: number | null): number => (a === b ? 0 : a === null ? 1 : b === null ? -1 : b - a);
/** Smallest first, NULL last (SQL: `x IS NULL, x ASC`). */
const asc = (a: number | null, b: number | null): number => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a - b);

/**
 * Compares two items in a fixed review order (the same keys as the SQL of loadQueueHead); ties are broken by image
 * id, so the order is total.
 */
export function compareItems(order: ReviewOrder, taxonomy: readonly string[]): (a: QueueItem, b: QueueItem) => number {
  const rank = (c: string): number => {
    const i = taxonomy.indexOf(c);
    return i < 0 ? taxonomy.length : i;
  };
  switch (order) {
    case 'margin':
      return (a, b) => desc(a.margin, b.margin) || a.imageId - b.imageId;
    case 'importance':
      return (a, b) => asc(a.importance, b.importance) || desc(a.margin, b.margin) || a.imageId - b.imageId;
    case 'class':
      return (a, b) => rank(a.given) - rank(b.given) || desc(a.margin, b.margin) || a.imageId - b.imageId;
  }
}

/**
 * The exploration rule of the learning order, given how many proposals are decided: a bonus for class pairs with
 * few decisions (EXPLORE) and, once anything is decided, every EXPLORE_EVERY-th place a random draw, seeded by the
 * number of decisions so the order stays the same until the next one (see rankByEstimate). Before the first decision
 * there is nothing to correct the prior with, so no place is spent on a draw: the first items are the prior's best
 * (issue 17: on the shared data a draw in every tenth place from the start cost the top of the queue 3-5 points).
 * The one place to change how the queue explores.
 */
export function explorationRule(decisions: number): RankOptions {
  return { explore: EXPLORE, every: decisions === 0 ? 0 : EXPLORE_EVERY, seed: decisions };
}

/**
 * The undecided proposals in learning order: by estimate, with the exploration of explorationRule. `items` are the
 * model's proposals (index i of the model is items[i]). Returns indices into items and which of them are random
 * draws.
 */
export function learningOrder(items: readonly QueueItem[], model: EstimateModel, decided: Decided): { order: number[]; explored: Set<number> } {
  const decidedIdx: number[] = [];
  const open: number[] = [];
  items.forEach((it, i) => (decided.has(it.imageId) ? decidedIdx.push(i) : open.push(i)));
  return rankByEstimate(model, open, pairCounts(model, decidedIdx), explorationRule(decidedIdx.length));
}

export interface QueueInput {
  /** The run's proposals in margin order, as the estimate model holds them (index i of the model is items[i]). */
  items: readonly QueueItem[];
  taxonomy: readonly string[];
  order: QueueOrder;
  /** The estimates now (refitted on the decisions in force). */
  model: EstimateModel;
  /** Images with a decision in force. */
  decided: Decided;
  /** Images other sessions hold now, with the annotator holding each. */
  held?: ReadonlyMap<number, string>;
  /** An annotator whose own holds do not block (their other sessions' items are theirs to take). */
  annotator?: string;
  filter?: Filter | null;
  /** Most entries to return (default all). */
  limit?: number;
}

/** One place of the queue: the item, its index in `items`, its estimate and whether exploration put it there. */
export interface QueuePlace {
  item: QueueItem;
  index: number;
  estimate: number;
  explore: boolean;
}

/** The undecided proposals nobody else holds, in the queue's order (at most `limit`). */
export function reviewQueue(q: QueueInput): QueuePlace[] {
  let order: number[];
  let explored = new Set<number>();
  if (q.order === 'estimate') ({ order, explored } = learningOrder(q.items, q.model, q.decided));
  else {
    const cmp = compareItems(q.order, q.taxonomy);
    order = q.items
      .map((_, i) => i)
      .filter((i) => !q.decided.has(q.items[i]!.imageId))
      .sort((a, b) => cmp(q.items[a]!, q.items[b]!));
  }
  const out: QueuePlace[] = [];
  for (const i of order) {
    const item = q.items[i]!;
    const holder = q.held?.get(item.imageId);
    if (holder !== undefined && holder !== q.annotator) continue;
    if (!matchesFilter(item, q.filter)) continue;
    out.push({ item, index: i, estimate: q.model.estimate(i), explore: explored.has(i) });
    if (q.limit !== undefined && out.length >= q.limit) break;
  }
  return out;
}

/**
 * The session's view of its items (indices into `items`, which are in the session's base order): every item the
 * filter lets through, decided or not (← and → go through decided ones too).
 */
export function filteredView(items: readonly QueueItem[], filter: Filter | null): number[] {
  const view: number[] = [];
  items.forEach((it, i) => {
    if (matchesFilter(it, filter)) view.push(i);
  });
  return view;
}

/**
 * Puts `view` from place `from` on in learning order: the undecided items by rank (ties: their place in `items`),
 * the decided ones as they were, after them (re-ranking what follows the item shown) or before them (a new view).
 * The places before `from` stay where they are. Returns a new array.
 */
export function rankedView(
  view: readonly number[],
  from: number,
  items: readonly QueueItem[],
  decided: Decided,
  rankOf: (imageId: number) => number,
  decidedFirst = false,
): number[] {
  const rest = view.slice(from);
  const open = rest.filter((i) => !decided.has(items[i]!.imageId));
  const done = rest.filter((i) => decided.has(items[i]!.imageId));
  // Each rank looked up once (not twice per comparison: 187k items at 1M images).
  const ranked = open.map((i) => ({ i, rank: rankOf(items[i]!.imageId) }));
  ranked.sort((a, b) => a.rank - b.rank || a.i - b.i);
  const byRank = ranked.map((r) => r.i);
  return decidedFirst ? [...view.slice(0, from), ...done, ...byRank] : [...view.slice(0, from), ...byRank, ...done];
}

/**
 * The places of `view` after `from` (wrapping round, `from` itself last), for a search of the next item to show:
 * -1 starts from the top.
 */
export function* placesAfter(viewLength: number, from: number): Generator<number> {
  const n = viewLength;
  for (let k = 1; k <= n; k++) yield (from + k + n) % n;
}

/** Why nothing is shown at the end of a view: undecided items skipped, held by others, and undecided in the run. */
export interface EndState {
  /** Undecided items skipped in this session (shown again with next()). */
  skipped: number;
  /** Undecided items other sessions hold. */
  held: number;
  /** Undecided items in the whole queue (ignoring the filter). */
  undecided: number;
}

export function endState(
  items: readonly QueueItem[],
  view: readonly number[],
  decided: Decided,
  skipped: Decided,
  held: Decided,
): EndState {
  const end: EndState = { skipped: 0, held: 0, undecided: 0 };
  for (const i of view) {
    const id = items[i]!.imageId;
    if (decided.has(id)) continue;
    if (skipped.has(id)) end.skipped++;
    else if (held.has(id)) end.held++;
  }
  for (const it of items) if (!decided.has(it.imageId)) end.undecided++;
  return end;
}
