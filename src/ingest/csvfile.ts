import { parse } from 'csv-parse/sync';
import { basename } from 'node:path';
import { FerCleanError } from '../errors.js';
import { readChecked, type FileKind } from '../files.js';
import type { Problem } from './types.js';

export interface CsvTable {
  file: string;
  header: string[];
  /** Each row with the byte range [start, end) of the file it came from (its line ending and any blank lines before it included). */
  rows: { line: number; record: Record<string, string>; start: number; end: number }[];
  problems: Problem[];
  /** The file's bytes: `bytes.subarray(0, headerEnd)` is the header line as written. */
  bytes: Buffer;
  headerEnd: number;
}

/**
 * Reads a CSV with a header row (csv-parse). Rows with the wrong number of fields become problems naming the line;
 * an unreadable, empty or header-only file is an error.
 */
export function readCsv(path: string, kind: FileKind = 'source'): CsvTable {
  const name = basename(path);
  const text = readChecked(path, kind); // a fifo, device, socket or folder is refused by name; the size is capped
  let parsed: { record: string[]; info: { lines: number; bytes: number } }[];
  try {
    parsed = parse(text, { bom: true, info: true, relax_column_count: true, skip_empty_lines: true, trim: true }) as unknown as typeof parsed;
  } catch (e) {
    const err = e as Error & { lines?: number };
    throw new FerCleanError(`${name}:${err.lines ?? '?'}: malformed CSV: ${err.message.replace(/^Invalid [^:]*: /, '')}`);
  }
  if (parsed.length === 0) throw new FerCleanError(`${name}: empty CSV (no header row)`);
  const header = parsed[0]!.record;
  if (parsed.length === 1) throw new FerCleanError(`${name}: CSV has a header (${header.join(', ')}) but no rows`);
  const seen = new Set<string>();
  for (const h of header) {
    if (seen.has(h)) throw new FerCleanError(`${name}:1: column '${h}' appears twice in the header`);
    seen.add(h);
  }
  const rows: CsvTable['rows'] = [];
  const problems: Problem[] = [];
  let start = parsed[0]!.info.bytes;
  for (const { record, info } of parsed.slice(1)) {
    const span = { start, end: info.bytes };
    start = info.bytes;
    if (record.length !== header.length) {
      problems.push({ where: `${name}:${info.lines}`, message: `expected ${header.length} fields (${header.join(', ')}), found ${record.length}` });
      continue;
    }
    const rec: Record<string, string> = {};
    header.forEach((h, i) => (rec[h] = record[i]!));
    rows.push({ line: info.lines, record: rec, ...span });
  }
  return { file: name, header, rows, problems, bytes: text, headerEnd: parsed[0]!.info.bytes };
}

/** Finds a column: the one asked for (must exist), else the first candidate present (case-insensitive). */
export function findColumn(
  table: Pick<CsvTable, 'file' | 'header'>,
  asked: string | undefined,
  candidates: readonly string[],
  flag: string,
): string | undefined {
  if (asked !== undefined) {
    if (!table.header.includes(asked)) {
      throw new FerCleanError(`${table.file}: no column '${asked}' (${flag}); columns are: ${table.header.join(', ')}`);
    }
    return asked;
  }
  const lower = table.header.map((h) => h.toLowerCase());
  for (const c of candidates) {
    const i = lower.indexOf(c.toLowerCase());
    if (i >= 0) return table.header[i];
  }
  return undefined;
}

export function requireColumn(
  table: Pick<CsvTable, 'file' | 'header'>,
  role: string,
  asked: string | undefined,
  candidates: readonly string[],
  flag: string,
): string {
  const col = findColumn(table, asked, candidates, flag);
  if (col === undefined) {
    throw new FerCleanError(
      `${table.file}: no ${role} column (looked for ${candidates.join(', ')}); columns are: ${table.header.join(', ')}; name it with ${flag} NAME`,
    );
  }
  return col;
}

export const PATH_COLUMNS = ['path', 'image', 'file', 'filename', 'image_path', 'img', 'Image name'];
export const LABEL_COLUMNS = ['label', 'emotion', 'expression', 'class', 'fer2013_label', 'category'];
export const SPLIT_COLUMNS = ['split', 'usage', 'subset', 'set', 'partition'];

/** Maps the usual split names to train / valid / test; anything else is kept, lower-cased. */
export function normaliseSplit(raw: string | undefined): string {
  const v = (raw ?? '').trim().toLowerCase();
  if (v === '' || v === 'train' || v === 'training') return 'train';
  if (['val', 'valid', 'validation', 'publictest', 'dev'].includes(v)) return 'valid';
  if (['test', 'testing', 'privatetest'].includes(v)) return 'test';
  return v;
}
