import { isAbsolute, join } from 'node:path';
import { FerCleanError } from '../errors.js';
import type { DB } from './db.js';

export interface DatasetRow {
  id: number;
  name: string;
  format: string;
  source: string;
  root: string;
  taxonomy: string[];
  options: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

/** The file of a stored image path: an absolute path as it is, a relative one under the dataset's root. */
export const imageFile = (root: string, path: string): string => (isAbsolute(path) ? path : join(root, path));

type RawDataset = Omit<DatasetRow, 'taxonomy' | 'options'> & { taxonomy: string; options: string };

const decode = (r: RawDataset): DatasetRow => ({ ...r, taxonomy: JSON.parse(r.taxonomy), options: JSON.parse(r.options) });

export function listDatasets(db: DB): DatasetRow[] {
  return (db.prepare(`SELECT * FROM datasets ORDER BY id`).all() as RawDataset[]).map(decode);
}

export function getDatasetById(db: DB, id: number): DatasetRow {
  const r = db.prepare(`SELECT * FROM datasets WHERE id = ?`).get(id) as RawDataset | undefined;
  if (!r) throw new FerCleanError(`no dataset with id ${id}`);
  return decode(r);
}

/**
 * The dataset a command works on: the one named, else the only one in the database.
 * An empty database or an ambiguous choice is a clear error.
 */
export function resolveDataset(db: DB, name?: string): DatasetRow {
  const all = listDatasets(db);
  if (name !== undefined) {
    const d = all.find((x) => x.name === name);
    if (!d) {
      const known = all.map((x) => x.name).join(', ') || 'none';
      throw new FerCleanError(`no dataset named '${name}' (datasets in this database: ${known})`);
    }
    return d;
  }
  if (all.length === 0) throw new FerCleanError('the database holds no dataset yet: run `fer-clean ingest SOURCE` first');
  if (all.length > 1) {
    throw new FerCleanError(`the database holds ${all.length} datasets (${all.map((x) => x.name).join(', ')}): pick one with --dataset NAME`);
  }
  return all[0]!;
}
