import { tf } from './backend.js';
import type { BackboneInfo } from './backbones.js';
import { decodeFaces, tuneSharpForSmallImages, type DecodedBatch, type FaceEmbedder } from './decode.js';
import { loadNet, type Net } from './nets.js';
import { toInputBatch, type FaceSource } from './preprocess.js';

export type { DecodedBatch } from './decode.js';

/**
 * Runs one backbone on batches of image files with tfjs: decoding (sharp, off the JS thread) and inference (tfjs,
 * on the active backend) are separate steps so a caller can decode the next batch while this one runs.
 */
export class Embedder implements FaceEmbedder {
  private readonly net: Net;

  constructor(readonly info: BackboneInfo) {
    this.net = loadNet(info);
    tuneSharpForSmallImages();
  }

  decode(faces: readonly FaceSource[]): Promise<DecodedBatch> {
    return decodeFaces(faces);
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
