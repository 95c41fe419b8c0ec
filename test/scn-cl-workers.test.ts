import { describe, expect, it } from 'vitest';
import { confidentLearning as fromSources } from '../src/scn/cl.js';
import { Rng } from '../src/scn/prng.js';
import type { HeadOptions, TrainData } from '../src/scn/train.js';

// The worker script exists only in dist/ (npm ci builds it); from the sources confident learning runs in this thread.
const compiled = (await import(['..', 'dist', 'src', 'scn/cl.js'].join('/'))) as typeof import('../src/scn/cl.js');

/** Four noisy Gaussian clusters; rows 0..399 train (20% of their labels flipped), 400..499 the others. */
function data(): TrainData {
  const rng = new Rng(7);
  const n = 500;
  const dim = 6;
  const C = 4;
  const centers = Array.from({ length: C }, () => Array.from({ length: dim }, () => rng.normal() * 2));
  const features = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % C;
    labels[i] = i < 400 && rng.next() < 0.2 ? (c + 1 + rng.int(C - 1)) % C : c;
    for (let j = 0; j < dim; j++) features[i * dim + j] = centers[c]![j]! + rng.normal();
  }
  return {
    features,
    dim,
    classes: C,
    labels,
    train: Array.from({ length: 400 }, (_, i) => i),
    valid: Array.from({ length: 100 }, (_, i) => 400 + i),
  };
}

const head: HeadOptions = { hidden: 16, dropout: 0.3, lr: 0.01, lrDecay: 0.95, weightDecay: 1e-4, batchSize: 32, epochs: 4, standardize: true, seed: 5 };

describe('confident learning on worker threads', () => {
  it('gives the same probabilities, issues and epochs as one fold after the other in this thread', async () => {
    const d = data();
    const here = await compiled.confidentLearning(d, head, 5, undefined, undefined, { workers: 0 });
    const seen: number[] = [];
    const threads = await compiled.confidentLearning(d, head, 5, (f) => seen.push(f), undefined, { workers: 2 });
    expect(here.workers).toBe(0);
    expect(threads.workers).toBe(2);
    expect(Array.from(threads.probs)).toEqual(Array.from(here.probs));
    expect(Array.from(threads.issues)).toEqual(Array.from(here.issues));
    expect(here.issues.reduce((a, b) => a + b, 0)).toBeGreaterThan(10); // something to compare
    expect(threads.epochs.map((e) => e.valAccuracy)).toEqual(here.epochs.map((e) => e.valAccuracy)); // in fold order
    expect(seen.sort()).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4]);
    // From the sources (no worker script) the same, in this thread.
    const src = await fromSources(d, head, 5, undefined, undefined, { workers: 2 });
    expect(src.workers).toBe(0);
    expect(Array.from(src.issues)).toEqual(Array.from(here.issues));
  });

  it('trains in this thread on the tfjs engine (a worker has no tfjs backend), with the same issues to rounding', async () => {
    const d = data();
    const engines = (await import(['..', 'dist', 'src', 'scn/engine.js'].join('/'))) as typeof import('../src/scn/engine.js');
    const threads = await compiled.confidentLearning(d, head, 5, undefined, undefined, { workers: 2 });
    const tfjs = await compiled.confidentLearning(d, head, 5, undefined, undefined, { workers: 2, engine: engines.tfjsHeadEngine });
    expect(tfjs.workers).toBe(0);
    let worst = 0;
    tfjs.probs.forEach((p, k) => (worst = Math.max(worst, Math.abs(p - threads.probs[k]!))));
    expect(worst).toBeLessThan(1e-3);
  });

  it('stops with the signal\'s reason when aborted while the workers train', async () => {
    const controller = new AbortController();
    const reason = new Error('stop now');
    let epochs = 0;
    const run = compiled.confidentLearning(data(), { ...head, epochs: 200 }, 5, () => {
      if (++epochs === 3) controller.abort(reason);
    }, controller.signal, { workers: 2 });
    await expect(run).rejects.toBe(reason);
  });
});
