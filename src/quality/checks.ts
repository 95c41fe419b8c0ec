/**
 * The image checks that matter for faces, after CleanVision's (dark, light, blurry, low information) plus a
 * not-a-face check for data that ships already cropped (detection skipped): noise, flat, gradient and text-like
 * patterns. Each is a rule on PixelStats with a threshold; the thresholds were set on the whole shared FER data
 * (docs/QUALITY.md: what each one flags there) and on planted images (test/quality.test.ts).
 */
import type { PixelStats } from './pixels.js';

/** The quality flags a check can set, in the order they are listed. */
export const QUALITY_FLAGS = ['non-face', 'outlier', 'dark', 'light', 'blurry', 'low-information'] as const;
export type QualityFlag = (typeof QUALITY_FLAGS)[number];

export interface ImageCheckThresholds {
  /** dark: mean grey level below this (0..1). */
  dark: number;
  /** light: mean grey level above this. */
  light: number;
  /** blurry: Laplacian variance over image variance (PixelStats.detail) below this. */
  blurry: number;
  /** low-information: histogram entropy (bits) below this. */
  lowInformation: number;
  /** non-face (flat): grey-level standard deviation below this. */
  flat: number;
  /** non-face (noise): neighbour correlation (PixelStats.smoothness) below this. */
  noise: number;
  /** non-face (gradient): detail below this while the image is not flat: a smooth ramp, no edges at all. */
  gradient: number;
  /** non-face (text-like): entropy below this and detail above textDetail: few grey levels with many sharp edges. */
  textEntropy: number;
  textDetail: number;
}

/**
 * Defaults. On the 35,710 faces of the shared FER data: dark 0.11 flags the 12 darkest faces, light 0.88 the 12
 * lightest (overexposed photos and line drawings), blurry 0.08 the 11 blurriest, low-information 4.5 bits the 12
 * with fewest grey levels (cartoons, a warning sign); the non-face rules sit beyond every real face (the least
 * smooth face has correlation 0.54, the least detailed 0.027, the flattest a deviation of 0.036).
 */
export const DEFAULT_IMAGE_CHECKS: ImageCheckThresholds = {
  dark: 0.11,
  light: 0.88,
  blurry: 0.08,
  lowInformation: 4.5,
  flat: 0.02,
  noise: 0.3,
  gradient: 0.01,
  textEntropy: 3,
  textDetail: 1.5,
};

/** A flag an image got, the value it is about, and in words why. */
export interface FlagFinding {
  flag: QualityFlag;
  score: number;
  detail: string;
}

const f3 = (x: number): string => x.toFixed(3);

/** Why an image is not a face by its pixels alone, or null: flat, noise, gradient or text-like. */
export function nonFaceReason(s: PixelStats, t: ImageCheckThresholds = DEFAULT_IMAGE_CHECKS): FlagFinding | null {
  if (s.contrast < t.flat) return { flag: 'non-face', score: s.contrast, detail: `flat: grey-level deviation ${f3(s.contrast)} < ${t.flat}` };
  if (s.smoothness < t.noise) return { flag: 'non-face', score: s.smoothness, detail: `noise: neighbour correlation ${f3(s.smoothness)} < ${t.noise}` };
  if (s.detail < t.gradient) return { flag: 'non-face', score: s.detail, detail: `gradient: no edges (detail ${f3(s.detail)} < ${t.gradient})` };
  if (s.entropy < t.textEntropy && s.detail > t.textDetail) {
    return { flag: 'non-face', score: s.entropy, detail: `text-like: ${s.entropy.toFixed(2)} bits of grey levels with sharp edges (detail ${f3(s.detail)})` };
  }
  return null;
}

/** Every flag the pixel checks give an image (a non-face is not also called blurry, dark or low-information). */
export function imageFlags(s: PixelStats, t: ImageCheckThresholds = DEFAULT_IMAGE_CHECKS): FlagFinding[] {
  const nonFace = nonFaceReason(s, t);
  if (nonFace) return [nonFace];
  const out: FlagFinding[] = [];
  if (s.brightness < t.dark) out.push({ flag: 'dark', score: s.brightness, detail: `mean brightness ${f3(s.brightness)} < ${t.dark}` });
  if (s.brightness > t.light) out.push({ flag: 'light', score: s.brightness, detail: `mean brightness ${f3(s.brightness)} > ${t.light}` });
  if (s.detail < t.blurry) out.push({ flag: 'blurry', score: s.detail, detail: `detail ${f3(s.detail)} < ${t.blurry}` });
  if (s.entropy < t.lowInformation) out.push({ flag: 'low-information', score: s.entropy, detail: `${s.entropy.toFixed(2)} bits of grey levels < ${t.lowInformation}` });
  return out;
}
