import { existsSync, readdirSync, readlinkSync, statSync, type Dirent } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { FerCleanError } from '../errors.js';
import { kindOf, readChecked } from '../files.js';
import {
  LABEL_COLUMNS,
  PATH_COLUMNS,
  SPLIT_COLUMNS,
  findColumn,
  normaliseSplit,
  readCsv,
  requireColumn,
} from './csvfile.js';
import { ferPlusMajority, FERPLUS_VOTE_CLASSES, voteColumns } from './ferplus.js';
import type { Format, IngestOptions, Problem, SourceItem, SourceListing } from './types.js';

/**
 * The files a class folder lists as images (by name). Whether a file is an image is decided by its content
 * (DECODED_FORMATS in images.ts), for a folder and a CSV row alike: a GIF is read in both (its one frame; an
 * animated one is refused), an SVG or PDF in neither.
 */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.webp', '.tif', '.tiff', '.gif'];
const isImageFile = (name: string): boolean => IMAGE_EXTENSIONS.some((e) => name.toLowerCase().endsWith(e));

/**
 * An image path from a source as it is stored: an absolute path is taken as it is (normalised); a relative one is
 * kept relative to the dataset root (`root`: --images or the source's folder), normalised and '/' separated, and may
 * lead out of it (`../images/x.png`). Returns an error message when it is empty or names the root itself.
 */
export function sourcePath(root: string, p: string): { path: string } | { error: string } {
  const raw = p.trim();
  if (raw === '') return { error: 'empty image path' };
  if (raw.includes('\0')) return { error: `image path '${raw}' holds a NUL character: no file can be named so` };
  if (isAbsolute(raw)) return { path: resolve(raw).split(sep).join('/') };
  const rel = relative(root, resolve(root, raw));
  if (rel === '') return { error: `image path '${raw}' names the folder ${root}, not an image file` };
  return { path: rel.split(sep).join('/') };
}

/** Picks the format from what the source looks like; ambiguity is an error asking for --format. */
export function detectFormat(source: string): Format {
  if (!existsSync(source)) throw new FerCleanError(`${source}: no such file or folder`);
  const st = statSync(source);
  if (st.isDirectory()) {
    if (existsSync(join(source, 'EmoLabel', 'list_patition_label.txt'))) return 'rafdb';
    return 'imagefolder';
  }
  if (basename(source) === 'list_patition_label.txt') return 'rafdb';
  // the header line is all it needs: a bounded read, and a fifo or device is refused by name
  const firstLine = readChecked(source, 'source', { head: 64 * 1024 }).toString('utf8').split(/\r?\n/, 1)[0] ?? '';
  const cols = firstLine.split(',').map((c) => c.trim().replace(/^"|"$/g, '').toLowerCase());
  if (cols.includes('pixels') && cols.includes('emotion')) return 'fer2013';
  if (cols.includes('subdirectory_filepath') && cols.includes('face_x')) return 'affectnet';
  if (voteColumns(cols) !== undefined) return 'ferplus';
  if (/\.(csv|tsv|txt)$/i.test(source)) return 'csv';
  throw new FerCleanError(`${source}: cannot tell the dataset format; pass --format (csv, ferplus, imagefolder, rafdb, fer2013, affectnet)`);
}

export const datasetNameFor = (source: string): string => {
  const st = statSync(source);
  const dir = st.isDirectory() ? source : dirname(source);
  return basename(resolve(dir)) || 'dataset';
};

/** Generic CSV (and the shared part of FER+): a path column and a label column. */
export function readCsvSource(opts: IngestOptions, format: 'csv' | 'ferplus'): SourceListing {
  const source = resolve(opts.source);
  const table = readCsv(source);
  const root = resolve(opts.images ?? dirname(source));
  const pathCol = requireColumn(table, 'image path', opts.pathColumn, PATH_COLUMNS, '--path-column');
  const labelCol = requireColumn(table, 'label', opts.labelColumn, LABEL_COLUMNS, '--label-column');
  const splitCol = findColumn(table, opts.splitColumn, SPLIT_COLUMNS, '--split-column');
  const refCol = opts.referenceColumn !== undefined ? findColumn(table, opts.referenceColumn, [], '--reference-column') : undefined;
  const votes = format === 'ferplus' ? voteColumns(table.header.map((h) => h.toLowerCase())) : undefined;
  if (format === 'ferplus' && !votes) {
    throw new FerCleanError(`${table.file}: no FER+ vote columns (${FERPLUS_VOTE_CLASSES.join(', ')}, optionally prefixed votes_)`);
  }
  const ambiguousCol = table.header.find((h) => /_ambiguous$/i.test(h));
  // each class's vote column as the header spells it, looked up once (not per row: 35k rows x 8 classes)
  const voteCols = votes && Object.entries(votes).map(([cls, col]) => [cls, col, table.header.find((h) => h.toLowerCase() === col)!] as const);
  const problems: Problem[] = [...table.problems];
  const items: SourceItem[] = [];
  for (const { line, record } of table.rows) {
    const where = `${table.file}:${line}`;
    const rel = sourcePath(root, record[pathCol]!);
    if ('error' in rel) {
      problems.push({ where, message: rel.error, path: record[pathCol] });
      continue;
    }
    const item: SourceItem = {
      path: rel.path,
      labelRaw: record[labelCol]!,
      split: normaliseSplit(splitCol ? record[splitCol] : undefined),
      where,
      line,
      record,
    };
    if (refCol) item.reference = record[refCol]!.trim() === '' ? null : record[refCol]!;
    if (voteCols) {
      const byClass: Record<string, number> = {};
      let bad: string | undefined;
      for (const [cls, col, header] of voteCols) {
        const v = record[header]!.trim();
        if (!/^\d+$/.test(v)) bad = `vote column ${col} holds '${v}', not a count`;
        byClass[cls] = Number(v);
      }
      if (bad) {
        problems.push({ where, message: bad, path: rel.path });
        continue;
      }
      item.referenceVotes = byClass;
      // Labels whose original value is known to be uncertain are kept, but left out of reference scoring.
      const ambiguous = ambiguousCol !== undefined && record[ambiguousCol]!.trim() === '1';
      item.reference = ambiguous ? null : ferPlusMajority(byClass, opts.contempt ?? false);
    }
    items.push(item);
  }
  return {
    format,
    root,
    items,
    labelEncoding: opts.labelEncoding ?? 'names',
    problems,
    options: { pathColumn: pathCol, labelColumn: labelCol, splitColumn: splitCol ?? null, referenceColumn: refCol ?? null, header: table.header },
    name: datasetNameFor(source),
  };
}

const SPLIT_DIRS = new Set(['train', 'training', 'test', 'testing', 'val', 'valid', 'validation']);

/** What a folder entry is, following symlinks; a broken link or a link loop is a problem naming it ('bad'). */
function entryKind(d: Dirent, full: string, rel: string, problems: Problem[]): 'dir' | 'file' | 'other' | 'bad' {
  if (!d.isSymbolicLink()) return d.isDirectory() ? 'dir' : d.isFile() ? 'file' : 'other';
  try {
    const st = statSync(full);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    let target = '?';
    try {
      target = readlinkSync(full);
    } catch {
      // unreadable link: the code says enough
    }
    const message =
      code === 'ELOOP' ? `symlink loop (${rel} -> ${target})` : code === 'ENOENT' ? `broken symlink (${rel} -> ${target}: no such file or folder)` : `cannot follow symlink ${rel} -> ${target} (${code})`;
    problems.push({ where: rel, message, path: rel });
    return 'bad';
  }
}

/** ROOT/<split>/<class>/* or ROOT/<class>/*. Symlinked folders and images are followed. */
export function readImageFolder(opts: IngestOptions): SourceListing {
  const root = resolve(opts.source);
  if (!statSync(root).isDirectory()) throw new FerCleanError(`${root}: imagefolder format needs a folder`);
  const problems: Problem[] = [];
  const subdirs = (rel: string): string[] =>
    readdirSync(join(root, rel), { withFileTypes: true })
      .filter((d) => !d.name.startsWith('.'))
      .filter((d) => {
        const r = rel ? `${rel}/${d.name}` : d.name;
        // a symlink loop among the folders is reported here; an image-named one is reported with the images
        return isImageFile(d.name) ? false : entryKind(d, join(root, r), r, problems) === 'dir';
      })
      .map((d) => d.name);
  const top = subdirs('');
  if (top.length === 0) throw new FerCleanError(`${root}: no class folders (expected ROOT/<class>/*.png or ROOT/<split>/<class>/*.png)`);
  const splitLayout = top.every((d) => SPLIT_DIRS.has(d.toLowerCase()));
  const groups: { split: string; classDir: string; rel: string }[] = [];
  for (const d of top) {
    if (splitLayout) {
      for (const c of subdirs(d)) groups.push({ split: normaliseSplit(d), classDir: c, rel: `${d}/${c}` });
    } else {
      groups.push({ split: 'train', classDir: d, rel: d });
    }
  }
  const items: SourceItem[] = [];
  for (const g of groups.sort((a, b) => a.rel.localeCompare(b.rel))) {
    const files = readdirSync(join(root, g.rel), { withFileTypes: true })
      .filter((f) => {
        if (!isImageFile(f.name)) return false;
        const rel = `${g.rel}/${f.name}`;
        const kind = entryKind(f, join(root, rel), rel, problems);
        // an image name on a fifo, device, socket or folder is said, as it is for a CSV row naming one
        if (kind === 'dir' || kind === 'other') problems.push({ where: rel, message: `image file is ${kindOf(statSync(join(root, rel)))}, not a regular file`, path: rel });
        return kind === 'file';
      })
      .map((f) => f.name)
      .sort();
    for (const f of files) {
      const path = `${g.rel}/${f}`;
      items.push({ path, labelRaw: g.classDir, split: g.split, where: path });
    }
  }
  return { format: 'imagefolder', root, items, labelEncoding: opts.labelEncoding ?? 'names', problems, options: { splitLayout }, name: basename(root) };
}

/** RAF-DB basic: EmoLabel/list_patition_label.txt (`train_00001.jpg 5`) with Image/aligned/<stem>_aligned.jpg. */
export function readRafDb(opts: IngestOptions): SourceListing {
  const src = resolve(opts.source);
  const listFile = statSync(src).isDirectory() ? join(src, 'EmoLabel', 'list_patition_label.txt') : src;
  const root = statSync(src).isDirectory() ? src : dirname(dirname(listFile));
  if (!existsSync(listFile)) throw new FerCleanError(`${listFile}: no such file (RAF-DB needs EmoLabel/list_patition_label.txt)`);
  const name = relative(root, listFile).split(sep).join('/');
  const imageDir = opts.images ? relative(root, resolve(opts.images)).split(sep).join('/') : 'Image/aligned';
  const lines = readChecked(listFile, 'source').toString('utf8').split(/\r?\n/);
  const items: SourceItem[] = [];
  const problems: Problem[] = [];
  lines.forEach((text, i) => {
    const line = i + 1;
    if (text.trim() === '') return;
    const m = /^\s*(\S+?)\.(jpg|jpeg|png)\s+(\S+)\s*$/i.exec(text);
    if (!m) {
      problems.push({ where: `${name}:${line}`, message: `expected '<name>.jpg <label 1-7>', found '${text.trim()}'` });
      return;
    }
    const stem = m[1]!;
    const split = stem.toLowerCase().startsWith('test') ? 'test' : 'train';
    const path = `${imageDir}/${stem}_aligned.jpg`;
    items.push({ path, labelRaw: m[3]!, split, where: `${name}:${line}`, line, record: { name: `${stem}.${m[2]}`, label: m[3]! } });
  });
  return { format: 'rafdb', root, items, labelEncoding: 'rafdb', problems, options: { listFile: name, imageDir }, name: basename(root) };
}
