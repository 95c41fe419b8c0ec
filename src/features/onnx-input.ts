import type { RgbImage } from './facebox.js';
import { MEAN_RGB } from './backbones.js';

/**
 * Preprocessing `prep2` in plain JavaScript for the onnxruntime path, the same arithmetic as preprocess.ts +
 * nets.ts normalize() do in tfjs: zero-pad to a centred square (face-api padToSquare(x, true)), bilinear resize
 * to the network's size with alignCorners = false and halfPixelCenters = false (tfjs resizeBilinear), then
 * (rgb - meanRgb) / 255, written channel-first (NCHW) for the ONNX graph.
 */

/** Source rows (or columns) and weights of a 1-D resize from `from` to `to` pixels, tfjs's resizeBilinear rule. */
interface Axis {
  lo: Int32Array;
  hi: Int32Array;
  frac: Float64Array;
}

const axes = new Map<string, Axis>();

function axis(from: number, to: number): Axis {
  const key = `${from}>${to}`;
  let a = axes.get(key);
  if (!a) {
    a = { lo: new Int32Array(to), hi: new Int32Array(to), frac: new Float64Array(to) };
    const ratio = from / to; // alignCorners false: effective sizes are the sizes themselves
    for (let i = 0; i < to; i++) {
      const src = ratio * i; // halfPixelCenters false
      const lo = Math.max(0, Math.floor(src));
      a.lo[i] = lo;
      a.hi[i] = Math.min(from - 1, Math.ceil(src));
      a.frac[i] = src - lo;
    }
    axes.set(key, a);
  }
  return a;
}

/**
 * Writes one face into `out` (a [N, 3, size, size] float32 batch) at position `index`. `image` is RGB bytes
 * at the image's own size.
 */
export function writeInput(image: RgbImage, size: number, out: Float32Array, index: number): void {
  const { width: w, height: h } = image;
  // padToSquare: the short side gets round(diff / 2) zero pixels after the image and the rest before
  const side = Math.max(w, h);
  let sq = image.data;
  if (w !== h) {
    const before = side - Math.min(w, h) - Math.round((side - Math.min(w, h)) * 0.5);
    sq = new Uint8Array(side * side * 3);
    const x0 = w < h ? before : 0;
    const y0 = h < w ? before : 0;
    for (let y = 0; y < h; y++) sq.set(image.data.subarray(y * w * 3, (y + 1) * w * 3), ((y + y0) * side + x0) * 3);
  }
  const plane = size * size;
  const r = index * 3 * plane;
  if (side === size) {
    for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) out[r + c * plane + i] = (sq[3 * i + c]! - MEAN_RGB[c]!) / 255;
    return;
  }
  // separable: each source row resized along x first, then rows blended along y (the same sums as tfjs's
  // top = tl + (tr - tl) * fx, bottom = bl + (br - bl) * fx, top + (bottom - top) * fy)
  const { lo, hi, frac } = axis(side, size);
  const across = new Float64Array(side * size);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < side; y++) {
      const src = y * side * 3 + c;
      const dst = y * size;
      for (let x = 0; x < size; x++) {
        const left = sq[src + lo[x]! * 3]!;
        across[dst + x] = left + (sq[src + hi[x]! * 3]! - left) * frac[x]!;
      }
    }
    const plane0 = r + c * plane;
    const mean = MEAN_RGB[c]!;
    for (let y = 0; y < size; y++) {
      const top = lo[y]! * size;
      const bottom = hi[y]! * size;
      const fy = frac[y]!;
      const o = plane0 + y * size;
      for (let x = 0; x < size; x++) {
        const t = across[top + x]!;
        out[o + x] = (t + (across[bottom + x]! - t) * fy - mean) / 255;
      }
    }
  }
}

/** A [n, 3, size, size] float32 batch of decoded faces. */
export function toNchwBatch(images: readonly RgbImage[], size: number): Float32Array {
  const out = new Float32Array(images.length * 3 * size * size);
  images.forEach((im, i) => writeInput(im, size, out, i));
  return out;
}
