import { describe, expect, it } from 'vitest';
import { confidentJoint, findLabelIssues, pruneCounts, roundPreservingSum } from '../src/scn/cl.js';

/**
 * Oracle: cleanlab 2.9.0 (filter.find_label_issues with its defaults, n_jobs=1; count.compute_confident_joint) run
 * once, outside the test suite, on the cases makeCase builds; its outputs are written below. The generator is
 * plain arithmetic, so Python read the very same numbers (dumped to JSON by this function).
 */
function makeCase(seed: number, N: number, C: number, skew: number): { labels: number[]; probs: number[] } {
  let s = seed >>> 0;
  const rnd = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const labels: number[] = [];
  const probs: number[] = [];
  for (let i = 0; i < N; i++) {
    // Skewed class frequencies; the last class has a single example (cleanlab then keeps it: min_examples_per_class).
    const truth = i === 0 ? C - 1 : Math.floor(rnd() ** skew * (C - 1));
    const y = rnd() < 0.25 ? Math.floor(rnd() * (C - 1)) : truth;
    const logits = Array.from({ length: C }, (_, c) => (c === truth ? 2.5 : 0) + 1.5 * rnd());
    const m = Math.max(...logits);
    const e = logits.map((v) => Math.exp(v - m));
    const z = e.reduce((a, b) => a + b, 0);
    labels.push(y);
    probs.push(...e.map((v) => Math.round((v / z) * 1e4) / 1e4));
  }
  return { labels, probs };
}

const CLEANLAB: { seed: number; N: number; C: number; skew: number; cj: number[][]; flagged: number[] }[] = [
  { seed: 1, N: 400, C: 7, skew: 1.5, cj: [[93, 6, 5, 3, 3, 3, 0], [2, 56, 0, 4, 2, 4, 0], [9, 5, 50, 0, 5, 1, 0], [2, 2, 4, 45, 0, 3, 0], [1, 3, 3, 1, 30, 2, 0], [6, 2, 4, 2, 1, 38, 0], [0, 0, 0, 0, 0, 0, 0]], flagged: [6, 11, 13, 16, 17, 20, 21, 34, 36, 41, 43, 52, 63, 64, 65, 68, 75, 96, 106, 107, 114, 121, 122, 128, 131, 136, 140, 142, 143, 162, 164, 167, 176, 183, 187, 191, 203, 204, 209, 211, 224, 227, 228, 229, 231, 236, 243, 248, 254, 255, 265, 268, 269, 280, 281, 286, 290, 292, 294, 299, 303, 304, 305, 315, 318, 319, 320, 321, 322, 324, 329, 331, 332, 337, 341, 360, 362, 373, 377, 381, 396] },
  { seed: 2, N: 250, C: 5, skew: 2, cj: [[97, 6, 3, 3, 0], [7, 40, 0, 2, 0], [9, 3, 44, 1, 0], [5, 1, 3, 26, 0], [0, 0, 0, 0, 0]], flagged: [22, 27, 29, 38, 40, 68, 71, 75, 79, 81, 88, 90, 93, 106, 109, 115, 120, 128, 135, 138, 144, 148, 149, 156, 161, 174, 177, 181, 199, 213, 220, 224, 229, 234, 235, 236, 240, 241] },
  { seed: 3, N: 60, C: 3, skew: 1, cj: [[21, 3, 0], [3, 33, 0], [0, 0, 0]], flagged: [0, 3, 18, 31, 39, 47] },
  { seed: 4, N: 1000, C: 8, skew: 1.2, cj: [[145, 14, 5, 5, 5, 2, 3, 0], [8, 123, 5, 8, 6, 8, 3, 0], [1, 7, 96, 1, 6, 4, 2, 0], [7, 6, 5, 122, 6, 5, 5, 0], [6, 5, 5, 2, 94, 5, 2, 0], [8, 7, 2, 8, 7, 105, 2, 0], [6, 8, 6, 4, 4, 3, 98, 0], [0, 0, 0, 0, 0, 0, 0, 0]], flagged: [6, 10, 20, 24, 31, 55, 59, 60, 62, 64, 65, 67, 74, 79, 92, 97, 100, 104, 105, 109, 115, 122, 132, 133, 141, 146, 156, 157, 163, 167, 169, 170, 172, 176, 177, 180, 187, 193, 197, 203, 204, 209, 210, 216, 218, 223, 225, 226, 234, 236, 239, 259, 263, 268, 274, 281, 283, 285, 287, 288, 303, 320, 321, 323, 326, 328, 329, 337, 344, 345, 364, 368, 370, 373, 381, 409, 412, 416, 420, 425, 426, 428, 429, 431, 434, 436, 444, 447, 458, 460, 461, 462, 471, 477, 479, 484, 490, 501, 502, 503, 505, 507, 521, 522, 527, 535, 537, 542, 546, 547, 548, 549, 553, 554, 555, 560, 561, 562, 564, 566, 575, 576, 579, 585, 587, 591, 593, 594, 600, 604, 609, 615, 617, 622, 628, 631, 632, 636, 637, 645, 647, 649, 653, 655, 656, 658, 660, 662, 663, 665, 666, 681, 682, 683, 686, 687, 690, 691, 695, 702, 724, 727, 739, 745, 746, 761, 763, 766, 771, 773, 776, 780, 783, 784, 791, 793, 798, 801, 805, 813, 827, 837, 840, 850, 867, 876, 877, 880, 896, 914, 915, 917, 938, 941, 942, 945, 946, 950, 954, 956, 962, 971, 979, 981, 986, 991] },
];

describe("confident learning matches cleanlab's find_label_issues (prune_by_noise_rate)", () => {
  it.each(CLEANLAB)('case seed $seed: $N examples, $C classes', ({ seed, N, C, skew, cj, flagged }) => {
    const { labels, probs } = makeCase(seed, N, C, skew);
    expect(confidentJoint(labels, probs, C)).toEqual(cj);
    const mask = findLabelIssues(labels, probs, C);
    expect([...mask].flatMap((v, i) => (v ? [i] : []))).toEqual(flagged);
  });

  it('rounds keeping the sum as cleanlab does (outputs of its round_preserving_sum on the same rows)', () => {
    expect(roundPreservingSum([0.5, 1.5, 2.5])).toEqual([0, 2, 2]); // sum 4.5 -> 4 (half to even): no change needed
    expect(roundPreservingSum([0.4, 0.4, 0.4, 0.8])).toEqual([0, 0, 1, 1]); // 2.0: [0,0,0,1] + 1 to the most rounded-down (ties: last first)
    expect(roundPreservingSum([1.6, 1.6, 0.8])).toEqual([1, 2, 1]); // 4.0: [2,2,1] - 1 from the most rounded-up (ties: first)
  });

  it('keeps at least one example per given class: a diagonal of 0 is raised to 1 and its column lowered (as _keep_at_least_n_per_class)', () => {
    // Given class 1 has 2 examples, both confidently class 0: prune counts column 1 = (true 0: 2, true 1: 0) -> (1, 1).
    expect(pruneCounts([[3, 0], [2, 0]])).toEqual([[3, 1], [0, 1]]);
  });
});
