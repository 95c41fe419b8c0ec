/**
 * A matrix a user brings from outside, one row per image: a CSV with a `path` column and one numeric column per
 * dimension, or a .npy array (rows x dims) with a text file naming each row's image, one path per line. Read as a
 * stream of rows (bounded memory whatever the size), each row validated as it comes: ragged rows and values that are
 * not finite numbers are errors naming the file and line (CSV) or row (.npy).
 */
import { parse } from 'csv-parse';
import { createReadStream, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { createInterface } from 'node:readline';
import { FerCleanError } from '../errors.js';
import { openNpy, type NpyDtype } from './npy.js';

export interface MatrixSource {
  /** A .csv (with a `path` column) or .npy (rows x dims) file. */
  file: string;
  /** For a .npy file: a text file with one image path per line, in row order. Not allowed with a CSV. */
  paths?: string;
}

export interface MatrixRow {
  /** The image path as the file wrote it. */
  path: string;
  /** Where the row is, for errors: `file.csv:12` or `file.npy row 11 (paths.txt:11)`. */
  where: string;
  /** The CSV line, or the .npy row (1-based). */
  line: number;
  values: Float64Array;
}

export interface MatrixInput {
  format: 'csv' | 'npy';
  /** The CSV's column names after `path`, in order (null for .npy, whose columns have no names). */
  columns: string[] | null;
  /** Values per row. */
  dim: number;
  /** Rows announced by a .npy header (null for a CSV, known only at its end). */
  rows: number | null;
  dtype: NpyDtype | 'text';
  /** The rows, in file order; each is checked (field count, finite numbers) as it is read. */
  read(): AsyncGenerator<MatrixRow>;
}

/** Opens a CSV or .npy matrix (by extension) and reads its header; the rows are read by `read()`. */
export async function openMatrix(src: MatrixSource): Promise<MatrixInput> {
  regularFile(src.file);
  const ext = extname(src.file).toLowerCase();
  if (ext === '.npy') {
    if (!src.paths) throw new FerCleanError(`${src.file}: a .npy file needs --paths PATHS.txt (one image path per line, in row order)`);
    regularFile(src.paths);
    return openNpyMatrix(src.file, src.paths);
  }
  if (src.paths) throw new FerCleanError(`--paths goes with a .npy file only: ${basename(src.file)} names its images in its 'path' column`);
  if (ext !== '.csv') throw new FerCleanError(`${src.file}: expected a .csv or .npy file`);
  return openCsvMatrix(src.file);
}

function regularFile(path: string): void {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new FerCleanError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!st.isFile()) throw new FerCleanError(`${path}: not a regular file`);
}

const csvOptions = { bom: true, info: true, relax_column_count: true, skip_empty_lines: true, trim: true } as const;
type CsvRecord = { record: string[]; info: { lines: number } };

function csvError(name: string, e: unknown): FerCleanError {
  if (e instanceof FerCleanError) return e;
  const err = e as Error & { lines?: number };
  return new FerCleanError(`${name}:${err.lines ?? '?'}: malformed CSV: ${err.message.replace(/^Invalid [^:]*: /, '')}`);
}

async function openCsvMatrix(file: string): Promise<MatrixInput> {
  const name = basename(file);
  // The header: the first record of a parser that is then dropped (the rows are read by a fresh one in read()).
  const head = createReadStream(file).pipe(parse({ ...csvOptions, to_line: 1 }));
  let header: string[] | undefined;
  try {
    for await (const r of head as AsyncIterable<CsvRecord>) header ??= r.record;
  } catch (e) {
    throw csvError(name, e);
  }
  if (!header) throw new FerCleanError(`${name}: empty CSV (no header row)`);
  const pathCol = header.findIndex((h) => h.toLowerCase() === 'path');
  if (pathCol < 0) throw new FerCleanError(`${name}:1: no 'path' column in the header (${header.slice(0, 6).join(', ')}${header.length > 6 ? ', ...' : ''})`);
  const seen = new Set<string>();
  for (const h of header) {
    if (seen.has(h)) throw new FerCleanError(`${name}:1: column '${h}' appears twice in the header`);
    seen.add(h);
  }
  const columns = header.filter((_, i) => i !== pathCol);
  if (columns.length === 0) throw new FerCleanError(`${name}:1: no value columns after 'path'`);
  const dim = columns.length;
  return {
    format: 'csv',
    columns,
    dim,
    rows: null,
    dtype: 'text',
    async *read() {
      const parser = createReadStream(file).pipe(parse({ ...csvOptions, from_line: 2 }));
      try {
        for await (const { record, info } of parser as AsyncIterable<CsvRecord>) {
          const where = `${name}:${info.lines}`;
          if (record.length !== header.length) {
            throw new FerCleanError(`${where}: ragged row: ${record.length} fields where the header has ${header.length} (path + ${dim} values)`);
          }
          const values = new Float64Array(dim);
          let k = 0;
          for (let i = 0; i < record.length; i++) {
            if (i === pathCol) continue;
            const s = record[i]!;
            const v = s === '' ? NaN : Number(s);
            if (!Number.isFinite(v)) {
              throw new FerCleanError(`${where}: column '${header[i]}' is ${s === '' ? 'empty' : `'${s}'`}: every value must be a finite number`);
            }
            values[k++] = v;
          }
          yield { path: record[pathCol]!, where, line: info.lines, values };
        }
      } catch (e) {
        parser.destroy();
        throw csvError(name, e);
      }
    },
  };
}

async function openNpyMatrix(file: string, pathsFile: string): Promise<MatrixInput> {
  const name = basename(file);
  const pathsName = basename(pathsFile);
  const npy = await openNpy(file);
  const { rows, cols, dtype } = npy.header;
  await npy.close();
  if (cols === 0) throw new FerCleanError(`${name}: .npy array has 0 columns`);
  return {
    format: 'npy',
    columns: null,
    dim: cols,
    rows,
    dtype,
    async *read() {
      const reader = await openNpy(file);
      const lines = createInterface({ input: createReadStream(pathsFile), crlfDelay: Infinity });
      const it = lines[Symbol.asyncIterator]();
      try {
        for await (const block of reader.blocks()) {
          for (let r = 0; r < block.rows; r++) {
            const row = block.first + r;
            const next = await it.next();
            if (next.done) {
              throw new FerCleanError(`${pathsName} has ${row} lines but ${name} has ${rows} rows: one path per row is needed`);
            }
            const where = `${name} row ${row + 1} (${pathsName}:${row + 1})`;
            const values = block.values.slice(r * cols, (r + 1) * cols);
            for (let j = 0; j < cols; j++) {
              if (!Number.isFinite(values[j]!)) throw new FerCleanError(`${where}: value ${j + 1} is ${values[j]}: every value must be a finite number`);
            }
            yield { path: next.value.trim(), where, line: row + 1, values };
          }
        }
        // Extra lines: a blank last line is allowed (a file ending in a newline gives none anyway).
        let extra = 0;
        for (let n = await it.next(); !n.done; n = await it.next()) if (n.value.trim() !== '') extra++;
        if (extra > 0) throw new FerCleanError(`${pathsName} has ${rows + extra} paths but ${name} has ${rows} rows: one path per row is needed`);
      } finally {
        lines.close();
        await reader.close();
      }
    },
  };
}
