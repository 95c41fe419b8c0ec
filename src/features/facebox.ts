/**
 * Face boxes: where the face is inside an image file (AffectNet's annotated boxes, detected faces), stored in
 * images.crop_x, crop_y, crop_w, crop_h. No tfjs here: the review screen imports this at start-up.
 */

/** An image decoded at its own size: height x width x 3 bytes, RGB. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** A face box in an image's own pixels (after EXIF rotation): left, top, width, height. */
export interface FaceBox {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Where a face is: an image file and, when the face is not the whole image, its box (images.crop_*). */
export interface FaceSource {
  /** Absolute path of the image file. */
  file: string;
  box: FaceBox | null;
}

/** The stored box of an image row (images.crop_x, crop_y, crop_w, crop_h), or null when the image is the face. */
export function boxOfRow(r: { crop_x: number | null; crop_y: number | null; crop_w: number | null; crop_h: number | null }): FaceBox | null {
  if (r.crop_x === null || r.crop_y === null || r.crop_w === null || r.crop_h === null) return null;
  return { x: r.crop_x, y: r.crop_y, w: r.crop_w, h: r.crop_h };
}

/** Why a box cannot be cut from a width x height image (empty, not whole pixels, outside it), or null when it can. */
export function boxProblem(box: FaceBox, width: number, height: number): string | null {
  const { x, y, w, h } = box;
  const at = `(x ${x}, y ${y}, width ${w}, height ${h})`;
  if (![x, y, w, h].every(Number.isInteger)) return `${at} is not in whole pixels`;
  if (w <= 0 || h <= 0) return `${at} is empty`;
  if (x < 0 || y < 0) return `${at} starts outside the image (x and y must be 0 or more)`;
  if (x + w > width || y + h > height) return `${at} lies outside the ${width}x${height} image`;
  return null;
}

/** The pixels of `box` (checked with boxProblem first) out of an RGB image. */
export function cropRgb(image: RgbImage, box: FaceBox): RgbImage {
  const out = new Uint8Array(box.w * box.h * 3);
  for (let row = 0; row < box.h; row++) {
    const from = ((box.y + row) * image.width + box.x) * 3;
    out.set(image.data.subarray(from, from + box.w * 3), row * box.w * 3);
  }
  return { data: out, width: box.w, height: box.h };
}

/**
 * images.quality flags that make an image unusable: it is not embedded (embed says how many it left out), not
 * trained on, and listed by `ingest` and `report`.
 */
export const UNUSABLE_QUALITIES: readonly string[] = ['no-face', 'several-faces'];

/** SQL condition on an images row (alias `alias`) that holds for images that can be embedded and trained on. */
export const usableSql = (alias: string): string =>
  `(${alias}.quality IS NULL OR ${alias}.quality NOT IN (${UNUSABLE_QUALITIES.map((q) => `'${q}'`).join(', ')}))`;
