import { describe, expect, it } from 'vitest';
import { fitLogistic, logit, sigmoid, solveCholesky, type SparseRow } from '../src/estimate/logistic.js';
import {
  calibrationByDecile,
  EstimateModel,
  fitPrior,
  pairCounts,
  rankByEstimate,
  type HeldOutRow,
  type ProposalFeatures,
} from '../src/estimate/model.js';
import { Rng } from '../src/scn/prng.js';

describe('fitLogistic (Newton / IRLS with a ridge penalty)', () => {
  it('solves a linear system by Cholesky', () => {
    const A = Float64Array.from([4, 2, 0, 2, 5, 1, 0, 1, 3]);
    const x = solveCholesky(A, [2, 3, 4], 3);
    const back = [0, 1, 2].map((i) => [0, 1, 2].reduce((s, j) => s + A[i * 3 + j]! * x[j]!, 0));
    back.forEach((v, i) => expect(v).toBeCloseTo([2, 3, 4][i]!, 10));
    expect(() => solveCholesky(Float64Array.from([1, 2, 2, 1]), [1, 1], 2)).toThrow(/not positive definite/);
  });

  it('an intercept alone with a tiny penalty is the logit of the mean outcome', () => {
    const y = [1, 1, 1, 0];
    const rows: SparseRow[] = y.map(() => ({ idx: [0], val: [1] }));
    const f = fitLogistic({ dim: 1, rows, y, l2: 1e-9 });
    expect(f.converged).toBe(true);
    expect(f.w[0]).toBeCloseTo(Math.log(3), 5);
  });

  it('recovers the coefficients of simulated data', () => {
    const rng = new Rng(7);
    const rows: SparseRow[] = [];
    const y: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const x1 = rng.normal();
      const x2 = rng.normal();
      rows.push({ idx: [0, 1, 2], val: [1, x1, x2] });
      y.push(rng.next() < sigmoid(-0.5 + 1.5 * x1 - 2 * x2) ? 1 : 0);
    }
    const f = fitLogistic({ dim: 3, rows, y, l2: 1e-6 });
    expect(f.w[0]).toBeCloseTo(-0.5, 1);
    expect(f.w[1]).toBeCloseTo(1.5, 1);
    expect(f.w[2]).toBeCloseTo(-2, 1);
  });

  it('an offset shifts the fit, and a large penalty keeps the weights at 0 (separable data stays finite)', () => {
    const rows: SparseRow[] = [{ idx: [0], val: [1] }, { idx: [0], val: [1] }];
    const offset = [2, 2];
    const f = fitLogistic({ dim: 1, rows, y: [1, 1], offset, l2: 1e6 });
    expect(Math.abs(f.w[0]!)).toBeLessThan(1e-5);
    const g = fitLogistic({ dim: 1, rows, y: [1, 1], l2: 1 });
    expect(Number.isFinite(g.w[0])).toBe(true);
    expect(g.w[0]).toBeGreaterThan(0);
    expect(() => fitLogistic({ dim: 1, rows, y: [1, 1], l2: 0 })).toThrow(/must be > 0/);
    // A row with a value that is not a number is named, not turned into a 'not positive definite' mystery.
    expect(() => fitLogistic({ dim: 1, rows: [{ idx: [0], val: [Number.NaN] }], y: [1], l2: 1 })).toThrow('fitLogistic: row 0 has a value that is not a finite number');
  });
});

const C = 3;
/** Proposals over pairs 0->1 and 2->1 with probabilities from `p`. */
function proposals(n: number, rng: Rng): ProposalFeatures[] {
  return Array.from({ length: n }, (_, i) => {
    const pProposed = 0.4 + 0.5 * rng.next();
    const pGiven = (1 - pProposed) * rng.next();
    return { given: i % 2 === 0 ? 0 : 2, proposed: 1, margin: pProposed - pGiven, importance: rng.next(), pProposed, pGiven };
  });
}

describe('fitPrior: the estimate before any decision', () => {
  it('calibrates on validation images whose top class differs from the label, against the reference', () => {
    const rng = new Rng(3);
    const rows: HeldOutRow[] = [];
    for (let i = 0; i < 2000; i++) {
      const top = 0.35 + 0.6 * rng.next();
      const probs = [top, (1 - top) / 2, (1 - top) / 2];
      // The top class (0) is the reference with probability top^2: the run is overconfident.
      rows.push({ given: 1, reference: rng.next() < top * top ? 0 : 1, probs });
    }
    const prior = fitPrior(rows);
    expect(prior.source).toBe('valid-reference');
    expect(prior.rows).toBe(2000);
    const model = new EstimateModel([{ given: 1, proposed: 0, margin: 0.8 - 0.1, importance: null, pProposed: 0.8, pGiven: 0.1 }], prior, 3);
    expect(model.estimate(0)).toBeGreaterThan(0.55);
    expect(model.estimate(0)).toBeLessThan(0.75); // 0.8^2 = 0.64, not the raw 0.8
  });

  it('falls back to the given labels without references, and to the raw probability without a validation split', () => {
    const rng = new Rng(4);
    const rows: HeldOutRow[] = Array.from({ length: 300 }, () => {
      const top = 0.4 + 0.5 * rng.next();
      return { given: rng.next() < top ? 0 : 1, reference: -1, probs: [top, 1 - top, 0] };
    });
    const p = fitPrior(rows);
    expect(p.source).toBe('valid-given');
    expect(p.b).toBeGreaterThan(0.5);
    expect(fitPrior(rows.slice(0, 10))).toEqual({ source: 'raw', a: 0, b: 1, c: 0, rows: 0 });
  });
});

describe('EstimateModel: refit on decisions', () => {
  const prior = { source: 'raw' as const, a: 0, b: 1, c: 0, rows: 0 };

  it('is the prior before any decision and again after a fit on none', () => {
    const m = new EstimateModel(proposals(50, new Rng(1)), prior, C);
    for (let i = 0; i < 50; i++) expect(m.estimate(i)).toBeCloseTo(m.proposals[i]!.pProposed, 3);
    m.fit([{ index: 0, accepted: false }]);
    expect(m.estimate(0)).toBeLessThan(m.proposals[0]!.pProposed);
    m.fit([]);
    expect(m.estimate(0)).toBeCloseTo(m.proposals[0]!.pProposed, 3);
  });

  it('learns that one class pair is always rejected and the other always accepted', () => {
    const m = new EstimateModel(proposals(400, new Rng(2)), prior, C);
    const outcomes = Array.from({ length: 200 }, (_, i) => ({ index: i, accepted: m.proposals[i]!.given === 2 }));
    m.fit(outcomes);
    const mean = (g: number) => {
      const v = m.proposals.map((p, i) => [p, i] as const).filter(([p, i]) => i >= 200 && p.given === g);
      return v.reduce((s, [, i]) => s + m.estimate(i), 0) / v.length;
    };
    expect(mean(2)).toBeGreaterThan(0.9);
    expect(mean(0)).toBeLessThan(0.1);
    expect(m.fittedOn).toBe(200);
    expect(m.weights(['a', 'b', 'c'])['pair:c->b']).toBeGreaterThan(0);
  });

  it('ranks by estimate with a bonus for class pairs with few decisions', () => {
    const ps: ProposalFeatures[] = [
      { given: 0, proposed: 1, margin: 0.5, importance: 0.5, pProposed: 0.72, pGiven: 0.2 },
      { given: 2, proposed: 1, margin: 0.5, importance: 0.5, pProposed: 0.7, pGiven: 0.2 },
      { given: 0, proposed: 1, margin: 0.1, importance: 0.5, pProposed: 0.4, pGiven: 0.3 },
    ];
    const m = new EstimateModel(ps, prior, C);
    expect(rankByEstimate(m, [0, 1, 2], new Map(), { explore: 0 }).order).toEqual([0, 1, 2]);
    // Pair 0->1 has 100 decisions, pair 2->1 none: the bonus puts item 1 first.
    const counts = pairCounts(m, Array.from({ length: 100 }, () => 0));
    expect(counts.get(0 * C + 1)).toBe(100);
    expect(rankByEstimate(m, [0, 1, 2], counts, { explore: 0.05 }).order).toEqual([1, 0, 2]);
  });

  it('gives every tenth place to a random draw, the same for the same seed', () => {
    const m = new EstimateModel(proposals(200, new Rng(5)), prior, C);
    const all = Array.from({ length: 200 }, (_, i) => i);
    const plain = rankByEstimate(m, all, new Map(), { explore: 0, every: 0 });
    expect(plain.explored.size).toBe(0);
    const r = rankByEstimate(m, all, new Map(), { explore: 0, seed: 3 });
    expect([...r.order].sort((a, b) => a - b)).toEqual(all);
    expect(r.explored.size).toBe(20);
    r.order.forEach((i, p) => expect(r.explored.has(i)).toBe((p + 1) % 10 === 0));
    // The other places keep the estimate order.
    const rest = r.order.filter((i) => !r.explored.has(i));
    expect(rest).toEqual(plain.order.filter((i) => !r.explored.has(i)));
    expect(rankByEstimate(m, all, new Map(), { explore: 0, seed: 3 }).order).toEqual(r.order);
    expect(rankByEstimate(m, all, new Map(), { explore: 0, seed: 4 }).order).not.toEqual(r.order);
  });
});

describe('calibrationByDecile', () => {
  it('bins estimates by tenths with their observed rate', () => {
    const bins = calibrationByDecile([0.05, 0.15, 0.12, 0.95, 1], [0, 1, 0, 1, 1]);
    expect(bins).toHaveLength(10);
    expect(bins[0]).toMatchObject({ n: 1, observed: 0 });
    expect(bins[1]!.n).toBe(2);
    expect(bins[1]!.predicted).toBeCloseTo(0.135, 10);
    expect(bins[1]!.observed).toBe(0.5);
    expect(bins[9]).toMatchObject({ n: 2, observed: 1 });
    expect(bins[5]).toMatchObject({ n: 0, predicted: null, observed: null });
  });
});

it('logit clips', () => {
  expect(Number.isFinite(logit(0))).toBe(true);
  expect(logit(0.5)).toBe(0);
});
