/**
 * Face detection and alignment for photos that are not already face crops, with the networks that ship in
 * @vladmandic/face-api (MIT): ssd_mobilenetv1 finds faces, face_landmark_68 places 68 landmarks on each, and the box
 * kept is face-api's landmark-aligned box (FaceLandmarks.align: the landmarks' extent, padded by 20%), made square
 * and clipped to the image. No rotation: images.crop_* holds an upright box. tfjs and face-api are loaded only when
 * a detector is created, so `ingest` of face crops does not pay for them.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import { FerCleanError } from '../errors.js';
import { FileReadError, MAX_IMAGE_PIXELS, readChecked } from '../files.js';
import type { BackendPreference } from './backend.js';
import type { FaceBox } from './facebox.js';

/** When `ingest --detect` looks for faces: auto (images that are not already tight face crops), always, never. */
export type DetectMode = 'auto' | 'always' | 'never';
export const DETECT_MODES: readonly DetectMode[] = ['auto', 'always', 'never'];

/** The `auto` rule: an image at most this many pixels on its longer side ... */
export const TIGHT_CROP_MAX_SIDE = 256;
/** ... and at most this much longer than wide (or wide than long) is taken to be a face crop already. */
export const TIGHT_CROP_MAX_ASPECT = 1.25;

/**
 * Whether `auto` takes a width x height image to be a face crop already (no detection): small and nearly square,
 * as face datasets ship their faces (FER2013 48x48, RAF-DB aligned 100x100, CK+ and AffectNet crops). Decided from
 * the stored size alone, so no file is read for it.
 */
export function isTightCrop(width: number, height: number): boolean {
  const long = Math.max(width, height);
  const short = Math.min(width, height);
  return long <= TIGHT_CROP_MAX_SIDE && short > 0 && long / short <= TIGHT_CROP_MAX_ASPECT;
}

/** Photos are shrunk to at most this side before detection (the detector works at 512x512 anyway). */
export const DETECT_MAX_SIDE = 1024;
/** When nothing is found, the second look pads the image by this share of its longer side on every side (close-ups). */
export const CLOSE_UP_PAD = 0.5;
/** Detections below this ssd_mobilenetv1 score are not faces. */
export const DEFAULT_MIN_SCORE = 0.5;

export interface DetectedFace {
  /** The landmark-aligned square box, in the image's own (EXIF-rotated) pixels, clipped to it. */
  box: FaceBox;
  /** ssd_mobilenetv1's confidence, 0..1. */
  score: number;
}

export interface Detection {
  width: number;
  height: number;
  /** Faces found, highest score first. */
  faces: DetectedFace[];
}

export interface FaceDetector {
  /** Finds the faces in an image file. An undecodable file is a FerCleanError naming it. */
  detect(file: string): Promise<Detection>;
}

type FaceApi = typeof import('@vladmandic/face-api');

let loaded: Promise<FaceApi> | undefined;

/** face-api's Node build for the wasm/cpu backends (it shares @tensorflow/tfjs, so the active backend, with us). */
function loadFaceApi(): Promise<FaceApi> {
  loaded ??= (async () => {
    const require = createRequire(import.meta.url);
    const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApi;
    const dir = join(dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
    try {
      await faceapi.nets.ssdMobilenetv1.loadFromDisk(dir);
      await faceapi.nets.faceLandmark68Net.loadFromDisk(dir);
    } catch (e) {
      loaded = undefined;
      throw new FerCleanError(`cannot load face-api's detector from ${dir} (${(e as Error).message.split('\n')[0]})`);
    }
    return faceapi;
  })();
  return loaded;
}

/** A square box of side max(w, h) around the centre of `box`, clipped to the image, in whole pixels. */
export function squareBox(box: { x: number; y: number; w: number; h: number }, width: number, height: number): FaceBox {
  const side = Math.min(Math.max(box.w, box.h), width, height);
  const cx = box.x + box.w / 2;
  const cy = box.y + box.h / 2;
  const x = Math.round(Math.min(Math.max(0, cx - side / 2), width - side));
  const y = Math.round(Math.min(Math.max(0, cy - side / 2), height - side));
  const s = Math.max(1, Math.min(Math.round(side), width - x, height - y));
  return { x, y, w: s, h: s };
}

/**
 * Loads the detector and landmark networks (once per process) on the chosen tfjs backend. `closeUps: false` leaves
 * out the second, padded look at an image where nothing was found (see CLOSE_UP_PAD).
 */
export async function createDetector(opts: { backend?: BackendPreference; minScore?: number; closeUps?: boolean } = {}): Promise<FaceDetector> {
  const { initBackend, tf } = await import('./backend.js');
  await initBackend(opts.backend ?? 'auto');
  const faceapi = await loadFaceApi();
  const options = new faceapi.SsdMobilenetv1Options({ minConfidence: opts.minScore ?? DEFAULT_MIN_SCORE, maxResults: 20 });
  return {
    async detect(file) {
      let data: Buffer;
      let info: OutputInfo;
      let width: number;
      let height: number;
      try {
        const image = sharp(readChecked(file, 'image'), { failOn: 'error', limitInputPixels: MAX_IMAGE_PIXELS }).rotate();
        const meta = await image.metadata();
        // the size after EXIF rotation, as decodeRgb and renderFace see the image
        const turned = (meta.orientation ?? 1) >= 5;
        width = turned ? meta.height! : meta.width!;
        height = turned ? meta.width! : meta.height!;
        const scale = Math.min(1, DETECT_MAX_SIDE / Math.max(width, height));
        ({ data, info } = await image
          .resize(Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale)), { fit: 'fill' })
          .removeAlpha()
          .toColourspace('srgb')
          .raw()
          .toBuffer({ resolveWithObject: true }));
      } catch (e) {
        throw new FerCleanError(`${file}: cannot decode image (${e instanceof FileReadError ? e.reason : (e as Error).message.split('\n')[0]})`);
      }
      const find = async (pixels: Uint8Array, w: number, h: number) => {
        const input = tf.tensor3d(pixels, [h, w, 3], 'int32');
        try {
          return await faceapi.detectAllFaces(input as never, options).withFaceLandmarks();
        } finally {
          input.dispose();
        }
      };
      const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      let results = await find(pixels, info.width, info.height);
      // A face that fills the frame (a close-up) is missed by ssd_mobilenetv1, which was trained on faces with
      // surroundings: look again with the image in the middle of a plain border (CLOSE_UP_PAD of its side each way).
      let pad = 0;
      if (results.length === 0 && opts.closeUps !== false) {
        pad = Math.round(CLOSE_UP_PAD * Math.max(info.width, info.height));
        const padded = await sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } })
          .extend({ top: pad, bottom: pad, left: pad, right: pad, background: { r: 128, g: 128, b: 128 } })
          .raw()
          .toBuffer({ resolveWithObject: true });
        results = await find(new Uint8Array(padded.data.buffer, padded.data.byteOffset, padded.data.byteLength), padded.info.width, padded.info.height);
      }
      const sx = width / info.width;
      const sy = height / info.height;
      const faces = results
        .map((r) => {
          const a = r.alignedRect.box;
          const box = squareBox({ x: (a.x - pad) * sx, y: (a.y - pad) * sy, w: a.width * sx, h: a.height * sy }, width, height);
          return { box, score: r.detection.score };
        })
        .sort((a, b) => b.score - a.score);
      return { width, height, faces };
    },
  };
}
