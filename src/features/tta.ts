import type { DecodedBatch, FaceEmbedder } from './decode.js';
import type { FaceSource, RgbImage } from './facebox.js';

/**
 * Test-time augmentation of the frozen backbones. 'flip': a face's features are the mean of the network's features
 * of the face and of its horizontal mirror (faces are near-symmetric, expressions too, so the mean keeps the
 * expression and averages out what is not). 'none': the face alone. The two kinds are cached apart: a flip
 * embedding is stored under the backbone version with FLIP_SUFFIX appended (ttaVersion).
 */
export type Tta = 'none' | 'flip';
export const TTAS: readonly Tta[] = ['none', 'flip'];

/** What embed and train use when not told. */
export const DEFAULT_TTA: Tta = 'none';

/** Appended to the stored backbone_version of flip embeddings, e.g. face-api@1.7.15/prep2/flip. */
export const FLIP_SUFFIX = '/flip';

/** The backbone_version stored for embeddings made with this augmentation. */
export function ttaVersion(version: string, tta: Tta): string {
  return tta === 'flip' ? `${version}${FLIP_SUFFIX}` : version;
}

/** The image mirrored left to right (a new buffer; RGB, row-major). */
export function mirrorRgb(image: RgbImage): RgbImage {
  const { width: w, height: h, data } = image;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++) {
    const row = y * w * 3;
    for (let x = 0; x < w; x++) {
      const from = row + x * 3;
      const to = row + (w - 1 - x) * 3;
      out[to] = data[from]!;
      out[to + 1] = data[from + 1]!;
      out[to + 2] = data[from + 2]!;
    }
  }
  return { data: out, width: w, height: h };
}

/**
 * Rows i and n + i of a [2n, dim] feature matrix averaged into row i of a new [n, dim] one: the features of the
 * faces (first half) and of their mirrors (second half).
 */
export function meanOfHalves(features: Float32Array, n: number): Float32Array {
  if (n === 0) return new Float32Array(0);
  if (features.length % (2 * n) !== 0) throw new Error(`meanOfHalves: ${features.length} values are not 2 x ${n} rows`);
  const half = features.length / 2;
  const out = new Float32Array(half);
  for (let j = 0; j < half; j++) out[j] = (features[j]! + features[half + j]!) / 2;
  return out;
}

/** A backbone's embedder with flip TTA: each batch runs once with the faces and their mirrors together. */
export class FlipEmbedder implements FaceEmbedder {
  constructor(private readonly inner: FaceEmbedder) {}

  decode(faces: readonly FaceSource[]): Promise<DecodedBatch> {
    return this.inner.decode(faces);
  }

  async run(batch: DecodedBatch): Promise<Float32Array> {
    const n = batch.images.length;
    const both = await this.inner.run({ images: [...batch.images, ...batch.images.map(mirrorRgb)] });
    return meanOfHalves(both, n);
  }

  dispose(): void | Promise<void> {
    return this.inner.dispose();
  }
}

/** The embedder for this augmentation. */
export function withTta(embedder: FaceEmbedder, tta: Tta): FaceEmbedder {
  return tta === 'flip' ? new FlipEmbedder(embedder) : embedder;
}
