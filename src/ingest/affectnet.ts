import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { FerCleanError } from '../errors.js';
import { boxProblem, type FaceBox } from '../features/facebox.js';
import { NO_FACE, NON_EXPRESSION_CODES } from '../taxonomy.js';
import { readCsv, requireColumn } from './csvfile.js';
import { MIN_FACE_SIDE } from './images.js';
import { sourcePath } from './sources.js';
import type { IngestOptions, Problem, SourceItem, SourceListing } from './types.js';

/**
 * Source bytes as JSON can hold them, for `export --format same`: under `key` as text when they are valid UTF-8
 * (readable in the database, and what earlier versions stored), else under `${key}Base64`, so a row in Latin-1 or
 * with a stray byte comes back byte for byte.
 */
export function keptBytes(key: string, bytes: Buffer): Record<string, string> {
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? { [key]: text } : { [`${key}Base64`]: bytes.toString('base64') };
}

/** The bytes keptBytes stored under `key` (empty when neither is there). */
export function bytesKept(o: Record<string, unknown>, key: string): Buffer {
  const b64 = o[`${key}Base64`];
  if (typeof b64 === 'string') return Buffer.from(b64, 'base64');
  const text = o[key];
  return Buffer.from(typeof text === 'string' ? text : '', 'utf8');
}

/** The columns of AffectNet's annotation files (training.csv, validation.csv). */
export const AFFECTNET_COLUMNS = [
  'subDirectory_filePath',
  'face_x',
  'face_y',
  'face_width',
  'face_height',
  'facial_landmarks',
  'expression',
  'valence',
  'arousal',
] as const;

/** The folder AffectNet ships its photos in; found beside the annotation file or one level up when --images is not given. */
export const AFFECTNET_IMAGES = 'Manually_Annotated_Images';

/** Where subDirectory_filePath resolves: --images, else Manually_Annotated_Images beside or above the CSV, else the CSV's folder. */
function imagesRoot(source: string, images: string | undefined): string {
  if (images !== undefined) return resolve(images);
  const dir = dirname(source);
  for (const candidate of [join(dir, AFFECTNET_IMAGES), join(dirname(dir), AFFECTNET_IMAGES)]) {
    if (existsSync(candidate)) return candidate;
  }
  return dir;
}

/** The face box of a row, or a message saying which field is wrong. */
function rowBox(record: Record<string, string>, cols: readonly string[]): FaceBox | string {
  const values: number[] = [];
  for (const c of cols) {
    const v = record[c]!.trim();
    if (!/^-?\d+(\.\d+)?$/.test(v)) return `${c} is '${v}', not a number of pixels`;
    values.push(Number(v));
  }
  const [x, y, w, h] = values as [number, number, number, number];
  const box = { x, y, w, h };
  // whole pixels, not empty, not starting left of or above the image, large enough to hold a face (as an image
  // must be); whether it ends inside the image is checked once the image is opened
  const problem = boxProblem(box, Infinity, Infinity);
  if (problem !== null) return `face box ${problem}`;
  if (w < MIN_FACE_SIDE || h < MIN_FACE_SIDE) {
    return `face box (x ${x}, y ${y}, width ${w}, height ${h}) is ${w}x${h} px: too small to hold a face (each side must be at least ${MIN_FACE_SIDE} px)`;
  }
  return box;
}

/**
 * AffectNet's annotation CSV (`subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks,
 * expression, valence, arousal`): whole photos with the face box given per row. The box is kept with the image
 * (images.crop_*, crop_source 'annotation') and cut out for embedding and review; the file is never rewritten.
 * Expressions are AffectNet codes (0-7 classes; 8 none, 9 uncertain, 10 no-face are kept as not trainable, 10 also
 * flags the image 'no-face'). Each row's bytes are kept so `export --format same` writes the file back as it was.
 * The split follows the file's name: validation*.csv is 'valid', anything else 'train'.
 */
export function readAffectNet(opts: IngestOptions): SourceListing {
  const source = resolve(opts.source);
  const table = readCsv(source);
  const find = (name: string): string => requireColumn(table, name, undefined, [name], '--format affectnet');
  const missing = AFFECTNET_COLUMNS.filter((c) => !table.header.some((h) => h.toLowerCase() === c.toLowerCase()));
  if (missing.length) {
    throw new FerCleanError(
      `${table.file}: not an AffectNet annotation file: no column ${missing.join(', ')} (expected ${AFFECTNET_COLUMNS.join(', ')}); columns are: ${table.header.join(', ')}`,
    );
  }
  if (opts.labelEncoding !== undefined && opts.labelEncoding !== 'affectnet') {
    throw new FerCleanError(`--format affectnet reads AffectNet's expression codes; --label-encoding ${opts.labelEncoding} does not apply`);
  }
  const pathCol = find('subDirectory_filePath');
  const boxCols = [find('face_x'), find('face_y'), find('face_width'), find('face_height')];
  const exprCol = find('expression');
  const root = imagesRoot(source, opts.images);
  const split = /^valid/i.test(basename(source)) ? 'valid' : 'train';
  const problems: Problem[] = [...table.problems];
  const items: SourceItem[] = [];
  for (const { line, record, start, end } of table.rows) {
    const where = `${table.file}:${line}`;
    const rel = sourcePath(root, record[pathCol]!);
    if ('error' in rel) {
      problems.push({ where, message: rel.error, path: record[pathCol] });
      continue;
    }
    const box = rowBox(record, boxCols);
    if (typeof box === 'string') {
      problems.push({ where, message: `${rel.path}: ${box}`, path: rel.path });
      continue;
    }
    const labelRaw = record[exprCol]!;
    items.push({
      path: rel.path,
      labelRaw,
      split,
      where,
      line,
      record,
      text: table.bytes.subarray(start, end),
      box,
      quality: NON_EXPRESSION_CODES[Number(labelRaw.trim())] === NO_FACE ? NO_FACE : null,
    });
  }
  const tail = table.rows.length ? table.bytes.subarray(table.rows.at(-1)!.end) : Buffer.alloc(0);
  return {
    format: 'affectnet',
    root,
    items,
    labelEncoding: 'affectnet',
    problems,
    options: {
      pathColumn: pathCol,
      labelColumn: exprCol,
      header: table.header,
      // as bytes: a file in another encoding than UTF-8 is written back as it was (see keptBytes)
      ...keptBytes('headerText', table.bytes.subarray(0, table.headerEnd)),
      ...keptBytes('tailText', tail),
      file: table.file,
    },
    // training.csv and validation.csv usually sit side by side: one dataset each by default
    name: `affectnet-${basename(source).replace(/\.[^.]*$/, '')}`,
  };
}
