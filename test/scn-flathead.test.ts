import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../src/features/backend.js';
import { FlatAdam, headGradients, headLayout, headOutputs, initHead, type HeadLayout } from '../src/scn/flathead.js';
import { crossEntropyObjective, importanceOf, rankGroups, scnObjective, type Objective } from '../src/scn/losses.js';
import { crossEntropy, rankRegularization, scnLoss, weightedCrossEntropy } from './oracle/losses-tf.js';
import { Head, type HeadShape } from './oracle/head.js';
import { Rng } from '../src/scn/prng.js';
import { dropoutMask } from '../src/scn/train.js';

beforeAll(async () => {
  await initBackend('auto');
});

/** The tfjs head's parameters in the flat layout (Wc and Wa side by side in W2). */
function flatten(head: Head, L: HeadLayout): Float32Array {
  const theta = new Float32Array(L.size);
  const put = (v: tf.Tensor | null, at: (k: number) => number): void => {
    if (v) (v.dataSync() as Float32Array).forEach((x, k) => (theta[at(k)] = x));
  };
  put(head.W1, (k) => L.W1 + k);
  put(head.b1, (k) => L.b1 + k);
  put(head.Wc, (k) => L.W2 + Math.floor(k / L.C) * L.K + (k % L.C));
  put(head.bc, (k) => L.b2 + k);
  put(head.Wa, (k) => L.W2 + k * L.K + L.C);
  put(head.ba, (k) => L.b2 + L.C);
  return theta;
}

/** A random batch: features, a dropout mask (0 or 2) and labels. */
function batch(n: number, L: HeadLayout, seed: number): { X: Float32Array; XT: Float32Array; mask: Float32Array; y: Int32Array } {
  const rng = new Rng(seed);
  const X = Float32Array.from({ length: n * L.D }, () => rng.normal());
  const XT = new Float32Array(n * L.D);
  for (let i = 0; i < n; i++) for (let j = 0; j < L.D; j++) XT[j * n + i] = X[i * L.D + j]!;
  const mask = Float32Array.from({ length: n * L.F }, () => (rng.next() < 0.3 ? 0 : 2));
  const y = Int32Array.from({ length: n }, () => rng.int(L.C));
  return { X, XT, mask, y };
}

/**
 * Gradients of the written-out backward pass against tf.variableGrads of the oracle's Head (test/oracle/head.ts) with the tfjs losses
 * (Eq. 2, Eq. 3 and their weighting), on the same parameters, batch and dropout mask.
 */
function compare(shape: HeadShape, o: { beta: number; delta1: number; gamma: number }): { gap: number } {
  const head = new Head(shape, new Rng(11));
  const L = headLayout(shape);
  const theta = initHead(shape, new Rng(11));
  expect(Array.from(theta)).toEqual(Array.from(flatten(head, L))); // same initial values from the same seed
  // Move the biases off zero so that their gradients and the ReLU's kink are exercised.
  const rb = new Rng(5);
  for (const v of [head.b1, head.bc, head.ba]) v?.assign(tf.tensor(Array.from({ length: v.size }, () => rb.normal() * 0.3), v.shape));
  const thetaB = flatten(head, L);
  const n = 9;
  const { X, XT, mask, y } = batch(n, L, 3);
  const ref = tf.variableGrads(() => {
    const { logits, alpha } = head.forward(tf.tensor2d(X, [n, L.D]), tf.tensor2d(mask, [n, L.F]));
    const yh = tf.oneHot(tf.tensor1d(y, 'int32'), L.C) as tf.Tensor2D;
    if (!alpha) return crossEntropy(logits, yh);
    const g = rankGroups(alpha.dataSync(), o.beta);
    return scnLoss(rankRegularization(alpha, g, o.delta1), weightedCrossEntropy(logits, alpha, yh), o.gamma);
  }, head.variables);
  const want = flatten(
    Object.assign(Object.create(Head.prototype) as Head, {
      W1: ref.grads[head.W1?.name ?? ''] ?? null,
      b1: ref.grads[head.b1?.name ?? ''] ?? null,
      Wc: ref.grads[head.Wc.name],
      bc: ref.grads[head.bc.name],
      Wa: ref.grads[head.Wa?.name ?? ''] ?? null,
      ba: ref.grads[head.ba?.name ?? ''] ?? null,
    }),
    L,
  );
  const grad = new Float32Array(L.size).fill(NaN);
  let obj: Objective | null = null;
  let gap = 0;
  headGradients(thetaB, L, { n, X, XT, mask }, (out) => {
    if (!shape.attention) obj = crossEntropyObjective(out, L.C, y);
    else {
      const g = rankGroups(importanceOf(out, L.C), o.beta);
      gap = g.gap;
      obj = scnObjective(out, L.C, y, g, o);
    }
    return obj.dout;
  }, grad);
  expect((obj as unknown as Objective).loss).toBeCloseTo(ref.value.dataSync()[0]!, 5);
  const scale = Math.max(...want.map(Math.abs));
  expect(scale).toBeGreaterThan(1e-3);
  grad.forEach((g, k) => expect(Math.abs(g - want[k]!), `parameter ${k}`).toBeLessThan(1e-5 * Math.max(1, scale)));
  head.dispose();
  tf.dispose([ref.value, ...Object.values(ref.grads)]);
  return { gap };
}

describe('written-out head (flat parameters, analytic backward)', () => {
  it('scn gradients equal tfjs autograd, rank regularization active (hidden layer)', () => {
    const { gap } = compare({ inputDim: 6, hidden: 5, classes: 4, attention: true }, { beta: 0.7, delta1: 0.9, gamma: 0.5 });
    expect(gap).toBeLessThan(0.9); // the margin is unmet: L_RR contributes to the gradient
  });

  it('scn gradients equal tfjs autograd, rank regularization inactive, other gamma (hidden layer)', () => {
    const { gap } = compare({ inputDim: 6, hidden: 5, classes: 4, attention: true }, { beta: 0.7, delta1: -1, gamma: 0.3 });
    expect(gap).toBeGreaterThan(-1);
  });

  it('scn gradients equal tfjs autograd on a linear head (--hidden 0: f = dropout(x))', () => {
    compare({ inputDim: 6, hidden: 0, classes: 3, attention: true }, { beta: 0.5, delta1: 0.9, gamma: 0.5 });
  });

  it('ce gradients equal tfjs autograd', () => {
    compare({ inputDim: 5, hidden: 4, classes: 3, attention: false }, { beta: 0.7, delta1: 0.15, gamma: 0.5 });
  });

  it("evaluation outputs equal the tfjs head's logits and Eq. 1 pre-activation", () => {
    const shape = { inputDim: 6, hidden: 5, classes: 4, attention: true };
    const head = new Head(shape, new Rng(2));
    const L = headLayout(shape);
    const { X } = batch(7, L, 9);
    const out = headOutputs(initHead(shape, new Rng(2)), L, X, 7);
    const { logits, alpha } = head.forward(tf.tensor2d(X, [7, 6]));
    const z = logits.dataSync();
    const a = alpha!.dataSync();
    for (let i = 0; i < 7; i++) {
      for (let c = 0; c < 4; c++) expect(out[i * 5 + c]).toBeCloseTo(z[i * 4 + c]!, 5);
      expect(importanceOf(out, 4)[i]).toBeCloseTo(a[i]!, 6);
    }
    head.dispose();
  });
});

describe('fused Adam on the flat buffer', () => {
  it('first step moves each parameter by lr against the sign of its decayed gradient; later steps use the moments', () => {
    const theta = Float32Array.from([1, -2, 0.5]);
    const grad = Float32Array.from([0.3, 0.1, -0.2]);
    const adam = new FlatAdam(3, { weightDecay: 0.1 });
    adam.step(theta, grad, 0.01);
    // g = grad + 0.1 * theta = [0.4, -0.1, -0.15]: mhat = g, vhat = g^2, so the step is lr * g / (|g| + eps).
    expect(Array.from(theta)).toEqual([0.99, -1.99, 0.51].map((v) => expect.closeTo(v, 6)));
    // Second step by hand: m = 0.9 m1 + 0.1 g2, v = 0.999 v1 + 0.001 g2^2, bias corrections 1 - 0.9^2, 1 - 0.999^2.
    const g1 = 0.4;
    const g2 = 0.3 + 0.1 * 0.99;
    const m = 0.9 * 0.1 * g1 + 0.1 * g2;
    const v = 0.999 * 0.001 * g1 * g1 + 0.001 * g2 * g2;
    adam.step(theta, grad, 0.01);
    expect(theta[0]).toBeCloseTo(0.99 - (0.01 * (m / (1 - 0.81))) / (Math.sqrt(v / (1 - 0.999 ** 2)) + 1e-8), 6);
  });
});

describe('dropout masks', () => {
  it('drop the asked fraction, scale the kept entries by 1/(1 - rate), and repeat for the same seed', () => {
    for (const rate of [0.5, 0.25, 0.3]) {
      const m = dropoutMask(new Rng(4), 40001, rate);
      const dropped = m.filter((v) => v === 0).length / m.length;
      expect(Math.abs(dropped - rate)).toBeLessThan(0.01);
      expect(m.every((v) => v === 0 || Math.abs(v - 1 / (1 - rate)) < 1e-6)).toBe(true);
      expect(Array.from(dropoutMask(new Rng(4), 40001, rate))).toEqual(Array.from(m));
    }
    // Neighbouring entries are independent: with rate 0.5 each pair pattern is about as frequent as the others.
    const m = dropoutMask(new Rng(9), 40000, 0.5);
    const pairs = [0, 0, 0, 0];
    for (let i = 0; i < m.length; i += 2) pairs[(m[i]! > 0 ? 2 : 0) + (m[i + 1]! > 0 ? 1 : 0)]!++;
    for (const c of pairs) expect(Math.abs(c / 20000 - 0.25)).toBeLessThan(0.02);
  });
});
