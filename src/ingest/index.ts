import { join, resolve } from 'node:path';
import { FerCleanError } from '../errors.js';
import { nowIso, type DB } from '../store/db.js';
import { canonicalLabel, defaultTaxonomy, LabelError } from '../taxonomy.js';
import { readFer2013, writeFer2013Images } from './fer2013.js';
import { inspectAll, type ImageInfo } from './images.js';
import { detectFormat, readCsvSource, readImageFolder, readRafDb } from './sources.js';
import {
  FORMATS,
  problemText,
  type DuplicateGroup,
  type Format,
  type IngestOptions,
  type IngestSummary,
  type Problem,
  type ProgressFn,
  type SourceItem,
  type SourceListing,
} from './types.js';

export * from './types.js';

/** Problems listed in an error before "... and N more". */
const MAX_LISTED = 50;

interface Resolved {
  item: SourceItem;
  given: string;
  reference: string | null;
  info?: ImageInfo;
}

async function readSource(opts: IngestOptions, format: Format): Promise<SourceListing> {
  switch (format) {
    case 'csv':
    case 'ferplus':
      return readCsvSource(opts, format);
    case 'imagefolder':
      return readImageFolder(opts);
    case 'rafdb':
      return readRafDb(opts);
    case 'fer2013':
      return readFer2013(opts);
  }
}

/** Maps labels to classes and drops repeated paths; every bad item becomes a problem naming where it is. */
function resolveLabels(listing: SourceListing, taxonomy: string[], problems: Problem[]): { resolved: Resolved[]; repeatedLines: number } {
  const byPath = new Map<string, Resolved>();
  const conflicted = new Set<string>();
  let repeatedLines = 0;
  for (const item of listing.items) {
    let given: string;
    let reference: string | null = null;
    try {
      given = canonicalLabel(item.labelRaw, listing.labelEncoding, taxonomy);
      if (typeof item.reference === 'string') reference = canonicalLabel(item.reference, listing.labelEncoding, taxonomy);
    } catch (e) {
      if (!(e instanceof LabelError)) throw e;
      // A numeric label without an encoding is a property of the whole source: say it once.
      if (e.message.startsWith('numeric label')) throw new FerCleanError(`${item.where}: ${e.message}`);
      problems.push({ where: item.where, message: e.message, path: item.path });
      continue;
    }
    const first = byPath.get(item.path);
    if (first) {
      if (first.given === given) {
        repeatedLines++;
      } else {
        problems.push({
          where: item.where,
          message: `${item.path} is listed again with label '${item.labelRaw}' (first at ${first.item.where} with '${first.item.labelRaw}')`,
          path: item.path,
        });
        conflicted.add(item.path);
      }
      continue;
    }
    byPath.set(item.path, { item, given, reference });
  }
  return { resolved: [...byPath.values()].filter((r) => !conflicted.has(r.item.path)), repeatedLines };
}

/**
 * Ingests a dataset into the store: reads the source in its format, maps every label to the taxonomy, opens and
 * hashes every image with sharp, then writes everything in one transaction. Any problem fails the whole ingest
 * (nothing written) unless `skipBad`, which ingests the rest and lists what it skipped. Re-ingesting the same
 * source changes nothing.
 */
export async function ingest(db: DB, opts: IngestOptions, onProgress?: ProgressFn): Promise<IngestSummary> {
  if (opts.format !== undefined && !FORMATS.includes(opts.format)) {
    throw new FerCleanError(`unknown format '${opts.format}' (choose ${FORMATS.join(', ')})`);
  }
  const format = opts.format ?? detectFormat(opts.source);
  const listing = await readSource(opts, format);
  const taxonomy = defaultTaxonomy(opts.contempt ?? false);
  const problems: Problem[] = [...listing.problems];
  const { resolved, repeatedLines } = resolveLabels(listing, taxonomy, problems);

  if (problems.length && !opts.skipBad) throw problemsError(opts.source, problems);
  if (format === 'fer2013') await writeFer2013Images(listing, new Set(resolved.map((r) => join(listing.root, r.item.path))));

  const results = await inspectAll(
    resolved.map((r) => join(listing.root, r.item.path)),
    { concurrency: opts.concurrency, workers: opts.workers },
    onProgress && ((done) => onProgress(done, resolved.length)),
  );
  const good: Resolved[] = [];
  results.forEach((res, i) => {
    const r = resolved[i]!;
    if (res.ok) good.push({ ...r, info: res.info });
    else {
      const where = r.item.where === r.item.path ? r.item.path : `${r.item.where}: ${r.item.path}`;
      problems.push({ where, message: res.error, path: r.item.path });
    }
  });
  if (problems.length && !opts.skipBad) throw problemsError(opts.source, problems);
  if (good.length === 0) throw new FerCleanError(`${opts.source}: no images to ingest${problems.length ? ` (all ${problems.length} had problems)` : ''}`);

  const name = opts.name ?? listing.name;
  const summary = db.transaction(() => write(db, { ...listing, format }, name, taxonomy, good, resolve(opts.source)))();
  return { ...summary, skipped: problems, repeatedLines };
}

function problemsError(source: string, problems: Problem[]): FerCleanError {
  const listed = problems.slice(0, MAX_LISTED).map(problemText);
  if (problems.length > MAX_LISTED) listed.push(`... and ${problems.length - MAX_LISTED} more`);
  const n = problems.length;
  return new FerCleanError(
    `${n} problem${n > 1 ? 's' : ''} in ${source}; nothing was written (fix ${n > 1 ? 'them' : 'it'}, or pass --skip-bad to ingest the rest):`,
    listed,
  );
}

/** An image and its labels as the database holds them, to tell what a re-ingest changes. */
interface StoredImage {
  id: number;
  sha256: string;
  split: string;
  given: string;
  given_raw: string;
  reference: string | null;
  reference_votes: string | null;
  source_line: number | null;
  source_row: string | null;
}

function write(
  db: DB,
  listing: SourceListing,
  name: string,
  taxonomy: string[],
  good: Resolved[],
  source: string,
): Omit<IngestSummary, 'skipped' | 'repeatedLines'> {
  const now = nowIso();
  let ds = db.prepare(`SELECT id, format, taxonomy FROM datasets WHERE name = ?`).get(name) as
    | { id: number; format: string; taxonomy: string }
    | undefined;
  if (ds && ds.taxonomy !== JSON.stringify(taxonomy)) {
    throw new FerCleanError(`dataset '${name}' already exists with classes ${ds.taxonomy}; ingest under another --name`);
  }
  if (ds && ds.format !== listing.format) {
    throw new FerCleanError(`dataset '${name}' already exists in format ${ds.format}, not ${listing.format}; ingest under another --name`);
  }
  const options = JSON.stringify({ ...listing.options, labelEncoding: listing.labelEncoding });
  if (!ds) {
    const id = db
      .prepare(`INSERT INTO datasets (name, format, source, root, taxonomy, options, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(name, listing.format, source, listing.root, JSON.stringify(taxonomy), options, now, now).lastInsertRowid;
    ds = { id: Number(id), format: listing.format, taxonomy: JSON.stringify(taxonomy) };
  }
  const existing = new Map<string, StoredImage>();
  for (const row of db
    .prepare(
      `SELECT i.id, i.path, i.sha256, i.split, i.source_line, i.source_row, l.given, l.given_raw, l.reference, l.reference_votes
       FROM images i JOIN labels l ON l.image_id = i.id WHERE i.dataset_id = ?`,
    )
    .all(ds.id) as (StoredImage & { path: string })[]) {
    existing.set(row.path, row);
  }
  const insertImage = db.prepare(
    `INSERT INTO images (dataset_id, path, sha256, width, height, channels, split, source_line, source_row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const updateImage = db.prepare(
    `UPDATE images SET sha256 = ?, width = ?, height = ?, channels = ?, split = ?, source_line = ?, source_row = ? WHERE id = ?`,
  );
  const upsertLabel = db.prepare(
    `INSERT INTO labels (image_id, given, given_raw, reference, reference_votes) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (image_id) DO UPDATE SET given = excluded.given, given_raw = excluded.given_raw,
       reference = excluded.reference, reference_votes = excluded.reference_votes`,
  );
  let added = 0;
  let updated = 0;
  let unchanged = 0;
  const seen = new Set<string>();
  for (const r of good) {
    const info = r.info!;
    const votes = r.item.referenceVotes ? JSON.stringify(r.item.referenceVotes) : null;
    const sourceRow = r.item.record ? JSON.stringify(r.item.record) : null;
    const line = r.item.line ?? null;
    const old = existing.get(r.item.path);
    seen.add(r.item.path);
    if (!old) {
      const id = insertImage.run(ds.id, r.item.path, info.sha256, info.width, info.height, info.channels, r.item.split, line, sourceRow).lastInsertRowid;
      upsertLabel.run(id, r.given, r.item.labelRaw, r.reference, votes);
      added++;
      continue;
    }
    const same =
      old.sha256 === info.sha256 &&
      old.split === r.item.split &&
      old.given === r.given &&
      old.given_raw === r.item.labelRaw &&
      old.reference === r.reference &&
      old.reference_votes === votes &&
      old.source_line === line &&
      old.source_row === sourceRow;
    if (same) {
      unchanged++;
      continue;
    }
    updateImage.run(info.sha256, info.width, info.height, info.channels, r.item.split, line, sourceRow, old.id);
    upsertLabel.run(old.id, r.given, r.item.labelRaw, r.reference, votes);
    updated++;
  }
  if (added || updated) {
    db.prepare(`UPDATE datasets SET source = ?, root = ?, options = ?, updated_at = ? WHERE id = ?`).run(source, listing.root, options, now, ds.id);
  }
  const missingFromSource = [...existing.keys()].filter((p) => !seen.has(p)).length;

  const classes: Record<string, number> = {};
  const splits: Record<string, number> = {};
  let compared = 0;
  let agree = 0;
  const byHash = new Map<string, Resolved[]>();
  for (const r of good) {
    classes[r.given] = (classes[r.given] ?? 0) + 1;
    splits[r.item.split] = (splits[r.item.split] ?? 0) + 1;
    if (r.reference !== null) {
      compared++;
      if (r.reference === r.given) agree++;
    }
    const list = byHash.get(r.info!.sha256);
    if (list) list.push(r);
    else byHash.set(r.info!.sha256, [r]);
  }
  const duplicates: DuplicateGroup[] = [];
  for (const [sha256, list] of byHash) {
    if (list.length < 2) continue;
    const labels = list.map((r) => r.given);
    duplicates.push({ sha256, paths: list.map((r) => r.item.path), labels, conflicting: new Set(labels).size > 1 });
  }
  const hasReference = good.some((r) => r.item.reference !== undefined);
  return {
    dataset: { id: ds.id, name, format: listing.format, root: listing.root },
    images: good.length,
    added,
    updated,
    unchanged,
    missingFromSource,
    classes,
    splits,
    duplicates,
    agreement: hasReference ? { compared, agree } : null,
  };
}
