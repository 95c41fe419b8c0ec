import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/features/backend.js';
import { chooseHeadEngine, tfjsHeadEngine, type HeadEngine } from '../src/scn/engine.js';
import { headLayout, initHead, type HeadLayout } from '../src/scn/flathead.js';
import { crossEntropyObjective, importanceOf, rankGroups, scnObjective } from '../src/scn/losses.js';
import type { HeadShape } from '../src/scn/flathead.js';
import { Rng } from '../src/scn/prng.js';
import { dropoutMask, trainHead, type TrainOptions } from '../src/scn/train.js';

// The tfjs engine is flathead.ts's headGradients / headOutputs, checked against tfjs autograd in
// scn-flathead.test.ts; the onnxruntime engine must compute the same values (to float32 rounding).
let ort: HeadEngine;
beforeAll(async () => {
  await initBackend('auto');
  ort = await chooseHeadEngine('onnxruntime');
});

/** Random parameters (biases off zero, so their gradients and the ReLU's kink are exercised) and a batch. */
function setup(shape: HeadShape, n: number, dropout: number, seed: number) {
  const L = headLayout(shape);
  const rng = new Rng(seed);
  const theta = initHead(shape, rng);
  for (let k = L.b1; k < L.W2; k++) theta[k] = rng.normal() * 0.3;
  for (let k = L.b2; k < L.size; k++) theta[k] = rng.normal() * 0.3;
  const X = Float32Array.from({ length: n * L.D }, () => rng.normal());
  const XT = new Float32Array(n * L.D);
  for (let i = 0; i < n; i++) for (let j = 0; j < L.D; j++) XT[j * n + i] = X[i * L.D + j]!;
  const mask = dropout > 0 ? dropoutMask(rng, n * L.F, dropout) : null;
  const y = Int32Array.from({ length: n }, () => rng.int(L.C));
  return { L, theta, batch: { n, X, XT, mask }, y };
}

async function gradientsOf(engine: HeadEngine, s: ReturnType<typeof setup>, attention: boolean): Promise<{ grad: Float32Array; loss: number }> {
  const { L, y } = s;
  const grad = new Float32Array(L.size).fill(NaN);
  let loss = NaN;
  await engine.gradients(s.theta, L, s.batch, (out) => {
    const obj = attention
      ? scnObjective(out, L.C, y, rankGroups(importanceOf(out, L.C), 0.7), { delta1: 0.9, gamma: 0.5 })
      : crossEntropyObjective(out, L.C, y);
    loss = obj.loss;
    return obj.dout;
  }, grad);
  return { grad, loss };
}

function expectClose(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length).toBe(want.length);
  const scale = Math.max(...want.map(Math.abs));
  expect(scale).toBeGreaterThan(1e-4);
  let worst = 0;
  let at = -1;
  got.forEach((g, k) => {
    const d = Number.isFinite(g) ? Math.abs(g - want[k]!) : Infinity;
    if (d > worst) [worst, at] = [d, k];
  });
  expect(worst, `${what}: largest difference at ${at}`).toBeLessThan(2e-5 * scale);
}

describe('onnxruntime head engine', () => {
  const cases: [string, HeadShape, number, number][] = [
    ['scn, default head (256 x 256), dropout 0.5', { inputDim: 256, hidden: 256, classes: 7, attention: true }, 256, 0.5],
    ['scn, hidden layer, no dropout, odd batch', { inputDim: 12, hidden: 9, classes: 4, attention: true }, 13, 0],
    ['scn, linear head (--hidden 0), dropout 0.3', { inputDim: 10, hidden: 0, classes: 3, attention: true }, 11, 0.3],
    ['ce, hidden layer, dropout 0.25', { inputDim: 8, hidden: 6, classes: 5, attention: false }, 7, 0.25],
  ];
  for (const [name, shape, n, dropout] of cases) {
    it(`gradients equal the tfjs engine's: ${name}`, async () => {
      const s = setup(shape, n, dropout, 3);
      const want = await gradientsOf(tfjsHeadEngine, s, shape.attention);
      const got = await gradientsOf(ort, s, shape.attention);
      expect(got.loss).toBeCloseTo(want.loss, 5);
      expectClose(got.grad, want.grad, name);
    });
  }

  it('evaluation outputs equal the tfjs engine on both heads', async () => {
    for (const shape of [
      { inputDim: 256, hidden: 256, classes: 7, attention: true },
      { inputDim: 6, hidden: 0, classes: 4, attention: false },
    ]) {
      const s = setup(shape, 300, 0, 8);
      const L: HeadLayout = s.L;
      expectClose(await ort.outputs(s.theta, L, s.batch.X, 300), await tfjsHeadEngine.outputs(s.theta, L, s.batch.X, 300), `outputs ${shape.hidden}`);
    }
  });
});

describe('trainHead on either engine', () => {
  it('trains the same head: probabilities and importance agree to rounding after a few epochs', async () => {
    const rng = new Rng(21);
    const n = 400;
    const dim = 10;
    const features = Float32Array.from({ length: n * dim }, () => rng.normal());
    // The class is the largest of the first three features (chance: 1/3).
    const labels = Int32Array.from({ length: n }, (_, i) => [0, 1, 2].reduce((m, c) => (features[i * dim + c]! > features[i * dim + m]! ? c : m), 0));
    const data = { features, dim, classes: 3, labels, train: Array.from({ length: 300 }, (_, i) => i), valid: Array.from({ length: 100 }, (_, i) => 300 + i) };
    const opts: TrainOptions = { method: 'scn', hidden: 16, dropout: 0.5, lr: 0.01, lrDecay: 0.95, weightDecay: 1e-4, batchSize: 64, epochs: 3, standardize: true, seed: 4, relabelEpoch: 2, importanceWindow: 2 };
    const a = await trainHead(data, { ...opts, engine: tfjsHeadEngine });
    const b = await trainHead(data, { ...opts, engine: ort });
    expect(b.epochs.at(-1)!.valAccuracy).toBeGreaterThan(0.55); // it learned something
    let worst = 0;
    a.probs.forEach((p, k) => (worst = Math.max(worst, Math.abs(p - b.probs[k]!))));
    expect(worst).toBeLessThan(1e-3);
    a.importanceMean!.forEach((v, k) => expect(Math.abs(v - b.importanceMean![k]!)).toBeLessThan(1e-3));
    expect(Array.from(b.trainedLabels)).toEqual(Array.from(a.trainedLabels));
  });
});
