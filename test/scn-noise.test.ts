import { describe, expect, it } from 'vitest';
import { confusableClass, injectNoise } from '../src/scn/noise.js';
import { Rng, permutation } from '../src/scn/prng.js';
import { defaultTaxonomy } from '../src/taxonomy.js';

const tax = defaultTaxonomy();

describe('synthetic noise', () => {
  const labels = Int32Array.from({ length: 1000 }, (_, i) => i % tax.length);
  const eligible = Array.from({ length: 800 }, (_, i) => i); // the last 200 are not training rows

  it('flips exactly round(rate * eligible) labels, only eligible ones, each to another class', () => {
    const { labels: noisy, flips } = injectNoise(labels, eligible, { rate: 0.3, type: 'symmetric', taxonomy: tax, seed: 4 });
    expect(flips).toHaveLength(240);
    let changed = 0;
    noisy.forEach((y, i) => (changed += y !== labels[i] ? 1 : 0));
    expect(changed).toBe(240);
    for (const f of flips) {
      expect(f.index).toBeLessThan(800);
      expect(f.original).toBe(labels[f.index]);
      expect(f.noisy).not.toBe(f.original);
      expect(noisy[f.index]).toBe(f.noisy);
    }
    expect(labels[0]).toBe(0); // the input is not modified
  });

  it('symmetric noise reaches every other class', () => {
    const { flips } = injectNoise(labels, eligible, { rate: 0.5, type: 'symmetric', taxonomy: tax, seed: 9 });
    const targets = new Set(flips.filter((f) => f.original === 3).map((f) => f.noisy));
    expect([...targets].sort()).toEqual([0, 1, 2, 4, 5, 6]);
  });

  it('asymmetric noise sends each class to its confusable class', () => {
    const { flips } = injectNoise(labels, eligible, { rate: 0.2, type: 'asymmetric', taxonomy: tax, seed: 1 });
    for (const f of flips) expect(f.noisy).toBe(confusableClass(f.original, tax));
    expect(tax[confusableClass(tax.indexOf('sadness'), tax)]).toBe('neutral');
    expect(tax[confusableClass(tax.indexOf('anger'), tax)]).toBe('disgust');
  });

  it('is seeded: same seed same flips, another seed other flips', () => {
    const a = injectNoise(labels, eligible, { rate: 0.1, type: 'symmetric', taxonomy: tax, seed: 2 });
    const b = injectNoise(labels, eligible, { rate: 0.1, type: 'symmetric', taxonomy: tax, seed: 2 });
    const c = injectNoise(labels, eligible, { rate: 0.1, type: 'symmetric', taxonomy: tax, seed: 3 });
    expect(a.flips).toEqual(b.flips);
    expect(a.flips).not.toEqual(c.flips);
  });

  it('rejects a rate outside [0, 1)', () => {
    expect(() => injectNoise(labels, eligible, { rate: 1, type: 'symmetric', taxonomy: tax, seed: 1 })).toThrow(/--noise/);
  });
});

describe('seeded generator', () => {
  it('repeats its stream for a seed and gives a permutation', () => {
    const a = Array.from({ length: 5 }, ((r) => () => r.next())(new Rng(11)));
    const b = Array.from({ length: 5 }, ((r) => () => r.next())(new Rng(11)));
    expect(a).toEqual(b);
    expect(a.every((v) => v >= 0 && v < 1)).toBe(true);
    const p = Array.from(permutation(50, new Rng(1)));
    expect([...p].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });
});
