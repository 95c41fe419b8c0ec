import sharp from 'sharp';
import { FerCleanError } from '../errors.js';

/**
 * Settings for decoding many small images: one libvips thread per image (parallelism comes from decoding
 * several images at once) and no operation cache. Measured on 48x48 PNGs: 1.6 ms CPU per image against 2.4 ms
 * with sharp's defaults. Process-wide (libvips is shared), so called by embed runs only, not at import.
 */
export function tuneSharpForSmallImages(): void {
  sharp.concurrency(1);
  sharp.cache(false);
}

/**
 * Decodes an image file into the RGB square a face-api network expects (preprocessing revision prep1):
 * EXIF auto-rotation, padding to a centred square with black (face-api's padToSquare), bilinear resize to
 * `size` x `size`, grayscale replicated to three channels, alpha dropped. Returns size*size*3 bytes, 0..255.
 * A file that cannot be decoded is a FerCleanError naming it.
 */
export async function loadFaceRgb(path: string, size: number): Promise<Uint8Array> {
  try {
    const { data, info } = await sharp(path, { failOn: 'error' })
      .rotate()
      .removeAlpha()
      .resize(size, size, { fit: 'contain', position: 'centre', background: { r: 0, g: 0, b: 0 }, kernel: 'linear' })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.width !== size || info.height !== size || info.channels !== 3) {
      throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}, expected ${size}x${size}x3`);
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    throw new FerCleanError(`${path}: cannot decode image (${msg})`);
  }
}
