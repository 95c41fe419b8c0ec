import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import sharp, { type Metadata } from 'sharp';
import { FileReadError, MAX_IMAGE_PIXELS, readChecked } from '../files.js';

export interface ImageInfo {
  sha256: string;
  width: number;
  height: number;
  channels: number;
  /** Width and height once EXIF orientation is applied: the frame face boxes are given in. */
  oriented: { width: number; height: number };
}

export type ImageResult = { ok: true; info: ImageInfo } | { ok: false; error: string };

// Decoding runs on libvips' own threads; keep its cache off so memory stays flat across a large dataset.
sharp.cache(false);

/**
 * The smallest side, in pixels, of an image that can hold a face whose expression can be read. Below 16 px the eyes
 * and mouth are a pixel or two across, and face detectors stop there too (MTCNN's smallest window is 12 px and its
 * usual minimum face 20 px); the smallest FER benchmark faces are 48 px (FER2013). Every backbone upsamples its
 * input (faceexpr to 112 px), so such an image would be embedded as a blur without anyone noticing.
 */
export const MIN_FACE_SIDE = 16;

/**
 * The image formats ingest reads, by content (sharp's metadata().format), whatever the file is named: photographs
 * and frames. Not SVG or PDF (drawings that reference other files and render at any size), not libvips' own
 * formats. A GIF is read when it is a still image; an animated one (several frames) is refused: which frame would be
 * the face?
 */
export const DECODED_FORMATS: readonly string[] = ['jpeg', 'png', 'webp', 'tiff', 'gif', 'heif'];

/** Reads, hashes and fully decodes one image: a truncated, corrupt or too small file is reported, not accepted. */
export async function inspectImage(file: string): Promise<ImageResult> {
  let bytes: Buffer;
  try {
    // faces are small: one blocking read beats four thread-pool round trips; a fifo, device or folder is refused
    bytes = readChecked(file, 'image');
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e;
    return { ok: false, error: e.code === 'ENOENT' ? 'image file not found' : e.code ? `cannot read image (${e.code})` : `image file ${e.reason}` };
  }
  if (bytes.length === 0) return { ok: false, error: 'image file is empty' };
  try {
    // the pixel cap is checked by hand from the header below (sharp's own check would fail metadata() with a vaguer message)
    const image = sharp(bytes, { failOn: 'truncated', limitInputPixels: false });
    // channels as stored (sharp's raw output would be sRGB); a plain PNG's header says it without a trip into libvips
    const meta = plainPngHeader(bytes) ?? (await image.metadata());
    if (!DECODED_FORMATS.includes(meta.format ?? '')) {
      return { ok: false, error: `cannot decode image: ${meta.format ?? 'unknown'} is not a supported image format (PNG, JPEG, WebP, TIFF, GIF, HEIF)` };
    }
    if (meta.width! * meta.height! > MAX_IMAGE_PIXELS) {
      // said from the header, before anything is decoded
      return { ok: false, error: `image is ${meta.width}x${meta.height} px (${Math.round((meta.width! * meta.height!) / 1e6)} Mpx): more than the ${MAX_IMAGE_PIXELS / 1e6} Mpx an image may have` };
    }
    if ((meta.pages ?? 1) > 1 && meta.format === 'gif') return { ok: false, error: `image is an animated GIF (${meta.pages} frames): save the face as a still image` };
    // Grey faces decode as grey: converting to sRGB first was most of the per-image cost.
    if (meta.space === 'b-w') image.toColourspace('b-w');
    await image.raw().toBuffer(); // a full decode: catches truncated and corrupt data the header hides
    if (meta.width! < MIN_FACE_SIDE || meta.height! < MIN_FACE_SIDE) {
      return { ok: false, error: `image is ${meta.width}x${meta.height} px: too small to hold a face (each side must be at least ${MIN_FACE_SIDE} px)` };
    }
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const oriented = { width: meta.autoOrient?.width ?? meta.width!, height: meta.autoOrient?.height ?? meta.height! };
    return { ok: true, info: { sha256, width: meta.width!, height: meta.height!, channels: meta.channels!, oriented } };
  } catch (e) {
    return { ok: false, error: decodeError((e as Error).message) };
  }
}

/** What sharp's metadata() reports of an image, as far as inspectImage uses it. */
type HeaderInfo = Pick<Metadata, 'format' | 'pages' | 'width' | 'height' | 'channels' | 'space' | 'autoOrient'>;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Channels and libvips interpretation of an 8-bit PNG by IHDR colour type (palette images are left to sharp). */
const PNG_COLOUR_TYPES: Record<number, { channels: number; space: string }> = {
  0: { channels: 1, space: 'b-w' },
  2: { channels: 3, space: 'srgb' },
  4: { channels: 2, space: 'b-w' },
  6: { channels: 4, space: 'srgb' },
};

/**
 * What sharp's metadata() says of a plain PNG (8 bits; grey, grey+alpha, RGB or RGBA; no eXIf chunk, so no
 * orientation), read from its IHDR chunk (PNG spec 11.2.2); undefined for anything else, which asks sharp. Skipping
 * that second call into libvips is about a fifth of the cost of inspecting a small face (docs/BENCHMARKS.md, Ingest).
 * The full decode that follows still checks every byte.
 */
export function plainPngHeader(bytes: Buffer): HeaderInfo | undefined {
  if (bytes.length < 33 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE) || bytes.toString('latin1', 12, 16) !== 'IHDR') return undefined;
  const type = PNG_COLOUR_TYPES[bytes[25]!];
  if (bytes[24] !== 8 || !type) return undefined;
  // chunks: length (4 bytes), type (4), data, CRC (4); an orientation (eXIf) anywhere, or a cut chunk list, asks sharp
  for (let at = 8; ; ) {
    if (at + 8 > bytes.length) return undefined;
    const chunk = bytes.toString('latin1', at + 4, at + 8);
    if (chunk === 'eXIf') return undefined;
    if (chunk === 'IEND') break;
    at += 12 + bytes.readUInt32BE(at);
  }
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  return { format: 'png', pages: undefined, width, height, channels: type.channels as Metadata['channels'], space: type.space as Metadata['space'], autoOrient: { width, height } };
}

/**
 * libvips' message for a failed decode: the first line, which on a busy thread pool can be a bare
 * "Unknown error"; the kind of failure is what the user needs.
 */
function decodeError(message: string): string {
  const first = message.split('\n')[0]!.trim();
  if (/unsupported image format/i.test(first)) return 'cannot decode image: not a supported image format (PNG, JPEG, WebP, TIFF, ...)';
  const detail = first && !/^unknown error$/i.test(first) ? ` (${first})` : '';
  return `cannot decode image: corrupt or truncated data${detail}`;
}

/** Runs `fn` over `items` with at most `concurrency` in flight, keeping results in order. */
export async function mapPool<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
  onDone?: (done: number) => void,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i]!, i);
      done++;
      onDone?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return out;
}

/** The compiled worker beside this module; absent when running from TypeScript sources (tests). */
function workerScript(): string | undefined {
  const here = fileURLToPath(import.meta.url);
  if (!here.endsWith('.js')) return undefined;
  const script = join(dirname(here), 'inspect-worker.js');
  return existsSync(script) ? script : undefined;
}

export interface InspectOptions {
  /** Images in flight per thread (default 16). */
  concurrency?: number;
  /** Worker threads (default: one per core, at most 4; 0 = this thread). Small jobs run in this thread. */
  workers?: number;
  /** Images per message to a worker (default 256); jobs under two chunks run in this thread. */
  chunk?: number;
}

/**
 * inspectImage over many files, in order. Large jobs are spread over worker threads (each with its own JS thread
 * driving sharp), since per-image JavaScript overhead, not decoding, limits a single thread on small faces.
 */
export async function inspectAll(files: readonly string[], opts: InspectOptions = {}, onDone?: (done: number) => void): Promise<ImageResult[]> {
  const concurrency = opts.concurrency ?? 16;
  const CHUNK = opts.chunk ?? 256;
  const script = workerScript();
  const workers = Math.min(opts.workers ?? Math.min(availableParallelism(), 4), Math.ceil(files.length / CHUNK));
  if (!script || workers < 2 || files.length < 2 * CHUNK) return mapPool(files, concurrency, inspectImage, onDone);

  const out = new Array<ImageResult>(files.length);
  const chunks = Math.ceil(files.length / CHUNK);
  let next = 0;
  let done = 0;
  const pool = Array.from({ length: workers }, () => new Worker(script));
  try {
    await new Promise<void>((resolve, reject) => {
      let finished = 0;
      const send = (w: Worker): void => {
        if (next >= chunks) return;
        const id = next++;
        w.postMessage({ id, files: files.slice(id * CHUNK, (id + 1) * CHUNK), concurrency });
      };
      for (const w of pool) {
        w.on('message', (m: { id: number; results: ImageResult[] }) => {
          m.results.forEach((r, k) => (out[m.id * CHUNK + k] = r));
          done += m.results.length;
          onDone?.(done);
          if (++finished === chunks) resolve();
          else send(w);
        });
        w.on('error', reject);
        // two chunks in flight per worker keep it busy while the other's results travel back
        send(w);
        send(w);
      }
    });
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return out;
}
