import sharp from 'sharp';
import { FerCleanError } from '../errors.js';
import { tf } from './backend.js';
import { boxProblem, cropRgb, type FaceBox } from './facebox.js';

export type { FaceBox, FaceSource } from './facebox.js';

/**
 * Preprocessing revision `prep2`, face-api's own Node path for image tensors (NetInput.toBatchTensor):
 * 1. sharp: decode, EXIF auto-rotation, alpha dropped, sRGB (grayscale replicated to 3 channels), 8 bits;
 * 2. tfjs: zero-pad to a centred square (face-api padToSquare(x, true)), then tf.image.resizeBilinear to the
 *    network's size with alignCorners = false, halfPixelCenters = false, as face-api does.
 * The mean subtraction and scaling belong to the networks (nets.ts).
 */

/**
 * Settings for decoding many small images: one libvips thread per image (parallelism comes from decoding
 * several images at once) and no operation cache. Process-wide (libvips is shared), so called by embed runs
 * only, not at import.
 */
export function tuneSharpForSmallImages(): void {
  sharp.concurrency(1);
  sharp.cache(false);
}

export type { RgbImage } from './facebox.js';
import type { RgbImage } from './facebox.js';

/**
 * Decodes an image file to RGB at its own size, or only its face box when one is given. A file that cannot be
 * decoded, or a box outside the image, is a FerCleanError naming the file.
 */
export async function decodeRgb(path: string, box: FaceBox | null = null): Promise<RgbImage> {
  let image: RgbImage;
  try {
    const { data, info } = await sharp(path, { failOn: 'error' })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    image = { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    throw new FerCleanError(`${path}: cannot decode image (${msg})`);
  }
  if (!box) return image;
  const problem = boxProblem(box, image.width, image.height);
  if (problem) throw new FerCleanError(`${path}: face box ${problem}`);
  return cropRgb(image, box);
}

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
