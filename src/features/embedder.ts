import { tf } from './backend.js';
import type { BackboneInfo } from './backbones.js';
import { loadNet, type Net } from './nets.js';
import { decodeRgb, toInputBatch, tuneSharpForSmallImages, type FaceSource, type RgbImage } from './preprocess.js';

/** Images of one batch, decoded at their own size. */
export interface DecodedBatch {
  images: RgbImage[];
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

  /** Decodes faces (whole files or their boxes) in parallel; the first one that fails rejects with a FerCleanError naming it. */
  async decode(faces: readonly FaceSource[]): Promise<DecodedBatch> {
    return { images: await Promise.all(faces.map((f) => decodeRgb(f.file, f.box))) };
  }

  /** Features of a decoded batch, row-major n x dim. */
  run(batch: DecodedBatch): Float32Array {
    const features = tf.tidy(() => this.net.features(toInputBatch(batch.images, this.info.inputSize)));
    try {
      return new Float32Array(features.dataSync()); // own copy: safe to transfer to another thread
    } finally {
      features.dispose();
    }
  }

  dispose(): void {
    this.net.dispose();
  }
}
