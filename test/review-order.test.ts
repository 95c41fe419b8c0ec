import { describe, expect, it } from 'vitest';
import { EstimateModel, EXPLORE_EVERY, pairCounts, rankByEstimate, type Prior } from '../src/estimate/model.js';
import {
  compareItems,
  endState,
  explorationRule,
  filteredView,
  learningOrder,
  placesAfter,
  rankedView,
  reviewQueue,
  type QueueInput,
} from '../src/review/domain/order.js';
import type { QueueItem } from '../src/review/domain/proposals.js';

/** The review queue on plain arrays: no store, no clock, no Ink. */
const TAX = ['anger', 'fear', 'neutral', 'surprise'];
const RAW: Prior = { source: 'raw', a: 0, b: 1, c: 0, rows: 0 };

/** `n` items in margin order (margin decreasing), alternating anger->neutral and fear->surprise. */
function items(n: number): QueueItem[] {
  return Array.from({ length: n }, (_, k) => {
    const [given, proposed] = k % 2 ? ['fear', 'surprise'] : ['anger', 'neutral'];
    const pProposed = 0.3 + ((k * 37) % 60) / 100;
    return { imageId: 100 + k, path: `p${k}.png`, split: 'train', given: given!, runGiven: given!, proposed: proposed!, margin: 1 - k / 100, importance: (k * 7) % 10 / 10, pProposed, pGiven: 0.1 };
  });
}
const modelOf = (its: QueueItem[]) =>
  new EstimateModel(
    its.map((it) => ({ given: TAX.indexOf(it.given), proposed: TAX.indexOf(it.proposed), margin: it.margin ?? 0, importance: it.importance, pProposed: it.pProposed, pGiven: it.pGiven })),
    RAW,
    TAX.length,
  );
const input = (its: QueueItem[], o: Partial<QueueInput> = {}): QueueInput => ({ items: its, taxonomy: TAX, order: 'margin', model: modelOf(its), decided: new Set(), ...o });

describe('review order (pure)', () => {
  it('fixed orders: undecided items only, by the order keys, NULLs last, ties by image id', () => {
    const its = items(8);
    its[2]!.margin = null;
    its[5]!.importance = null;
    its[6]!.margin = its[1]!.margin;
    const ids = (o: QueueInput['order'], extra: Partial<QueueInput> = {}) => reviewQueue(input(its, { order: o, ...extra })).map((p) => p.item.imageId);
    expect(ids('margin')).toEqual([100, 101, 106, 103, 104, 105, 107, 102]);
    const byImp = ids('importance');
    expect(byImp.at(-1)).toBe(105);
    expect(byImp).toEqual([...its].sort(compareItems('importance', TAX)).map((i) => i.imageId));
    expect(ids('class').slice(0, 4).every((id) => its.find((i) => i.imageId === id)!.given === 'anger')).toBe(true);
    expect(ids('margin', { decided: new Set([100, 106]) })).toEqual([101, 103, 104, 105, 107, 102]);
  });

  it('leaves out items others hold (not the annotator\'s own), applies the filter and the limit, and gives each estimate', () => {
    const its = items(6);
    const held = new Map([[100, 'bob'], [101, 'ana']]);
    const q = reviewQueue(input(its, { held, annotator: 'ana', limit: 3 }));
    expect(q.map((p) => p.item.imageId)).toEqual([101, 102, 103]);
    expect(reviewQueue(input(its, { held })).map((p) => p.item.imageId)).toEqual([102, 103, 104, 105]);
    expect(reviewQueue(input(its, { filter: { by: 'given', cls: 'fear' } })).map((p) => p.item.imageId)).toEqual([101, 103, 105]);
    expect(reviewQueue(input(its, { filter: { by: 'proposed', cls: 'neutral' } })).map((p) => p.item.imageId)).toEqual([100, 102, 104]);
    const m = modelOf(its);
    reviewQueue(input(its, { model: m })).forEach((p) => expect(p.estimate).toBe(m.estimate(p.index)));
  });

  it('the learning order is rankByEstimate under the exploration rule: every 10th place a seeded random draw', () => {
    const its = items(45);
    const m = modelOf(its);
    const decided = new Set([100, 101, 104]);
    const { order, explored } = learningOrder(its, m, decided);
    const open = its.map((_, i) => i).filter((i) => !decided.has(its[i]!.imageId));
    const direct = rankByEstimate(m, open, pairCounts(m, [0, 1, 4]), { seed: 3 });
    expect(order).toEqual(direct.order);
    expect(explored).toEqual(direct.explored);
    expect(explorationRule(3)).toEqual({ explore: 0.05, every: EXPLORE_EVERY, seed: 3 });
    expect(order).toHaveLength(42);
    expect(new Set(order).size).toBe(42);
    expect(explored.size).toBe(Math.floor(42 / EXPLORE_EVERY));
    for (const i of explored) expect((order.indexOf(i) + 1) % EXPLORE_EVERY).toBe(0);
    // The queue in order 'estimate' is that order, with the draws marked.
    const q = reviewQueue(input(its, { order: 'estimate', model: m, decided }));
    expect(q.map((p) => p.index)).toEqual(order);
    expect(q.filter((p) => p.explore).map((p) => p.index).sort()).toEqual([...explored].sort());
    // Same decisions, same order; one more decision, a new seed.
    expect(learningOrder(its, m, new Set(decided)).order).toEqual(order);
  });

  it('before the first decision the learning order spends no place on a random draw: the prior\'s best come first', () => {
    const its = items(45);
    const m = modelOf(its);
    expect(explorationRule(0)).toEqual({ explore: 0.05, every: 0, seed: 0 });
    const { order, explored } = learningOrder(its, m, new Set());
    expect(explored.size).toBe(0);
    // with no decision every pair gets the same bonus, so the order is the estimate's (ties: larger margin, lower index)
    const byEstimate = its.map((_, i) => i).sort((x, y) => m.estimate(y) - m.estimate(x) || m.proposals[y]!.margin - m.proposals[x]!.margin || x - y);
    expect(order).toEqual(byEstimate);
    expect(reviewQueue(input(its, { order: 'estimate', model: m })).some((p) => p.explore)).toBe(false);
    // the first decision brings the draws in
    const after = learningOrder(its, m, new Set([its[order[0]!]!.imageId]));
    expect(after.explored.size).toBe(Math.floor(44 / EXPLORE_EVERY));
  });

  it('the session view: filtered, re-ranked after a place, decided items before or after the undecided ones', () => {
    const its = items(6);
    expect(filteredView(its, null)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(filteredView(its, { by: 'either', cls: 'surprise' })).toEqual([1, 3, 5]);
    const rank = new Map([[105, 0], [103, 1], [102, 2], [104, 3]]);
    const rankOf = (id: number) => rank.get(id) ?? Infinity;
    const decided = new Set([101]);
    expect(rankedView([0, 1, 2, 3, 4, 5], 1, its, decided, rankOf)).toEqual([0, 5, 3, 2, 4, 1]);
    expect(rankedView([0, 1, 2, 3, 4, 5], 0, its, decided, rankOf, true)).toEqual([1, 5, 3, 2, 4, 0]);
    expect([...placesAfter(4, 1)]).toEqual([2, 3, 0, 1]);
    expect([...placesAfter(3, -1)]).toEqual([0, 1, 2]);
  });

  it('end state: skipped and held undecided items of the view, undecided items of the run', () => {
    const its = items(6);
    const e = endState(its, [1, 3, 5], new Set([101]), new Set([103, 102]), new Map([[105, 'bob']]));
    expect(e).toEqual({ skipped: 1, held: 1, undecided: 5 });
  });
});
