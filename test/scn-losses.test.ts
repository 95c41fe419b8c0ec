import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../src/features/backend.js';
import { proposeLabels, rankGroups, relabel } from '../src/scn/losses.js';
import { crossEntropy, rankRegularization, scnLoss, selfAttentionImportance, weightedCrossEntropy } from './oracle/losses-tf.js';
import { argmax } from '../src/scn/argmax.js';
import { Head, denseMatMul } from './oracle/head.js';
import { Rng } from '../src/scn/prng.js';

beforeAll(async () => {
  await initBackend('auto');
});

const value = (t: tf.Tensor): number => {
  const v = t.dataSync()[0]!;
  t.dispose();
  return v;
};

describe('logit-weighted cross-entropy (Eq. 2)', () => {
  it('equals -mean log softmax(alpha * z)[y] on hand-computed values', () => {
    // Row 1: alpha 0.5, z = [1, 0], y = 0 -> log(1 + e^-0.5); row 2: alpha 1, z = [0, 2], y = 1 -> log(1 + e^-2).
    const z = tf.tensor2d([[1, 0], [0, 2]]);
    const alpha = tf.tensor2d([[0.5], [1]]);
    const y = tf.tensor2d([[1, 0], [0, 1]]);
    const expected = (Math.log(1 + Math.exp(-0.5)) + Math.log(1 + Math.exp(-2))) / 2;
    expect(value(weightedCrossEntropy(z, alpha, y))).toBeCloseTo(expected, 5);
    // With alpha = 1 it is plain cross-entropy.
    expect(value(weightedCrossEntropy(z, tf.ones([2, 1]), y))).toBeCloseTo(value(crossEntropy(z, y)), 6);
    expect(value(crossEntropy(z, y))).toBeCloseTo((Math.log(1 + Math.exp(-1)) + Math.log(1 + Math.exp(-2))) / 2, 5);
  });

  it('passes gradients to alpha: a sample with a wrong label pushes its alpha down', () => {
    const z = tf.tensor2d([[2, 0], [2, 0]]);
    const y = tf.tensor2d([[1, 0], [0, 1]]); // first right, second wrong
    const g = tf.grad((a: tf.Tensor) => weightedCrossEntropy(z, a as tf.Tensor2D, y))(tf.tensor2d([[0.5], [0.5]]));
    const [gRight, gWrong] = Array.from(g.dataSync());
    expect(gRight!).toBeLessThan(0); // raising alpha lowers the loss of a confident right sample
    expect(gWrong!).toBeGreaterThan(0); // and raises it for a wrong one
  });
});

describe('rank regularization (Eq. 3)', () => {
  it('splits by sorted alpha, ties in batch order, and computes max(0, delta1 - (mean_H - mean_L))', () => {
    const a = [0.5, 0.9, 0.1, 0.5];
    const g = rankGroups(a, 0.5); // M = 2: 0.9 (index 1) and the first 0.5 (index 0)
    expect(Array.from(g.high)).toEqual([1, 1, 0, 0]);
    expect(Array.from(g.low)).toEqual([0, 0, 1, 1]);
    expect(g.gap).toBeCloseTo((0.5 + 0.9) / 2 - (0.1 + 0.5) / 2, 6); // 0.4
    const alpha = tf.tensor2d(a, [4, 1]);
    expect(value(rankRegularization(alpha, g, 0.15))).toBe(0); // margin met
    expect(value(rankRegularization(alpha, g, 0.5))).toBeCloseTo(0.1, 6);
    // Gradient where active: -1/M on the high group, +1/(N-M) on the low group.
    const grad = tf.grad((x: tf.Tensor) => rankRegularization(x as tf.Tensor2D, g, 0.5))(alpha);
    expect(Array.from(grad.dataSync()).map((v) => Number(v.toFixed(6)))).toEqual([-0.5, -0.5, 0.5, 0.5]);
  });

  it('puts pinned (trusted) samples in the high group whatever their alpha', () => {
    const g = rankGroups([0.9, 0.1, 0.5, 0.8], 0.5, [0, 1, 0, 0]);
    expect(Array.from(g.high)).toEqual([1, 1, 0, 0]);
    // More pinned samples than beta * N: all of them high, still one low.
    const h = rankGroups([0.9, 0.1, 0.2, 0.3], 0.25, [0, 1, 1, 1]);
    expect(Array.from(h.high)).toEqual([0, 1, 1, 1]);
    expect(h.nLow).toBe(1);
  });

  it('takes floor(beta * N) into the high group, at least one and at most N - 1', () => {
    const ten = Array.from({ length: 10 }, (_, i) => i / 10);
    expect(rankGroups(ten, 0.7).nHigh).toBe(7);
    expect(rankGroups([0.3, 0.3], 0.7).nHigh).toBe(1);
    expect(rankGroups([0.2, 0.3, 0.1], 0.99).nHigh).toBe(2);
    const allTied = rankGroups([0.4, 0.4, 0.4, 0.4, 0.4], 0.7);
    expect(Array.from(allTied.high)).toEqual([1, 1, 1, 0, 0]);
    expect(allTied.gap).toBeCloseTo(0, 6);
  });

  it('total loss is gamma * L_RR + (1 - gamma) * L_WCE', () => {
    expect(value(scnLoss(tf.scalar(0.2), tf.scalar(1.0), 0.5))).toBeCloseTo(0.6, 6);
    expect(value(scnLoss(tf.scalar(0.2), tf.scalar(1.0), 0.25))).toBeCloseTo(0.8, 6);
  });
});

describe('importance (Eq. 1)', () => {
  it('alpha = sigmoid(f·Wa + ba) per sample', () => {
    const f = tf.tensor2d([1, 2, 0, 0, -1, 3], [3, 2]);
    const alpha = selfAttentionImportance(f, tf.tensor2d([0.5, -1], [2, 1]), tf.tensor1d([0.25]));
    expect(alpha.shape).toEqual([3, 1]);
    const sig = (z: number) => 1 / (1 + Math.exp(-z));
    // f·Wa + ba = 0.5 - 2 + 0.25, 0 + 0.25, -0.5 - 3 + 0.25
    expect(Array.from(alpha.dataSync())).toEqual([-1.25, 0.25, -3.25].map((z) => expect.closeTo(sig(z), 6)));
  });

  it("is what the head's forward pass returns as alpha, on the head's own features", () => {
    const shape = { inputDim: 3, hidden: 0, classes: 2, attention: true };
    const head = new Head(shape, new Rng(5));
    const x = tf.tensor2d([0.3, -0.2, 1, 2, 0.5, -1], [2, 3]);
    const got = Array.from(head.forward(x).alpha!.dataSync());
    const want = Array.from(selfAttentionImportance(x, head.Wa as tf.Tensor2D, head.ba as tf.Tensor1D).dataSync());
    expect(got).toEqual(want.map((v) => expect.closeTo(v, 6)));
    expect(new Set(got.map((v) => v.toFixed(6))).size).toBe(2); // two samples, two different weights
    head.dispose();
  });
});

describe('relabeling (Eq. 4)', () => {
  const probs = [0.625, 0.375, 0, /* */ 0.25, 0.5, 0.25, /* */ 0.75, 0.125, 0.125];
  it('relabels to argmax only when P_max - P_given is strictly above delta2', () => {
    // Sample 0: given 1, P_max - P_given = 0.25 exactly. Sample 1: given 1 is the argmax. Sample 2: margin 0.625.
    const at = relabel(probs, [1, 1, 2], null, 0.25, 3);
    expect(Array.from(at.labels)).toEqual([1, 1, 0]);
    expect(at.changed).toBe(1);
    const below = relabel(probs, [1, 1, 2], null, 0.2, 3);
    expect(Array.from(below.labels)).toEqual([0, 1, 0]);
    expect(below.changed).toBe(2);
  });

  it('leaves samples outside the eligible (low-importance) group alone', () => {
    const r = relabel(probs, [1, 1, 2], [0, 1, 1], 0.2, 3);
    expect(Array.from(r.labels)).toEqual([1, 1, 0]);
  });

  it('proposeLabels: Eq. 4 once on the eligible rows, -1 where nothing is proposed; -Infinity proposes the prediction', () => {
    // Row 3 has no label (-1) and is not eligible: never read, never proposed.
    const p4 = [...probs, 0.1, 0.8, 0.1];
    expect(Array.from(proposeLabels(p4, [1, 1, 2, -1], [1, 1, 1, 0], 0.25, 3))).toEqual([-1, -1, 0, -1]);
    expect(Array.from(proposeLabels(p4, [1, 1, 2, -1], [1, 1, 1, 0], 0.2, 3))).toEqual([0, -1, 0, -1]);
    expect(Array.from(proposeLabels(p4, [2, 1, 2, -1], [1, 1, 0, 0], -Infinity, 3))).toEqual([0, -1, -1, -1]);
    // A prediction tied with the given label is not a proposal at any margin.
    expect(Array.from(proposeLabels([0.5, 0.5, 0], [1], [1], -Infinity, 3))).toEqual([0]);
    expect(Array.from(proposeLabels([0.5, 0.5, 0], [0], [1], -Infinity, 3))).toEqual([-1]);
  });

  it('argmax picks the most likely class of a row, the first one on ties', () => {
    expect([0, 1, 2].map((i) => argmax(probs, i, 3))).toEqual([0, 1, 0]);
    expect(argmax([0.2, 0.4, 0.4], 0, 3)).toBe(1);
  });
});

describe('head', () => {
  it('dense layer gradients with explicit transposes match tf.matMul', () => {
    const rng = new Rng(3);
    const x = tf.tensor2d(Array.from({ length: 12 }, () => rng.normal()), [3, 4]);
    const w = tf.tensor2d(Array.from({ length: 8 }, () => rng.normal()), [4, 2]);
    const f = (fn: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D) =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(fn(a as tf.Tensor2D, b as tf.Tensor2D))))([x, w]);
    const [gx1, gw1] = f(denseMatMul);
    const [gx2, gw2] = f((a, b) => tf.matMul(a, b));
    expect(Array.from(gx1!.dataSync())).toEqual(Array.from(gx2!.dataSync()).map((v) => expect.closeTo(v, 4)));
    expect(Array.from(gw1!.dataSync())).toEqual(Array.from(gw2!.dataSync()).map((v) => expect.closeTo(v, 4)));
  });

  it('is initialised from the seed alone and gives alpha in (0, 1)', () => {
    const shape = { inputDim: 4, hidden: 3, classes: 2, attention: true };
    const a = new Head(shape, new Rng(7));
    const b = new Head(shape, new Rng(7));
    expect(Array.from(a.W1!.dataSync())).toEqual(Array.from(b.W1!.dataSync()));
    const { logits, alpha } = a.forward(tf.ones([5, 4]));
    expect(logits.shape).toEqual([5, 2]);
    const av = Array.from(alpha!.dataSync());
    expect(av.every((v) => v > 0 && v < 1)).toBe(true);
    a.dispose();
    b.dispose();
  });
});
