import sharp from 'sharp';
import { FerCleanError } from '../../errors.js';
import type { FaceBox } from '../../features/facebox.js';
import { FileReadError, MAX_IMAGE_PIXELS, readChecked } from '../../files.js';

/**
 * How a face is drawn in the terminal:
 * - truecolor: upper half-blocks (▀) with 24-bit foreground (top pixel) and background (bottom pixel);
 * - 256: the same half-blocks on the 256-colour palette's grey ramp (for terminals without 24-bit colour);
 * - none: no colour at all, one character per cell from a brightness ramp (monochrome terminals, NO_COLOR).
 */
export type ColorMode = 'truecolor' | '256' | 'none';
export const COLOR_MODES: readonly ColorMode[] = ['truecolor', '256', 'none'];

/**
 * The best face rendering a terminal supports, judged from its environment the way supports-color does:
 * NO_COLOR / TERM=dumb → none; FORCE_COLOR=3, COLORTERM=truecolor|24bit or a terminal known for 24-bit colour →
 * truecolor; a TERM naming 256 colours → 256; anything else (16 colours, unknown) → none.
 */
export function detectColorMode(env: NodeJS.ProcessEnv): ColorMode {
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return 'none';
  const force = env['FORCE_COLOR'];
  if (force === '3') return 'truecolor';
  if (force === '2') return '256';
  if (force === '0' || force === 'false') return 'none';
  const term = (env['TERM'] ?? '').toLowerCase();
  if (term === 'dumb') return 'none';
  const colorterm = (env['COLORTERM'] ?? '').toLowerCase();
  if (colorterm === 'truecolor' || colorterm === '24bit') return 'truecolor';
  const program = env['TERM_PROGRAM'] ?? '';
  if (['iTerm.app', 'WezTerm', 'vscode', 'ghostty'].includes(program)) return 'truecolor';
  if (/-truecolor$|-direct$|kitty|alacritty|foot/.test(term)) return 'truecolor';
  if (/256(colou?r)?/.test(term) || program === 'Apple_Terminal') return '256';
  return 'none';
}

/** Brightness ramp for colourless terminals, dark to bright (assumes light text on a dark background). */
const RAMP = ' .:-=+*#%@';

const RESET = '\x1b[0m';

/** Nearest entry of the 256-colour palette for a grey level: the 24-step ramp 232-255, or black 16 / white 231. */
export function grey256(v: number): number {
  if (v < 4) return 16;
  if (v > 246) return 231;
  return 232 + Math.min(23, Math.max(0, Math.round((v - 8) / 10)));
}

/**
 * Turns raw pixels (width x 2*rows, `channels` per pixel, row-major) into `rows` lines of terminal cells, each line
 * ending with a colour reset. Pure: used by renderFace and directly by tests.
 */
export function pixelsToLines(px: Uint8Array, width: number, rows: number, channels: number, mode: ColorMode): string[] {
  const lines: string[] = [];
  const at = (x: number, y: number, c: number): number => px[(y * width + x) * channels + Math.min(c, channels - 1)]!;
  const grey = (x: number, y: number): number =>
    channels >= 3 ? Math.round(0.299 * at(x, y, 0) + 0.587 * at(x, y, 1) + 0.114 * at(x, y, 2)) : at(x, y, 0);
  for (let r = 0; r < rows; r++) {
    const top = 2 * r;
    const bottom = 2 * r + 1;
    let line = '';
    let last = '';
    for (let x = 0; x < width; x++) {
      if (mode === 'none') {
        const v = (grey(x, top) + grey(x, bottom)) / 2;
        line += RAMP[Math.min(RAMP.length - 1, Math.floor((v / 256) * RAMP.length))];
        continue;
      }
      let sgr: string;
      if (mode === 'truecolor') {
        sgr =
          `\x1b[38;2;${at(x, top, 0)};${at(x, top, 1)};${at(x, top, 2)}` +
          `;48;2;${at(x, bottom, 0)};${at(x, bottom, 1)};${at(x, bottom, 2)}m`;
      } else {
        sgr = `\x1b[38;5;${grey256(grey(x, top))};48;5;${grey256(grey(x, bottom))}m`;
      }
      // Consecutive cells of the same colours share one escape sequence.
      line += sgr === last ? '▀' : sgr + '▀';
      last = sgr;
    }
    lines.push(mode === 'none' ? line : line + RESET);
  }
  return lines;
}

/**
 * Draws the image at `file` as `cols` x `rows` terminal cells (each cell is one pixel wide and two tall, so a square
 * face wants rows = cols / 2). The image (or only its face box) is resized to fit with sharp, letterboxed in black.
 */
export async function renderFace(file: string, cols: number, rows: number, mode: ColorMode, box: FaceBox | null = null): Promise<string[]> {
  const width = Math.max(1, Math.floor(cols));
  const height = Math.max(1, Math.floor(rows)) * 2;
  let data: Buffer;
  try {
    let img = sharp(readChecked(file, 'image'), { limitInputPixels: MAX_IMAGE_PIXELS });
    // the face box is in the image's own (EXIF-rotated) pixels, as embedding reads it
    if (box) img = img.rotate().extract({ left: box.x, top: box.y, width: box.w, height: box.h });
    data = await img
      .removeAlpha()
      .resize(width, height, { fit: 'contain', background: { r: 0, g: 0, b: 0 }, kernel: 'lanczos3' })
      .toColourspace('srgb')
      .raw()
      .toBuffer();
  } catch (e) {
    throw new FerCleanError(`${file}: cannot read image: ${e instanceof FileReadError ? e.reason : (e as Error).message}`);
  }
  const channels = Math.round(data.length / (width * height));
  return pixelsToLines(data, width, height / 2, channels, mode);
}
