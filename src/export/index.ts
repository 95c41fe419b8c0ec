import { stringify } from 'csv-stringify/sync';
import type { Writable } from 'node:stream';
import sharp from 'sharp';
import { FerCleanError } from '../errors.js';
import type { DB } from '../store/db.js';
import { imageFile, type DatasetRow } from '../store/datasets.js';
import { resolveRun } from '../store/runs.js';
import { encodeLabel, type LabelEncoding } from '../taxonomy.js';
import { openOutput } from './output.js';
import { loadEstimates, refit } from '../review/estimates.js';
import { lastQualityCheck, redundantImageIds } from '../quality/index.js';

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
  'estimate',
  'reference_label',
] as const;

export type ExportFormat = 'csv' | 'same';

export interface ExportOptions {
  dataset: DatasetRow;
  /** A file path (see openOutput: files are replaced atomically, devices and pipes written to), or a stream (stdout). */
  out: string | Writable;
  /** Run whose SCN fields (importance, proposal) are exported; default: the dataset's latest finished run. */
  runId?: number;
  /** Only images with a review decision. */
  onlyDecided?: boolean;
  /** Undecided images that have a proposal take the proposed label (the run's proposals, unreviewed). */
  includeUndecidedProposals?: boolean;
  format?: ExportFormat;
  /** Leave out images whose label is not an expression class (labels.trainable = 0: AffectNet none, uncertain, no-face); kept by default. */
  dropNonExpression?: boolean;
  /**
   * Duplicate images as `fer-clean quality` last grouped them: 'keep' (default) writes every image, 'drop' writes one
   * image per group (a test image first, then valid, then train; see redundantImageIds).
   */
  dedupe?: 'keep' | 'drop';
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
  /** Estimated P(a reviewer accepts the proposal), refitted on the decisions so far; null without a proposal. */
  estimate: number | null;
  reference_label: string | null;
  /** 0 when the label is not an expression class (kept as it is, never trained on). */
  trainable: number;
  // for --format same
  given_raw: string;
  source_line: number | null;
  source_row: string | null;
}

export interface ExportSummary {
  /** The path written, or 'standard output' for a stream. */
  out: string;
  runId: number | null;
  rows: number;
  changed: number;
  decisions: { accepted: number; rejected: number; manual: number };
  proposalsApplied: number;
}

/** Final labels: an accepted proposal or a manual label wins; rejected and undecided keep the original. */
export function finalLabels(db: DB, opts: Omit<ExportOptions, 'out' | 'format'>): { runId: number | null; rows: ExportRow[] } {
  const runId = exportRunIdOf(db, opts);
  return { runId, rows: [...finalLabelRows(db, runId, opts)] };
}

/** The run asked for (this dataset's, finished), else the dataset's latest finished run, else none. */
function exportRunIdOf(db: DB, opts: Pick<ExportOptions, 'runId' | 'dataset'>): number | null {
  return resolveRun(db, { runId: opts.runId, dataset: opts.dataset, purpose: 'to export', optional: true })?.id ?? null;
}

/**
 * The final labels one row at a time, in image-id order (streamed from SQLite, so a million-image export never
 * holds every row in memory). `+i.dataset_id` keeps SQLite from picking an index on dataset_id, which would then
 * sort every row by id in a temporary B-tree: a scan in rowid order needs no sort (25% faster at 100,000 rows).
 */
export function* finalLabelRows(db: DB, runId: number | null, opts: Omit<ExportOptions, 'out' | 'format' | 'runId'>): Generator<ExportRow> {
  // Read before the rows are streamed (the connection runs no other statement while an iterator is open).
  const estimates = runId === null ? new Map<number, number>() : proposalEstimates(db, runId);
  const dropped = opts.dedupe === 'drop' ? duplicatesToDrop(db, opts.dataset) : null;
  const raw = db
    .prepare(
      `SELECT i.id AS image_id, i.path, i.split, i.source_line, i.source_row, l.given AS original_label, l.given_raw, l.trainable, l.reference AS reference_label,
              d.action, d.new_label, d.annotator, d.decided_at,
              ri.importance, ri.proposed_label, ri.proposal_margin
       FROM images i
       JOIN labels l ON l.image_id = i.id
       LEFT JOIN effective_decisions d ON d.image_id = i.id
       LEFT JOIN run_images ri ON ri.run_id = ? AND ri.image_id = i.id
       WHERE +i.dataset_id = ? AND (? = 0 OR l.trainable = 1)
       ORDER BY i.id`,
    )
    .iterate(runId, opts.dataset.id, opts.dropNonExpression ? 1 : 0) as IterableIterator<
    Omit<ExportRow, 'final_label' | 'changed' | 'decision' | 'estimate'> & { image_id: number; action: string | null; new_label: string | null }
  >;
  for (const r of raw) {
    if (opts.onlyDecided && !r.action) continue;
    if (dropped?.has(r.image_id)) continue;
    let final = r.original_label;
    if (r.action === 'accepted' || r.action === 'manual') final = r.new_label!;
    else if (!r.action && opts.includeUndecidedProposals && r.proposed_label) final = r.proposed_label;
    const { image_id, action, new_label: _n, ...rest } = r;
    yield {
      ...rest,
      path: pathAsWritten(opts.dataset, r),
      final_label: final,
      estimate: estimates.get(image_id) ?? null,
      changed: final === r.original_label ? 0 : 1,
      decision: (action ?? 'none') as ExportRow['decision'],
    };
  }
}

/** The images `--dedupe drop` leaves out; an error when the dataset's duplicates were never looked for. */
function duplicatesToDrop(db: DB, dataset: DatasetRow): Set<number> {
  if (!lastQualityCheck(db, dataset.id)) {
    throw new FerCleanError(`dataset '${dataset.name}' has not been checked for duplicates: run \`fer-clean quality --dataset ${dataset.name}\` first`);
  }
  return redundantImageIds(db, dataset.id);
}

/**
 * An image's path as its source wrote it (the path column of its CSV record: `./faces/x.png` stays so, an absolute
 * path stays absolute); the stored path for sources without one (class folders, RAF-DB, fer2013).
 */
function pathAsWritten(dataset: DatasetRow, r: { path: string; source_row: string | null }): string {
  const col = (dataset.options as { pathColumn?: string }).pathColumn;
  if (!col || !r.source_row) return r.path;
  const row = JSON.parse(r.source_row) as Record<string, unknown>;
  const record = (dataset.format === 'affectnet' ? row['record'] : row) as Record<string, string> | undefined;
  return record?.[col] ?? r.path;
}

/** The run's estimate for each proposal, by image id (rounded to 4 decimals). */
function proposalEstimates(db: DB, runId: number): Map<number, number> {
  const e = loadEstimates(db, resolveRun(db, { runId }));
  refit(db, e);
  return new Map(e.items.map((it, i) => [it.imageId, Math.round(e.model.estimate(i) * 1e4) / 1e4]));
}

/** Rows per CSV chunk written at once. */
const CHUNK_ROWS = 5000;

/**
 * Writes the final labels as CSV (or in the dataset's own format) to `opts.out`: a file is replaced atomically
 * (temp file, then rename, keeping its mode; see openOutput for links, devices and pipes), a stream is written to.
 */
export async function exportLabels(db: DB, opts: ExportOptions): Promise<ExportSummary> {
  const format = opts.format ?? 'csv';
  const runId = exportRunIdOf(db, opts);
  const summary: ExportSummary = {
    out: typeof opts.out === 'string' ? opts.out : 'standard output',
    runId,
    rows: 0,
    changed: 0,
    decisions: { accepted: 0, rejected: 0, manual: 0 },
    proposalsApplied: 0,
  };
  const count = (r: ExportRow): void => {
    summary.rows++;
    if (r.changed) summary.changed++;
    if (r.decision !== 'none') summary.decisions[r.decision]++;
    else if (r.changed) summary.proposalsApplied++;
  };
  if (format === 'same') {
    const rows = [...finalLabelRows(db, runId, opts)];
    rows.forEach(count);
    const text = await sameFormat(opts.dataset, rows); // checks the format before anything is opened
    const output = openOutput(opts.out);
    try {
      await output.write(text);
      await output.commit();
    } catch (e) {
      output.abort();
      throw e;
    }
    return summary;
  }
  const output = openOutput(opts.out);
  try {
    await output.write(stringify([], { header: true, columns: [...EXPORT_COLUMNS] }));
    let chunk: ExportRow[] = [];
    for (const r of finalLabelRows(db, runId, opts)) {
      count(r);
      chunk.push(r);
      if (chunk.length === CHUNK_ROWS) {
        await output.write(toCsv(chunk));
        chunk = [];
      }
    }
    if (chunk.length) await output.write(toCsv(chunk));
    await output.commit();
  } catch (e) {
    output.abort();
    throw e;
  }
  return summary;
}

/** CSV lines (no header) for some rows. */
function toCsv(rows: ExportRow[]): string {
  return stringify(rows.map((r) => EXPORT_COLUMNS.map((c) => r[c] ?? '')));
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
    case 'affectnet':
      return affectNetText(o as AffectNetOptions, ordered, label);
    case 'rafdb':
      return ordered.map((r) => `${(JSON.parse(r.source_row!) as { name: string }).name} ${encodeLabel(r.final_label, 'rafdb')}`).join('\n') + '\n';
    case 'fer2013': {
      const data: string[][] = [];
      for (const r of ordered) {
        const { data: px } = await sharp(imageFile(dataset.root, r.path)).greyscale().raw().toBuffer({ resolveWithObject: true });
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

interface AffectNetOptions {
  labelColumn: string;
  header: string[];
  /** The header line's bytes as read, BOM and line ending included. */
  headerText: string;
  /** Whatever followed the last row (blank lines). */
  tailText: string;
}

/**
 * AffectNet's annotation file as it was read: the header, then each row's own bytes in source order; a row whose
 * expression changed is written anew (csv-stringify) with its line ending kept. Nothing changed = the same bytes.
 */
function affectNetText(o: AffectNetOptions, rows: ExportRow[], label: (r: ExportRow) => string): string {
  const parts = [o.headerText];
  for (const r of rows) {
    const { record, text } = JSON.parse(r.source_row!) as { record: Record<string, string>; text: string };
    if (r.final_label === r.original_label) {
      parts.push(text);
      continue;
    }
    const [, before, ending] = /^((?:\r?\n)*)[\s\S]*?(\r?\n)?$/.exec(text)!;
    const line = stringify([o.header.map((h) => (h === o.labelColumn ? label(r) : record[h]!))], { record_delimiter: '' });
    parts.push(`${before ?? ''}${line}${ending ?? ''}`);
  }
  parts.push(o.tailText);
  return parts.join('');
}
