import { stringify } from 'csv-stringify/sync';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import sharp from 'sharp';
import { FerCleanError } from '../errors.js';
import type { DB } from '../store/db.js';
import type { DatasetRow } from '../store/datasets.js';
import { resolveRun } from '../store/runs.js';
import { encodeLabel, type LabelEncoding } from '../taxonomy.js';

export const EXPORT_COLUMNS = [
  'path',
  'split',
  'original_label',
  'final_label',
  'changed',
  'decision',
  'annotator',
  'decided_at',
  'importance',
  'proposed_label',
  'proposal_margin',
  'reference_label',
] as const;

export type ExportFormat = 'csv' | 'same';

export interface ExportOptions {
  dataset: DatasetRow;
  out: string;
  /** Run whose SCN fields (importance, proposal) are exported; default: the dataset's latest finished run. */
  runId?: number;
  /** Only images with a review decision. */
  onlyDecided?: boolean;
  /** Undecided images that have a proposal take the proposed label (the run's proposals, unreviewed). */
  includeUndecidedProposals?: boolean;
  format?: ExportFormat;
}

export interface ExportRow {
  path: string;
  split: string;
  original_label: string;
  final_label: string;
  changed: number;
  decision: 'none' | 'accepted' | 'rejected' | 'manual';
  annotator: string | null;
  decided_at: string | null;
  importance: number | null;
  proposed_label: string | null;
  proposal_margin: number | null;
  reference_label: string | null;
  // for --format same
  given_raw: string;
  source_line: number | null;
  source_row: string | null;
}

export interface ExportSummary {
  out: string;
  runId: number | null;
  rows: number;
  changed: number;
  decisions: { accepted: number; rejected: number; manual: number };
  proposalsApplied: number;
}

/** Final labels: an accepted proposal or a manual label wins; rejected and undecided keep the original. */
export function finalLabels(db: DB, opts: Omit<ExportOptions, 'out' | 'format'>): { runId: number | null; rows: ExportRow[] } {
  // The run asked for (this dataset's, finished), else the dataset's latest finished run, else none.
  const runId = resolveRun(db, { runId: opts.runId, dataset: opts.dataset, purpose: 'to export', optional: true })?.id ?? null;
  const raw = db
    .prepare(
      `SELECT i.path, i.split, i.source_line, i.source_row, l.given AS original_label, l.given_raw, l.reference AS reference_label,
              d.action, d.new_label, d.annotator, d.decided_at,
              ri.importance, ri.proposed_label, ri.proposal_margin
       FROM images i
       JOIN labels l ON l.image_id = i.id
       LEFT JOIN effective_decisions d ON d.image_id = i.id
       LEFT JOIN run_images ri ON ri.run_id = ? AND ri.image_id = i.id
       WHERE i.dataset_id = ?
       ORDER BY i.id`,
    )
    .all(runId, opts.dataset.id) as (Omit<ExportRow, 'final_label' | 'changed' | 'decision'> & { action: string | null; new_label: string | null })[];
  const rows: ExportRow[] = [];
  for (const r of raw) {
    if (opts.onlyDecided && !r.action) continue;
    let final = r.original_label;
    if (r.action === 'accepted' || r.action === 'manual') final = r.new_label!;
    else if (!r.action && opts.includeUndecidedProposals && r.proposed_label) final = r.proposed_label;
    const { action, new_label: _n, ...rest } = r;
    rows.push({
      ...rest,
      final_label: final,
      changed: final === r.original_label ? 0 : 1,
      decision: (action ?? 'none') as ExportRow['decision'],
    });
  }
  return { runId, rows };
}

/** Writes the final labels as CSV (or in the dataset's own format), atomically: a temp file then a rename. */
export async function exportLabels(db: DB, opts: ExportOptions): Promise<ExportSummary> {
  const format = opts.format ?? 'csv';
  const { runId, rows } = finalLabels(db, opts);
  const text = format === 'same' ? await sameFormat(opts.dataset, rows) : toCsv(rows);
  writeAtomically(opts.out, text);
  const count = (a: string): number => rows.filter((r) => r.decision === a).length;
  return {
    out: opts.out,
    runId,
    rows: rows.length,
    changed: rows.filter((r) => r.changed).length,
    decisions: { accepted: count('accepted'), rejected: count('rejected'), manual: count('manual') },
    proposalsApplied: rows.filter((r) => r.decision === 'none' && r.changed).length,
  };
}

function toCsv(rows: ExportRow[]): string {
  return stringify(
    rows.map((r) => EXPORT_COLUMNS.map((c) => r[c] ?? '')),
    { header: true, columns: [...EXPORT_COLUMNS] },
  );
}

/** The dataset's ingest format, with its label column replaced by the final label in the source's own encoding. */
async function sameFormat(dataset: DatasetRow, rows: ExportRow[]): Promise<string> {
  const o = dataset.options as { labelEncoding?: LabelEncoding; labelColumn?: string; header?: string[] };
  const encoding = o.labelEncoding ?? 'names';
  const label = (r: ExportRow): string => (r.final_label === r.original_label ? r.given_raw : encodeLabel(r.final_label, encoding));
  const ordered = [...rows].sort((a, b) => (a.source_line ?? 0) - (b.source_line ?? 0));
  switch (dataset.format) {
    case 'csv':
    case 'ferplus': {
      const header = o.header!;
      const data = ordered.map((r) => {
        const rec = JSON.parse(r.source_row!) as Record<string, string>;
        rec[o.labelColumn!] = label(r);
        return header.map((h) => rec[h] ?? '');
      });
      return stringify(data, { header: true, columns: header });
    }
    case 'rafdb':
      return ordered.map((r) => `${(JSON.parse(r.source_row!) as { name: string }).name} ${encodeLabel(r.final_label, 'rafdb')}`).join('\n') + '\n';
    case 'fer2013': {
      const data: string[][] = [];
      for (const r of ordered) {
        const { data: px } = await sharp(join(dataset.root, r.path)).greyscale().raw().toBuffer({ resolveWithObject: true });
        data.push([encodeLabel(r.final_label, 'fer2013'), Array.from(px).join(' '), (JSON.parse(r.source_row!) as { Usage: string }).Usage]);
      }
      return stringify(data, { header: true, columns: ['emotion', 'pixels', 'Usage'] });
    }
    default:
      throw new FerCleanError(
        `export --format same is not available for ${dataset.format} datasets (it would mean moving image files); export the default CSV`,
      );
  }
}

/**
 * Writes `text` to `path` so that a reader sees the old file or the whole new one, never a part. `write` writes the
 * text to the temp file's descriptor (a test passes one that fails like a full disk).
 */
export function writeAtomically(path: string, text: string, write: (fd: number, text: string) => void = (fd, t) => void writeSync(fd, t)): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now()}`);
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw new FerCleanError(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    write(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new FerCleanError(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
