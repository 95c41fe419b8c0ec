import { beforeAll, describe, expect, it } from 'vitest';
import { argmax } from '../src/scn/argmax.js';
import { initBackend } from '../src/features/backend.js';
import { confidentJoint, confidentLearning, findLabelIssues, stratifiedFolds } from '../src/scn/cl.js';
import { injectNoise } from '../src/scn/noise.js';
import { Rng } from '../src/scn/prng.js';
import { trainHead, type TrainData, type TrainOptions } from '../src/scn/train.js';

beforeAll(async () => {
  await initBackend('auto');
});

/** Gaussian clusters: C classes in `dim` dimensions, well separated, with 30% symmetric noise on the first 240 rows. */
function clusters(n = 300, dim = 8, C = 3): { data: TrainData; clean: Int32Array; flipped: Set<number> } {
  const rng = new Rng(42);
  const centers = Array.from({ length: C }, () => Array.from({ length: dim }, () => rng.normal() * 2));
  const features = new Float32Array(n * dim);
  const clean = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % C;
    clean[i] = c;
    for (let j = 0; j < dim; j++) features[i * dim + j] = centers[c]![j]! + rng.normal() * 0.7;
  }
  const train = Array.from({ length: 240 }, (_, i) => i);
  const valid = Array.from({ length: 60 }, (_, i) => 240 + i);
  const noisy = injectNoise(clean, train, { rate: 0.3, type: 'symmetric', taxonomy: ['a', 'b', 'c'], seed: 1 });
  return {
    data: { features, dim, classes: C, labels: noisy.labels, train, valid },
    clean,
    flipped: new Set(noisy.flips.map((f) => f.index)),
  };
}

const opts: TrainOptions = {
  method: 'scn',
  hidden: 16,
  dropout: 0.2,
  lr: 0.01,
  lrDecay: 0.95,
  weightDecay: 1e-4,
  batchSize: 32,
  epochs: 12,
  standardize: true,
  seed: 3,
  relabelEpoch: 4,
  importanceWindow: 3,
};

describe('trainHead', () => {
  it('scn: learns the clusters, ranks flipped labels low and relabels them to the true class; seeded', async () => {
    const { data, clean, flipped } = clusters();
    const r = await trainHead(data, opts);
    expect(r.epochs).toHaveLength(12);
    expect(r.epochs.every((e) => Number.isFinite(e.loss) && e.importanceGap !== null)).toBe(true);
    expect(r.epochs.slice(0, 3).every((e) => e.relabeled === 0)).toBe(true); // relabeling starts at epoch 4
    // Test-like accuracy on the clean valid rows.
    let ok = 0;
    for (let i = 240; i < 300; i++) {
      const p = Array.from(r.probs.subarray(i * 3, i * 3 + 3));
      if (p.indexOf(Math.max(...p)) === clean[i]) ok++;
    }
    expect(ok / 60).toBeGreaterThan(0.9);
    // Importance: flipped samples sit lower on average.
    const imp = r.importance!;
    const mean = (rows: number[]): number => rows.reduce((s, i) => s + imp[i]!, 0) / rows.length;
    const train = Array.from({ length: 240 }, (_, i) => i);
    expect(mean(train.filter((i) => flipped.has(i)))).toBeLessThan(mean(train.filter((i) => !flipped.has(i))));
    expect(r.importanceMean!.length).toBe(300);
    // Relabeled samples are mostly flipped ones, put back to their true class.
    const changed = train.filter((i) => r.trainedLabels[i] !== data.labels[i]);
    expect(changed.length).toBeGreaterThan(10);
    const fixed = changed.filter((i) => flipped.has(i) && r.trainedLabels[i] === clean[i]).length;
    expect(fixed / changed.length).toBeGreaterThan(0.8);
    // Relabeling changed the working labels, never the caller's: every input label is as it was.
    expect(Array.from(data.labels)).toEqual(Array.from(clusters().data.labels));
    // Same seed, same backend: the same run.
    const again = await trainHead(data, opts);
    expect(Array.from(again.probs)).toEqual(Array.from(r.probs));
    expect(Array.from(again.trainedLabels)).toEqual(Array.from(r.trainedLabels));
  });

  it('relabel scope all relabels at least as many samples as the low group only', async () => {
    const { data } = clusters();
    const low = await trainHead(data, { ...opts, epochs: 6 });
    const all = await trainHead(data, { ...opts, epochs: 6, relabelScope: 'all' });
    const count = (t: Int32Array): number => Array.from({ length: 240 }, (_, i) => i).filter((i) => t[i] !== data.labels[i]).length;
    expect(count(all.trainedLabels)).toBeGreaterThanOrEqual(count(low.trainedLabels));
  });

  it('ce: no importance, no relabeling', async () => {
    const { data } = clusters();
    const r = await trainHead(data, { ...opts, method: 'ce', epochs: 4 });
    expect(r.importance).toBeNull();
    expect(r.epochs.every((e) => e.importanceGap === null && e.relabeled === 0)).toBe(true);
    expect(Array.from(r.trainedLabels)).toEqual(Array.from(data.labels));
  });
});

describe('confident learning', () => {
  it('confident joint and pruning on hand-made probabilities', () => {
    // Class thresholds: t0 = mean p0 over label 0 = (0.9 + 0.8 + 0.2) / 3 = 0.633; t1 = (0.9 + 0.7) / 2 = 0.8.
    const labels = [0, 0, 0, 1, 1];
    const probs = [0.9, 0.1, 0.8, 0.2, 0.2, 0.8, 0.1, 0.9, 0.3, 0.7];
    const cj = confidentJoint(labels, probs, 2);
    // Example 2 (label 0, p1 = 0.8 >= t1) counts as (0 -> 1); example 4 (label 1, p1 = 0.7 < t1, p0 = 0.3 < t0) does not count.
    expect(cj[0]).toEqual([2, 1]);
    expect(cj[1]).toEqual([0, 2]); // one counted example, calibrated to the row's 2 labels
    expect(Array.from(findLabelIssues(labels, probs, 2))).toEqual([0, 0, 1, 0, 0]);
  });

  it('stratified folds keep each class spread over the folds', () => {
    const labels = Int32Array.from({ length: 30 }, (_, i) => (i < 20 ? 0 : 1));
    const rows = Array.from({ length: 30 }, (_, i) => i);
    const f = stratifiedFolds(rows, labels, 5, 1);
    for (let k = 0; k < 5; k++) {
      expect(rows.filter((r) => f[r] === k && labels[r] === 0)).toHaveLength(4);
      expect(rows.filter((r) => f[r] === k && labels[r] === 1)).toHaveLength(2);
    }
  });

  it('finds flipped labels from out-of-fold probabilities', async () => {
    const { data, clean, flipped } = clusters();
    const r = await confidentLearning(data, { ...opts, epochs: 6 }, 3);
    expect(r.epochs).toHaveLength(18);
    const flagged = Array.from({ length: 300 }, (_, i) => i).filter((i) => r.issues[i]);
    expect(flagged.every((i) => i < 240)).toBe(true); // training rows only
    const tp = flagged.filter((i) => flipped.has(i)).length;
    expect(tp / flagged.length).toBeGreaterThan(0.8);
    expect(tp / flipped.size).toBeGreaterThan(0.6);
    // Never flagged: an example whose out-of-fold prediction is its given label; most flagged ones predict the truth.
    expect(flagged.every((i) => argmax(r.probs, i, 3) !== data.labels[i])).toBe(true);
    expect(flagged.filter((i) => argmax(r.probs, i, 3) === clean[i]).length / flagged.length).toBeGreaterThan(0.8);
  });
});
