import { describe, expect, it } from 'vitest';
import { calibrateOnHeldOut, fitTemperature, MIN_CALIBRATION_ROWS, temperatureNll, temperatureScale } from '../src/scn/calibrate.js';
import { argmax } from '../src/scn/argmax.js';
import { Rng } from '../src/scn/prng.js';

/** n rows of C logits drawn N(0, spread^2), and labels drawn from softmax(z / T0): data whose best temperature is T0. */
function synthetic(n: number, C: number, T0: number, seed: number, spread = 4): { z: Float32Array; y: Int32Array } {
  const rng = new Rng(seed);
  const z = Float32Array.from({ length: n * C }, () => spread * rng.normal());
  const p = temperatureScale(z, C, T0);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let u = rng.next();
    let k = 0;
    while (k < C - 1 && (u -= p[i * C + k]!) > 0) k++;
    y[i] = k;
  }
  return { z, y };
}

describe('temperatureScale: softmax(z / T) (Guo et al. 2017, Sec. 4.2)', () => {
  it('is the softmax at T = 1, on hand-computed values', () => {
    const p = temperatureScale([0, Math.log(3), 5, 5], 2, 1);
    expect(p[0]).toBeCloseTo(0.25, 6);
    expect(p[1]).toBeCloseTo(0.75, 6);
    expect(Array.from(p.subarray(2))).toEqual([0.5, 0.5]);
  });

  it('T = 2 halves the logits: [0, 2 ln 3] gives [1/4, 3/4]', () => {
    const p = temperatureScale([0, 2 * Math.log(3)], 2, 2);
    expect(p[0]).toBeCloseTo(0.25, 6);
  });

  it('keeps every row summing to 1 and its argmax, and does not saturate where the plain softmax does', () => {
    const z = Float32Array.from([0, 40, 1, 80, 79.9, -30]);
    const plain = temperatureScale(z, 3, 1);
    const warm = temperatureScale(z, 3, 10);
    for (let r = 0; r < 2; r++) {
      expect(warm[r * 3]! + warm[r * 3 + 1]! + warm[r * 3 + 2]!).toBeCloseTo(1, 6);
      expect(argmax(warm, r, 3)).toBe(argmax(plain, r, 3));
    }
    expect(plain[1]).toBe(1); // float32 rounds e^-39 away: saturated
    expect(warm[1]).toBeLessThan(0.98);
    expect(warm[1]! - warm[0]!).not.toBe(warm[4]! - warm[5]!);
  });

  it('rejects a temperature that is not a finite positive number, and ragged rows', () => {
    expect(() => temperatureScale([1, 2], 2, 0)).toThrow(/T must be/);
    expect(() => temperatureScale([1, 2], 2, Number.NaN)).toThrow(/T must be/);
    expect(() => temperatureScale([1, 2, 3], 2, 1)).toThrow(/not rows of 2/);
  });
});

describe('fitTemperature', () => {
  it('finds the temperature the labels were drawn with', () => {
    for (const T0 of [0.5, 1, 3]) {
      const { z, y } = synthetic(4000, 5, T0, 7);
      const rows = Array.from({ length: 4000 }, (_, i) => i);
      const t = fitTemperature(z, 5, y, rows);
      expect(t.T).toBeGreaterThan(T0 * 0.9);
      expect(t.T).toBeLessThan(T0 * 1.1);
      expect(t.rows).toBe(4000);
      expect(t.nllAfter).toBeLessThanOrEqual(t.nllBefore);
    }
  });

  it('is the minimum of the held-out NLL: any other T does worse', () => {
    const { z, y } = synthetic(1000, 4, 2.5, 3);
    const rows = Array.from({ length: 500 }, (_, i) => 2 * i); // every other row only
    const t = fitTemperature(z, 4, y, rows);
    expect(t.nllAfter).toBeCloseTo(temperatureNll(z, 4, y, rows, t.T), 12);
    for (const f of [0.8, 0.95, 1.05, 1.25]) expect(temperatureNll(z, 4, y, rows, t.T * f)).toBeGreaterThan(t.nllAfter);
    expect(t.nllBefore).toBeCloseTo(temperatureNll(z, 4, y, rows, 1), 12);
  });

  it('rejects no rows and a row without a valid label', () => {
    expect(() => fitTemperature([0, 1], 2, [0], [])).toThrow(/no rows/);
    expect(() => fitTemperature([0, 1, 1, 0], 2, [0, -1], [0, 1])).toThrow(/row 1 has label -1/);
  });
});

describe('calibrateOnHeldOut', () => {
  it('fits on the labelled held-out rows only and calibrates every row', () => {
    const { z, y } = synthetic(600, 3, 3, 11);
    const labels = Int32Array.from(y);
    const held = Array.from({ length: 300 }, (_, i) => 300 + i);
    labels[300] = -1; // unlabelled: not fitted on
    const { probs, temperature } = calibrateOnHeldOut(z, 3, labels, held);
    expect(temperature).not.toBeNull();
    expect(temperature!.rows).toBe(299);
    expect(temperature!.T).toBeGreaterThan(2);
    expect(probs).toEqual(temperatureScale(z, 3, temperature!.T));
  });

  it(`leaves the softmax as it is with fewer than ${MIN_CALIBRATION_ROWS} labelled held-out rows`, () => {
    const { z, y } = synthetic(100, 3, 3, 5);
    const { probs, temperature } = calibrateOnHeldOut(z, 3, y, Array.from({ length: MIN_CALIBRATION_ROWS - 1 }, (_, i) => i));
    expect(temperature).toBeNull();
    expect(probs).toEqual(temperatureScale(z, 3, 1));
  });
});
