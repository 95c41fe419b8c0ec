import { FerCleanError } from '../errors.js';
import { Rng } from './prng.js';

export type NoiseType = 'symmetric' | 'asymmetric';
export const NOISE_TYPES: readonly NoiseType[] = ['symmetric', 'asymmetric'];

/**
 * Class-dependent confusions for asymmetric noise, after the most frequent real confusions in FER2013 vs FER+
 * (sadness<->neutral, fear->surprise, anger<->disgust, happiness->surprise, contempt->disgust).
 */
export const CONFUSABLE: Readonly<Record<string, string>> = {
  anger: 'disgust',
  disgust: 'anger',
  fear: 'surprise',
  happiness: 'surprise',
  sadness: 'neutral',
  surprise: 'fear',
  neutral: 'sadness',
  contempt: 'disgust',
};

/** The class an asymmetric flip sends class `c` to: its confusable class, else the next class in the taxonomy. */
export function confusableClass(c: number, taxonomy: readonly string[]): number {
  const target = CONFUSABLE[taxonomy[c] ?? ''];
  const t = target === undefined ? -1 : taxonomy.indexOf(target);
  return t >= 0 && t !== c ? t : (c + 1) % taxonomy.length;
}

export interface Flip {
  /** Index into the label array. */
  index: number;
  original: number;
  noisy: number;
}

/**
 * Flips exactly round(rate * eligible.length) of the eligible labels, chosen by a seeded shuffle: symmetric noise
 * sends each to a uniformly drawn other class (as the SCN paper), asymmetric to its confusable class.
 * Returns a new label array and the flips; `labels` is not modified.
 */
export function injectNoise(
  labels: Int32Array,
  eligible: ArrayLike<number>,
  opts: { rate: number; type: NoiseType; taxonomy: readonly string[]; seed: number },
): { labels: Int32Array; flips: Flip[] } {
  const { rate, type, taxonomy } = opts;
  if (!(rate >= 0 && rate < 1)) throw new FerCleanError(`--noise ${rate}: expected a fraction in [0, 1)`);
  if (!NOISE_TYPES.includes(type)) throw new FerCleanError(`--noise-type ${type}: expected symmetric or asymmetric`);
  const C = taxonomy.length;
  if (C < 2) throw new FerCleanError('synthetic noise needs at least two classes');
  const rng = new Rng(opts.seed);
  const order = Array.from(eligible);
  rng.shuffle(order);
  const count = Math.round(rate * order.length);
  const out = Int32Array.from(labels);
  const flips: Flip[] = [];
  for (let k = 0; k < count; k++) {
    const index = order[k]!;
    const original = labels[index]!;
    let noisy: number;
    if (type === 'symmetric') {
      const r = rng.int(C - 1); // one of the C-1 other classes, uniformly
      noisy = r >= original ? r + 1 : r;
    } else {
      noisy = confusableClass(original, taxonomy);
    }
    out[index] = noisy;
    flips.push({ index, original, noisy });
  }
  flips.sort((a, b) => a.index - b.index);
  return { labels: out, flips };
}
