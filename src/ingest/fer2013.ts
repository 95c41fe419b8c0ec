import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { FileReadError, readChecked } from '../files.js';
import { requireColumn, findColumn, normaliseSplit, readCsv } from './csvfile.js';
import type { IngestOptions, Problem, SourceItem, SourceListing } from './types.js';

const SIDE = 48;

/**
 * The original fer2013.csv (emotion, pixels, Usage): each row's 2,304 grey values become a 48x48 PNG named by row
 * index (fer0000000.png, ...) in `images` (default: `fer2013-images/` beside the database). Rows are checked before
 * anything is written; PNGs already there with the same pixels are left alone, so re-ingest is idempotent.
 */
export async function readFer2013(opts: IngestOptions): Promise<SourceListing> {
  const source = resolve(opts.source);
  const table = readCsv(source);
  const emotionCol = requireColumn(table, 'emotion', opts.labelColumn, ['emotion'], '--label-column');
  const pixelsCol = requireColumn(table, 'pixels', undefined, ['pixels'], '--format');
  const usageCol = findColumn(table, opts.splitColumn, ['Usage', 'usage', 'split'], '--split-column');
  const outDir = resolve(opts.images ?? opts.defaultImagesDir ?? join(dirname(source), 'fer2013-images'));
  const root = dirname(outDir);
  const problems: Problem[] = [...table.problems];
  const items: SourceItem[] = [];
  const pending: { file: string; pixels: Uint8Array }[] = [];
  table.rows.forEach(({ line, record }, index) => {
    const where = `${table.file}:${line}`;
    const values = record[pixelsCol]!.trim().split(/\s+/);
    if (values.length !== SIDE * SIDE) {
      problems.push({ where, message: `pixels holds ${values.length} values, expected ${SIDE * SIDE} (48x48)` });
      return;
    }
    const pixels = new Uint8Array(SIDE * SIDE);
    for (let i = 0; i < values.length; i++) {
      const v = Number(values[i]);
      if (!Number.isInteger(v) || v < 0 || v > 255) {
        problems.push({ where, message: `pixel ${i + 1} is '${values[i]}', expected an integer 0-255` });
        return;
      }
      pixels[i] = v;
    }
    const name = `fer${String(index).padStart(7, '0')}.png`;
    const path = relative(root, join(outDir, name)).split(sep).join('/');
    items.push({ path, labelRaw: record[emotionCol]!, split: normaliseSplit(usageCol ? record[usageCol] : undefined), where, line, record: { emotion: record[emotionCol]!, Usage: usageCol ? record[usageCol]! : '' } });
    pending.push({ file: join(outDir, name), pixels });
  });
  return {
    format: 'fer2013',
    root,
    items,
    labelEncoding: 'fer2013',
    problems,
    options: { imagesDir: relative(root, outDir) || '.', pending },
    name: basename(dirname(source)) || 'fer2013',
  };
}

/**
 * Writes the PNGs of a fer2013 listing for the rows that passed validation (`keep`: absolute paths), leaving files
 * that already hold the same pixels untouched.
 */
export async function writeFer2013Images(listing: SourceListing, keep: ReadonlySet<string>): Promise<void> {
  const pending = listing.options['pending'] as { file: string; pixels: Uint8Array }[];
  delete listing.options['pending'];
  if (pending.length) mkdirSync(dirname(pending[0]!.file), { recursive: true });
  for (const { file, pixels } of pending) {
    if (!keep.has(file)) continue;
    const png = await sharp(Buffer.from(pixels), { raw: { width: SIDE, height: SIDE, channels: 1 } }).png().toBuffer();
    if (sameBytes(file, png)) continue;
    writeFileSync(file, png);
  }
}

/** Whether `file` already holds `bytes`; false when it does not exist. Something there that is not a regular file (a fifo, a device, a folder) is an error naming it, never read or written through. */
function sameBytes(file: string, bytes: Buffer): boolean {
  try {
    return readChecked(file, 'image').equals(bytes);
  } catch (e) {
    if (e instanceof FileReadError && e.code === 'ENOENT') return false;
    throw e;
  }
}
