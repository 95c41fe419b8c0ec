import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, writeSync, type Stats } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { FerCleanError } from '../errors.js';
import { kindOf, readChecked } from '../files.js';
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
      // decimal digits only: Number() would also take '0x1f', '1e2' and '255.0'
      const v = /^\d{1,3}$/.test(values[i]!) ? Number(values[i]) : NaN;
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
  if (pending.length) {
    try {
      mkdirSync(dirname(pending[0]!.file), { recursive: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new FerCleanError(`${dirname(pending[0]!.file)}: cannot make the folder for the fer2013 PNGs (${code === 'EEXIST' || code === 'ENOTDIR' ? 'a file is in the way' : code})`);
    }
  }
  for (const { file, pixels } of pending) {
    if (!keep.has(file)) continue;
    const png = await sharp(Buffer.from(pixels), { raw: { width: SIDE, height: SIDE, channels: 1 } }).png().toBuffer();
    if (sameBytes(file, png)) continue;
    writePng(file, png);
  }
}

/**
 * Whether `file` already holds `bytes`; false when it does not exist. Anything there but a regular file (a symlink,
 * a fifo, a device, a folder) is an error naming it: never read, never written through (a dataset folder that
 * ships `fer2013-images/fer0000000.png -> /etc/passwd` must not make ingest overwrite that file).
 */
function sameBytes(file: string, bytes: Buffer): boolean {
  let st: Stats;
  try {
    st = lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new FerCleanError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code})`);
  }
  if (!st.isFile()) {
    throw new FerCleanError(`${file}: is ${st.isSymbolicLink() ? 'a symlink' : kindOf(st)}, not a regular file: ingest writes the fer2013 PNGs itself and writes through nothing else (remove it, or pass --images DIR)`);
  }
  return readChecked(file, 'image').equals(bytes);
}

/** Writes a PNG, creating or truncating a regular file only: O_NOFOLLOW refuses a symlink put there meanwhile. */
function writePng(file: string, png: Buffer): void {
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0), 0o666);
  } catch (e) {
    throw new FerCleanError(`${file}: cannot write (${(e as NodeJS.ErrnoException).code})`);
  }
  try {
    if (!fstatSync(fd).isFile()) throw new FerCleanError(`${file}: is ${kindOf(fstatSync(fd))}, not a regular file`);
    for (let off = 0; off < png.length; ) off += writeSync(fd, png, off);
  } finally {
    closeSync(fd);
  }
}
