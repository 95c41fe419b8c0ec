/**
 * Pixel statistics of a face crop, for the image checks (too dark, too light, blurry, low information, not a face),
 * and the aligned pixel correlation that confirms a near-duplicate. Every face is looked at as a 48 x 48 grey image (FER2013's own size; a
 * larger crop is shrunk to it), so thresholds mean the same on every dataset.
 */
import sharp from 'sharp';
import { FerCleanError } from '../errors.js';
import type { FaceBox } from '../features/facebox.js';

/** Side of the grey image the statistics are taken on. */
export const STATS_SIDE = 48;

export interface PixelStats {
  /** Mean grey level, 0 (black) .. 1 (white). */
  brightness: number;
  /** Standard deviation of the grey levels, 0..0.5. */
  contrast: number;
  /** Shannon entropy of the 256-level histogram, in bits (0..8). A face has 6-7.5. */
  entropy: number;
  /** Detail: variance of the 4-neighbour Laplacian over the variance of the image (0 for a smooth ramp, about 20 for white noise). */
  detail: number;
  /** Mean correlation of each pixel with its right and lower neighbours (about 0.9 for a face, 0 for noise). */
  smoothness: number;
  /** Share of the variance that two grey levels explain (Otsu's between-class variance over the total): near 1 for ink on paper. */
  twoTone: number;
}

/** The face (its box, or the whole image) as STATS_SIDE x STATS_SIDE grey levels. A file that cannot be decoded is a FerCleanError naming it. */
export async function greyFace(file: string, box: FaceBox | null): Promise<Uint8Array> {
  try {
    let img = sharp(file, { failOn: 'error' }).rotate();
    if (box) img = img.extract({ left: box.x, top: box.y, width: box.w, height: box.h });
    const { data } = await img
      .removeAlpha()
      .greyscale()
      .resize(STATS_SIDE, STATS_SIDE, { fit: 'fill', kernel: 'linear' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    return new Uint8Array(data.buffer, data.byteOffset, STATS_SIDE * STATS_SIDE);
  } catch (e) {
    throw new FerCleanError(`${file}: cannot decode image (${(e as Error).message.split('\n')[0]})`);
  }
}

/** Statistics of a square grey image (row-major, side x side, 0..255). */
export function pixelStats(g: Uint8Array, side = STATS_SIDE): PixelStats {
  const n = side * side;
  const hist = new Float64Array(256);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    hist[g[k]!]!++;
    sum += g[k]!;
  }
  const mean = sum / n;
  let v = 0;
  for (let k = 0; k < n; k++) v += (g[k]! - mean) ** 2;
  v /= n;
  let entropy = 0;
  for (const h of hist) if (h > 0) entropy -= (h / n) * Math.log2(h / n);
  // Laplacian and lag-1 correlations on the interior
  let lapSum = 0;
  let lapSq = 0;
  let m = 0;
  let cov = 0;
  let pairs = 0;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const c = g[y * side + x]! - mean;
      if (x + 1 < side) {
        cov += c * (g[y * side + x + 1]! - mean);
        pairs++;
      }
      if (y + 1 < side) {
        cov += c * (g[(y + 1) * side + x]! - mean);
        pairs++;
      }
      if (x > 0 && y > 0 && x + 1 < side && y + 1 < side) {
        const l = 4 * g[y * side + x]! - g[y * side + x - 1]! - g[y * side + x + 1]! - g[(y - 1) * side + x]! - g[(y + 1) * side + x]!;
        lapSum += l;
        lapSq += l * l;
        m++;
      }
    }
  }
  const lapVar = lapSq / m - (lapSum / m) ** 2;
  // Otsu: the threshold that maximises the between-class variance
  let best = 0;
  let w0 = 0;
  let s0 = 0;
  for (let t = 0; t < 255; t++) {
    w0 += hist[t]!;
    s0 += t * hist[t]!;
    const w1 = n - w0;
    if (w0 === 0 || w1 === 0) continue;
    const between = ((w0 / n) * (w1 / n) * (s0 / w0 - (sum - s0) / w1) ** 2);
    if (between > best) best = between;
  }
  return {
    brightness: mean / 255,
    contrast: Math.sqrt(v) / 255,
    entropy,
    detail: v > 0 ? lapVar / v : 0,
    smoothness: v > 0 ? cov / pairs / v : 1,
    twoTone: v > 0 ? best / v : 1,
  };
}

/** A square grey image (side x side) shrunk to `to` x `to` by box averages (side a multiple of `to`). */
export function shrink(g: ArrayLike<number>, side: number, to: number): Float32Array {
  const f = side / to;
  const v = new Float32Array(to * to);
  for (let y = 0; y < to; y++) {
    for (let x = 0; x < to; x++) {
      let s = 0;
      for (let dy = 0; dy < f; dy++) for (let dx = 0; dx < f; dx++) s += g[(y * f + dy) * side + x * f + dx]!;
      v[y * to + x] = s / (f * f);
    }
  }
  return v;
}

/**
 * How alike two faces' pixels are, allowing a small shift: the largest Pearson correlation of the overlapping parts
 * of their grey images (S x S, S = sqrt(length): 48 from greyFace) over shifts of up to `maxShift` pixels each way.
 * A re-encoded or brightened copy gives 0.97 or more, a copy shifted by 1-2 px about 0.92-0.98; two photos of
 * different people with the same pose and expression up to about 0.92 (docs/QUALITY.md).
 */
export function alignedCorrelation(a: ArrayLike<number>, b: ArrayLike<number>, maxShift = 2): number {
  const S = Math.round(Math.sqrt(a.length));
  let best = -1;
  for (let sy = -maxShift; sy <= maxShift; sy++) {
    for (let sx = -maxShift; sx <= maxShift; sx++) {
      let n = 0;
      let sa = 0;
      let sb = 0;
      let saa = 0;
      let sbb = 0;
      let sab = 0;
      for (let y = Math.max(0, -sy); y < Math.min(S, S - sy); y++) {
        for (let x = Math.max(0, -sx); x < Math.min(S, S - sx); x++) {
          const p = a[y * S + x]!;
          const q = b[(y + sy) * S + x + sx]!;
          n++;
          sa += p;
          sb += q;
          saa += p * p;
          sbb += q * q;
          sab += p * q;
        }
      }
      const va = saa - (sa * sa) / n;
      const vb = sbb - (sb * sb) / n;
      const r = va > 0 && vb > 0 ? (sab - (sa * sb) / n) / Math.sqrt(va * vb) : va === vb ? 1 : 0;
      if (r > best) best = r;
    }
  }
  return best;
}
