import { tf } from './backend.js';

export type { FaceBox, FaceSource } from './facebox.js';

/**
 * Preprocessing revision `prep2`, face-api's own Node path for image tensors (NetInput.toBatchTensor):
 * 1. sharp: decode, EXIF auto-rotation, alpha dropped, sRGB (grayscale replicated to 3 channels), 8 bits;
 * 2. tfjs: zero-pad to a centred square (face-api padToSquare(x, true)), then tf.image.resizeBilinear to the
 *    network's size with alignCorners = false, halfPixelCenters = false, as face-api does.
 * The mean subtraction and scaling belong to the networks (nets.ts).
 */

export type { RgbImage } from './facebox.js';
import type { RgbImage } from './facebox.js';
export { decodeRgb, tuneSharpForSmallImages } from './decode.js';

/** face-api padToSquare(x, isCenterImage = true): zeros after the image along the short side, the rest before. */
function padToSquare(x: tf.Tensor4D): tf.Tensor4D {
  const [, h, w] = x.shape;
  if (h === w) return x;
  const diff = Math.abs(h - w);
  const after = Math.round(diff * 0.5);
  const before = diff - after;
  return h > w
    ? tf.pad(x, [[0, 0], [0, 0], [before, after], [0, 0]])
    : tf.pad(x, [[0, 0], [before, after], [0, 0], [0, 0]]);
}

/** Square RGB batch [n, size, size, 3] (float32, 0..255) from decoded images; call inside tf.tidy. */
export function toInputBatch(images: readonly RgbImage[], size: number): tf.Tensor4D {
  const square = (x: tf.Tensor4D): tf.Tensor4D => {
    const sq = padToSquare(tf.cast(x, 'float32'));
    return sq.shape[1] === size ? sq : tf.image.resizeBilinear(sq, [size, size], false, false);
  };
  const first = images[0]!;
  if (images.every((im) => im.width === first.width && im.height === first.height)) {
    // the usual case (one size per dataset): one batched op each
    const bytes = new Int32Array(images.length * first.data.length);
    images.forEach((im, i) => bytes.set(im.data, i * first.data.length));
    return square(tf.tensor4d(bytes, [images.length, first.height, first.width, 3], 'int32'));
  }
  return tf.concat(images.map((im) => square(tf.tensor4d(Int32Array.from(im.data), [1, im.height, im.width, 3], 'int32'))));
}
