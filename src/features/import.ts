/**
 * Embeddings imported from the user's own model (`fer-clean embed --from FILE`): stored as a backbone of their own
 * (name, the file's hash as version), so training, report, review and export use them like a built-in backbone's.
 * The whole import is one transaction: any bad row leaves the database as it was.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename, extname, isAbsolute, relative, resolve } from 'node:path';
import { FerCleanError } from '../errors.js';
import { nowIso, type DB } from '../store/db.js';
import { getDatasetById } from '../store/datasets.js';
import { BACKBONES, backboneVersion, resolveBackbone } from './backbones.js';
import { usableSql } from './facebox.js';
import { openMatrix, type MatrixInput, type MatrixSource } from './matrix.js';

/** The `engine` recorded with imported embeddings (embeddings.backend). */
export const IMPORTED_BACKEND = 'import';

export interface ImportEmbeddingsOptions extends MatrixSource {
  datasetId: number;
  /** Backbone name to store them under (default: the file's stem, lower-cased). */
  name?: string;
  /**
   * Tolerate images of the dataset that have no row (they are then left out of training on this backbone) and rows
   * whose path names no image of the dataset (skipped). Without it, either is an error and nothing is written.
   */
  skipBad?: boolean;
}

export interface ImportResult {
  name: string;
  version: string;
  dim: number;
  /** Embeddings written. */
  rows: number;
  /** Usable images of the dataset with no row (only with skipBad). */
  missing: number;
  /** Rows skipped because their path names no image (only with skipBad): the first few, with where they are. */
  unmatched: { count: number; first: string[] };
  /** Rows for images flagged unusable at ingest (stored, never trained on). */
  flagged: number;
  seconds: number;
}

/** A backbone name for imported embeddings: lower-case letters, digits, `.`, `_`, `-`; never a built-in's name. */
export function importedBackboneName(name: string): string {
  const n = name.trim().toLowerCase();
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(n) || n.length > 64) {
    throw new FerCleanError(`backbone name '${name}': use letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit (--name NAME)`);
  }
  if (BACKBONES[n]) throw new FerCleanError(`backbone name '${n}' is a built-in backbone: choose another --name for imported embeddings`);
  return n;
}

/** Default name of an import: the file's stem (`feats/vit_b16.npy` -> `vit_b16`), made a valid name. */
export function defaultImportName(file: string): string {
  return basename(file, extname(file))
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '');
}

/** sha256 of the file (and of the paths file, when given): the version stored with the imported embeddings. */
export async function importVersion(src: MatrixSource): Promise<string> {
  const h = createHash('sha256');
  for (const f of [src.file, src.paths]) {
    if (!f) continue;
    for await (const chunk of createReadStream(f)) h.update(chunk as Buffer);
  }
  return `sha256:${h.digest('hex').slice(0, 16)}`;
}

/** How imported rows find their image: by the path the dataset's source wrote, relative to its root, or absolute. */
export interface ImageIndex {
  /** Image id for a path as a user's file wrote it, or undefined. */
  lookup(path: string): number | undefined;
  /** Highest image id of the dataset (to size per-image arrays). */
  maxId: number;
}

export function imageIndex(db: DB, datasetId: number): ImageIndex {
  const dataset = getDatasetById(db, datasetId);
  // One indexed lookup per row (images has UNIQUE (dataset_id, path)): no map of every path held in memory.
  const byPath = db.prepare(`SELECT id FROM images WHERE dataset_id = ? AND path = ?`).pluck();
  const maxId = (db.prepare(`SELECT coalesce(max(id), 0) FROM images WHERE dataset_id = ?`).pluck().get(datasetId) as number) ?? 0;
  const find = (p: string): number | undefined => byPath.get(datasetId, p) as number | undefined;
  return {
    maxId,
    lookup(path) {
      let p = path.replace(/\\/g, '/');
      const direct = find(p);
      if (direct !== undefined) return direct;
      if (isAbsolute(p)) p = relative(dataset.root, resolve(p)).replace(/\\/g, '/');
      const stripped = p.replace(/^(\.\/)+/, '');
      return stripped === path ? undefined : find(stripped);
    },
  };
}

/**
 * Imports a CSV or .npy file of embeddings as backbone `name` for a dataset, in one transaction that also drops the
 * rows of an earlier import under the same name. Every row is checked as it streams in; the first bad one (a path
 * that names no image, a second row for an image, a ragged row, a value that is not a finite number, a paths file
 * of the wrong length) throws a FerCleanError naming the file and line or row, and nothing is written. Images of the
 * dataset with no row are an error too, unless `skipBad`.
 */
export async function importEmbeddings(
  db: DB,
  opts: ImportEmbeddingsOptions,
  onProgress?: (rowsDone: number, rowsTotal: number | null) => void,
): Promise<ImportResult> {
  const t0 = performance.now();
  const dataset = getDatasetById(db, opts.datasetId);
  const name = importedBackboneName(opts.name ?? defaultImportName(opts.file));
  const input = await openMatrix(opts);
  const version = await importVersion(opts);
  const index = imageIndex(db, dataset.id);
  const usable = new Uint8Array(index.maxId + 1);
  for (const r of db.prepare(`SELECT i.id FROM images i WHERE i.dataset_id = ? AND ${usableSql('i')}`).iterate(dataset.id) as IterableIterator<{ id: number }>) {
    usable[r.id] = 1;
  }
  const insert = db.prepare(
    `INSERT INTO embeddings (image_id, backbone, backbone_version, dim, vector, backend, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const now = nowIso();
  // Per image: the line (CSV) or row (.npy) that gave its embedding, 0 for none yet.
  const seen = new Int32Array(index.maxId + 1);
  const unmatched: string[] = [];
  let unmatchedCount = 0;
  let rows = 0;
  let flagged = 0;
  // One write transaction around the streamed rows (better-sqlite3's db.transaction cannot span an await, so it is
  // opened and closed by hand): an error anywhere rolls every row back.
  db.exec('BEGIN IMMEDIATE');
  try {
    db.prepare(`DELETE FROM embeddings WHERE backbone = ? AND image_id IN (SELECT id FROM images WHERE dataset_id = ?)`).run(name, dataset.id);
    const vector = new Float32Array(input.dim);
    const bytes = Buffer.from(vector.buffer);
    for await (const row of input.read()) {
      const id = index.lookup(row.path);
      if (id === undefined) {
        if (!opts.skipBad) {
          throw new FerCleanError(
            `${row.where}: path '${row.path}' names no image of dataset '${dataset.name}' (paths are as its source wrote them, relative to ${dataset.root}; --skip-bad skips such rows)`,
          );
        }
        unmatchedCount++;
        if (unmatched.length < 10) unmatched.push(`${row.where}: ${row.path}`);
        continue;
      }
      if (seen[id]) {
        throw new FerCleanError(`${row.where}: second row for image '${row.path}' (first at ${input.format === 'csv' ? `${basename(opts.file)}:` : 'row '}${seen[id]})`);
      }
      seen[id] = row.line;
      vector.set(row.values);
      insert.run(id, name, version, input.dim, bytes, IMPORTED_BACKEND, now);
      rows++;
      if (!usable[id]) flagged++;
      if (rows % 4096 === 0) onProgress?.(rows, input.rows);
    }
    const missingIds: number[] = [];
    for (let id = 0; id < usable.length; id++) if (usable[id] && !seen[id]) missingIds.push(id);
    if (missingIds.length > 0 && !opts.skipBad) {
      const paths = missingIds.slice(0, 5).map((id) => (db.prepare(`SELECT path FROM images WHERE id = ?`).get(id) as { path: string }).path);
      throw new FerCleanError(
        `${basename(opts.file)}: ${missingIds.length} image${missingIds.length > 1 ? 's' : ''} of dataset '${dataset.name}' ${missingIds.length > 1 ? 'have' : 'has'} no row: ` +
          `${paths.join(', ')}${missingIds.length > 5 ? ', ...' : ''} (--skip-bad imports the others and leaves these out of training on '${name}')`,
      );
    }
    if (rows === 0) throw new FerCleanError(`${basename(opts.file)}: no row names an image of dataset '${dataset.name}'`);
    db.prepare(
      `INSERT OR REPLACE INTO imported_backbones (dataset_id, name, version, dim, source, rows, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(dataset.id, name, version, input.dim, [opts.file, opts.paths].filter(Boolean).map((f) => resolve(f!)).join(' + '), rows, now);
    db.exec('COMMIT');
    onProgress?.(rows, input.rows);
    return {
      name,
      version,
      dim: input.dim,
      rows,
      missing: missingIds.length,
      unmatched: { count: unmatchedCount, first: unmatched },
      flagged,
      seconds: (performance.now() - t0) / 1000,
    };
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw e;
  }
}

/** One part of a (possibly concatenated) backbone, built in or imported, with the version its embeddings carry. */
export interface StoredBackbonePart {
  id: string;
  dim: number;
  version: string;
  /** For an imported backbone: how many images it covers (fewer than the dataset's when imported with --skip-bad). */
  imported?: { rows: number };
}

export interface StoredBackbone {
  /** As asked, normalised. */
  name: string;
  parts: StoredBackbonePart[];
  dim: number;
}

/** An imported backbone of a dataset, or null. */
export function importedBackbone(db: DB, datasetId: number, name: string): { name: string; version: string; dim: number; rows: number; source: string } | null {
  return (
    (db.prepare(`SELECT name, version, dim, rows, source FROM imported_backbones WHERE dataset_id = ? AND name = ?`).get(datasetId, name) as
      | { name: string; version: string; dim: number; rows: number; source: string }
      | undefined) ?? null
  );
}

/** The names of a dataset's imported backbones. */
export function importedBackboneNames(db: DB, datasetId: number): string[] {
  return (db.prepare(`SELECT name FROM imported_backbones WHERE dataset_id = ? ORDER BY name`).all(datasetId) as { name: string }[]).map((r) => r.name);
}

/**
 * Resolves `a` or `a+b+...` where each part is a built-in backbone or one imported for this dataset. An unknown
 * name is a FerCleanError listing both kinds.
 */
export function resolveStoredBackbone(db: DB, datasetId: number, name: string): StoredBackbone {
  const ids = name.split('+').map((s) => s.trim().toLowerCase());
  const parts: StoredBackbonePart[] = [];
  for (const id of ids) {
    const imp = importedBackbone(db, datasetId, id);
    if (imp) {
      if (parts.some((p) => p.id === id)) throw new FerCleanError(`backbone '${id}' appears twice in '${name}'`);
      parts.push({ id, dim: imp.dim, version: imp.version, imported: { rows: imp.rows } });
      continue;
    }
    if (!BACKBONES[id]) {
      const imported = importedBackboneNames(db, datasetId);
      throw new FerCleanError(
        `unknown backbone '${id}' in '${name}' (built in: ${Object.keys(BACKBONES).join(', ')}; imported: ${imported.length ? imported.join(', ') : 'none, see `fer-clean embed --from FILE`'})`,
      );
    }
    const b = resolveBackbone(id).parts[0]!;
    if (parts.some((p) => p.id === b.id)) throw new FerCleanError(`backbone '${id}' appears twice in '${name}'`);
    parts.push({ id: b.id, dim: b.dim, version: backboneVersion(b) });
  }
  return { name: parts.map((p) => p.id).join('+'), parts, dim: parts.reduce((s, p) => s + p.dim, 0) };
}

export type { MatrixInput };
