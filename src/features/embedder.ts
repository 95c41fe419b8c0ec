import { tf } from './backend.js';
import type { BackboneInfo } from './backbones.js';
import { loadNet, type Net } from './nets.js';
import { loadFaceRgb, tuneSharpForSmallImages } from './preprocess.js';

/** Images of one batch decoded to the network's input: n RGB squares, back to back. */
export interface DecodedBatch {
  n: number;
  pixels: Uint8Array;
}

/**
 * Runs one backbone on batches of image files: decoding (sharp, off the JS thread) and inference (tfjs, on the
 * active backend) are separate steps so a caller can decode the next batch while this one runs.
 */
export class Embedder {
  private readonly net: Net;

  constructor(readonly info: BackboneInfo) {
    this.net = loadNet(info);
    tuneSharpForSmallImages();
  }

  /** Decodes files in parallel; the first one that fails rejects with a FerCleanError naming it. */
  async decode(paths: readonly string[]): Promise<DecodedBatch> {
    const s = this.info.inputSize;
    const imgs = await Promise.all(paths.map((p) => loadFaceRgb(p, s)));
    const pixels = new Uint8Array(imgs.length * s * s * 3);
    imgs.forEach((img, i) => pixels.set(img, i * s * s * 3));
    return { n: imgs.length, pixels };
  }

  /** Features of a decoded batch, row-major n x dim. */
  run(batch: DecodedBatch): Float32Array {
    const s = this.info.inputSize;
    const features = tf.tidy(() => {
      const rgb = tf.tensor4d(Int32Array.from(batch.pixels), [batch.n, s, s, 3], 'int32');
      return this.net.features(rgb);
    });
    try {
      return new Float32Array(features.dataSync()); // own copy: safe to transfer to another thread
    } finally {
      features.dispose();
    }
  }

  async embed(paths: readonly string[]): Promise<Float32Array> {
    return this.run(await this.decode(paths));
  }

  dispose(): void {
    this.net.dispose();
  }
}
