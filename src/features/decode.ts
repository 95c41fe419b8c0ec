import sharp from 'sharp';
import { FerCleanError } from '../errors.js';
import { FileReadError, MAX_IMAGE_PIXELS, readChecked } from '../files.js';
import { boxProblem, cropRgb, type FaceBox, type FaceSource, type RgbImage } from './facebox.js';

/**
 * Decoding image files to RGB bytes with sharp. No tfjs here: the onnxruntime path (and its worker threads)
 * decodes without loading tfjs. preprocess.ts re-exports both functions.
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

/**
 * Decodes an image file to RGB at its own size, or only its face box when one is given. A file that cannot be
 * decoded, or a box outside the image, is a FerCleanError naming the file.
 */
export async function decodeRgb(path: string, box: FaceBox | null = null): Promise<RgbImage> {
  let image: RgbImage;
  try {
    // read through the checked open: an image replaced by a fifo or a device since ingest is refused, not waited on
    const { data, info } = await sharp(readChecked(path, 'image'), { failOn: 'error', limitInputPixels: MAX_IMAGE_PIXELS })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    image = { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (e) {
    const msg = e instanceof FileReadError ? e.reason : (e as Error).message.split('\n')[0];
    throw new FerCleanError(`${path}: cannot decode image (${msg})`);
  }
  if (!box) return image;
  const problem = boxProblem(box, image.width, image.height);
  if (problem) throw new FerCleanError(`${path}: face box ${problem}`);
  return cropRgb(image, box);
}

/** Decodes faces (whole files or their boxes) in parallel; the first one that fails rejects with a FerCleanError naming it. */
export async function decodeFaces(faces: readonly FaceSource[]): Promise<DecodedBatch> {
  return { images: await Promise.all(faces.map((f) => decodeRgb(f.file, f.box))) };
}

/** Images of one batch, decoded at their own size. */
export interface DecodedBatch {
  images: RgbImage[];
}

/**
 * One backbone on one inference engine (tfjs: embedder.ts, onnxruntime: onnx-embedder.ts): decoding and
 * inference are separate steps so a caller can decode the next batch while this one runs.
 */
export interface FaceEmbedder {
  /** Decodes faces (whole files or their boxes) in parallel; the first one that fails rejects with a FerCleanError naming it. */
  decode(faces: readonly FaceSource[]): Promise<DecodedBatch>;
  /** Features of a decoded batch, row-major n x dim, in a buffer of its own (safe to transfer to another thread). */
  run(batch: DecodedBatch): Float32Array | Promise<Float32Array>;
  /** Frees the network (weights, session); settles when they are freed. */
  dispose(): void | Promise<void>;
}
