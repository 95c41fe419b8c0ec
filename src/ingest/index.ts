import { resolve } from 'node:path';
import { FerCleanError } from '../errors.js';
import { boxProblem, UNUSABLE_QUALITIES } from '../features/facebox.js';
import { imageFile } from '../store/datasets.js';
import { nowIso, type DB } from '../store/db.js';
import {
  CONTEMPT,
  describeLabels,
  LabelError,
  MAX_CLASSES,
  NO_FACE,
  parseClassList,
  readLabel,
  taxonomyFor,
  UnknownLabelError,
  type LabelClass,
} from '../taxonomy.js';
import { keptBytes, readAffectNet } from './affectnet.js';
import { readFer2013, writeFer2013Images } from './fer2013.js';
import { inspectAll, type ImageInfo } from './images.js';
import { detectFormat, readCsvSource, readImageFolder, readRafDb } from './sources.js';
import {
  FORMATS,
  REPEATS_KEY,
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
  /** Canonical class, or a non-expression label (AffectNet none / uncertain / no-face) when not trainable. */
  given: string;
  trainable: boolean;
  reference: string | null;
  info?: ImageInfo;
  /** Later lines naming the same image identically: kept with it so `export --format same` writes every line back. */
  repeats?: SourceItem[];
}

/**
 * The record fields in which a repeated line differs from the first line naming the image: every column but the
 * path (`./a.png` and `a.png` name one image) and the label (compared as a class). Empty when they agree.
 */
function differingFields(listing: SourceListing, a: SourceItem, b: SourceItem): string[] {
  if (!a.record || !b.record) return [];
  const o = listing.options as { pathColumn?: string; labelColumn?: string };
  const skip = new Set([o.pathColumn, o.labelColumn, ...(listing.format === 'rafdb' ? ['name', 'label'] : [])]);
  const keys = new Set([...Object.keys(a.record), ...Object.keys(b.record)]);
  return [...keys].filter((k) => !skip.has(k) && (a.record![k] ?? '').trim() !== (b.record![k] ?? '').trim());
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
    case 'affectnet':
      return readAffectNet(opts);
  }
}

/**
 * Reads every item's label (and reference), picks the dataset's classes from the data (or the declared ones), and
 * drops repeated paths; every bad item becomes a problem naming where it is. Labels that name no FER class are
 * reported once per label, with the classes found and how to declare a class list. `existing`: the classes of the
 * dataset already stored under this name, kept when they cover the data.
 */
function resolveLabels(
  listing: SourceListing,
  opts: Pick<IngestOptions, 'classes' | 'contempt' | 'source'>,
  existing: string[] | undefined,
  problems: Problem[],
): { resolved: Resolved[]; repeatedLines: number; taxonomy: string[]; hint?: string } {
  const read: Resolved[] = [];
  const unknown = new Map<string, { where: string; count: number }>();
  const found = new Map<string, number>();
  for (const item of listing.items) {
    let label: LabelClass;
    let reference: string | null = null;
    try {
      label = readLabel(item.labelRaw, listing.labelEncoding, opts.classes);
      if (typeof item.reference === 'string') reference = readLabel(item.reference, listing.labelEncoding, opts.classes).cls;
    } catch (e) {
      if (!(e instanceof LabelError)) throw e;
      // A numeric label without an encoding is a property of the whole source: say it once.
      if (e.message.startsWith('numeric label')) throw new FerCleanError(`${item.where}: ${e.message}`);
      if (e instanceof UnknownLabelError) {
        const u = unknown.get(e.label);
        if (u) u.count++;
        else unknown.set(e.label, { where: item.where, count: 1 });
        found.set(e.label, (found.get(e.label) ?? 0) + 1);
      } else problems.push({ where: item.where, message: e.message, path: item.path });
      continue;
    }
    if (label.trainable) found.set(label.cls, (found.get(label.cls) ?? 0) + 1);
    read.push({ item, given: label.cls, trainable: label.trainable, reference });
  }
  let hint: string | undefined;
  if (unknown.size) {
    for (const [label, u] of unknown) {
      problems.push({ where: u.where, message: `unknown label '${label}'${u.count > 1 ? ` (${u.count} rows)` : ''}: not a FER class` });
    }
    const list = [...found].map(([c, n]) => `${c} ${n}`).join(', ');
    hint =
      `labels found: ${list}. FER classes are ${describeLabels()}. ` +
      `To keep your own classes, declare them in order with --classes ${[...found.keys()].slice(0, MAX_CLASSES).join(',')} (2 to ${MAX_CLASSES}: review picks them with the keys 1-9)`;
  }

  const classes = [...found.keys()].filter((c) => !unknown.has(c));
  const refs = read.map((r) => r.reference).filter((r): r is string => r !== null);
  const covers = (tax: string[]): boolean => [...classes, ...refs].every((c) => tax.includes(c)) && (!opts.contempt || tax.includes(CONTEMPT));
  const taxonomy =
    opts.classes ??
    (existing && covers(existing) ? existing : taxonomyFor([...classes, ...refs], { withContempt: opts.contempt }));

  const byPath = new Map<string, Resolved>();
  const conflicted = new Set<string>();
  let repeatedLines = 0;
  for (const r of read) {
    const { item } = r;
    const outside = [r.trainable ? r.given : null, r.reference].find((c) => c !== null && !taxonomy.includes(c));
    if (outside) {
      problems.push({ where: item.where, message: `label '${outside}' is not in this dataset's classes (${taxonomy.join(', ')})`, path: item.path });
      continue;
    }
    const first = byPath.get(item.path);
    if (first) {
      const differs = first.given === r.given ? differingFields(listing, first.item, item) : [];
      if (first.given === r.given && differs.length === 0) {
        repeatedLines++;
        (first.repeats ??= []).push(item);
      } else if (differs.length) {
        // a repeat is checked like any row: a different face box, landmarks or split is not silently dropped
        problems.push({
          where: item.where,
          message: `${item.path} is listed again with a different ${differs.join(', ')} (first at ${first.item.where})`,
          path: item.path,
        });
        conflicted.add(item.path);
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
    byPath.set(item.path, r);
  }
  return { resolved: [...byPath.values()].filter((r) => !conflicted.has(r.item.path)), repeatedLines, taxonomy, hint };
}

/**
 * Ingests a dataset into the store: reads the source in its format, reads every label (the dataset's classes follow
 * the data, or `classes` when declared), opens and hashes every image with sharp, checks any face box the source
 * gives against its image, then writes everything in one transaction. Any problem fails the whole ingest
 * (nothing written) unless `skipBad`, which ingests the rest and lists what it skipped. Re-ingesting the same
 * source changes nothing.
 */
export async function ingest(db: DB, opts: IngestOptions, onProgress?: ProgressFn): Promise<IngestSummary> {
  if (opts.format !== undefined && !FORMATS.includes(opts.format)) {
    throw new FerCleanError(`unknown format '${opts.format}' (choose ${FORMATS.join(', ')})`);
  }
  if (opts.classes !== undefined) opts = { ...opts, classes: parseClassList(opts.classes.join(',')) };
  const format = opts.format ?? detectFormat(opts.source);
  const listing = await readSource(opts, format);
  const name = opts.name ?? listing.name;
  const stored = db.prepare(`SELECT taxonomy FROM datasets WHERE name = ?`).get(name) as { taxonomy: string } | undefined;
  const problems: Problem[] = [...listing.problems];
  const { resolved, repeatedLines, taxonomy, hint } = resolveLabels(listing, opts, stored && (JSON.parse(stored.taxonomy) as string[]), problems);

  if (problems.length && !opts.skipBad) throw problemsError(opts.source, problems, hint);
  if (format === 'fer2013') await writeFer2013Images(listing, new Set(resolved.map((r) => imageFile(listing.root, r.item.path))));

  const results = await inspectAll(
    resolved.map((r) => imageFile(listing.root, r.item.path)),
    { concurrency: opts.concurrency, workers: opts.workers },
    onProgress && ((done) => onProgress(done, resolved.length)),
  );
  const good: Resolved[] = [];
  results.forEach((res, i) => {
    const r = resolved[i]!;
    const where = r.item.where === r.item.path ? r.item.path : `${r.item.where}: ${r.item.path}`;
    const boxed = res.ok && r.item.box ? boxProblem(r.item.box, res.info.oriented.width, res.info.oriented.height) : null;
    if (!res.ok) problems.push({ where, message: res.error, path: r.item.path });
    else if (boxed !== null) problems.push({ where, message: `face box ${boxed}`, path: r.item.path });
    else good.push({ ...r, info: res.info });
  });
  if (problems.length && !opts.skipBad) throw problemsError(opts.source, problems);
  if (good.length === 0) throw new FerCleanError(`${opts.source}: no images to ingest${problems.length ? ` (all ${problems.length} had problems)` : ''}`);

  const summary = db.transaction(() => {
    const ds = upsertDataset(db, { ...listing, format }, name, taxonomy, resolve(opts.source));
    const counts = upsertImages(db, ds, good);
    if (counts.added || counts.updated) touchDataset(db, ds.id, { ...listing, format }, resolve(opts.source));
    return { dataset: { id: ds.id, name, format, root: listing.root }, ...counts, ...summarize(good) };
  })();
  return { ...summary, skipped: problems, repeatedLines };
}

function problemsError(source: string, problems: Problem[], hint?: string): FerCleanError {
  const listed = problems.slice(0, MAX_LISTED).map(problemText);
  if (problems.length > MAX_LISTED) listed.push(`... and ${problems.length - MAX_LISTED} more`);
  if (hint) listed.push(hint);
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
  trainable: number;
  reference: string | null;
  reference_votes: string | null;
  source_line: number | null;
  source_row: string | null;
  crop_x: number | null;
  crop_y: number | null;
  crop_w: number | null;
  crop_h: number | null;
  crop_source: string | null;
  quality: string | null;
}

/** What a dataset row stores of its listing: columns and encoding, to write the format back. */
const listingOptions = (listing: SourceListing): string => JSON.stringify({ ...listing.options, labelEncoding: listing.labelEncoding });

/** The dataset row for `name`: created, or the existing one when its classes and format match. */
function upsertDataset(db: DB, listing: SourceListing, name: string, taxonomy: string[], source: string): { id: number } {
  const ds = db.prepare(`SELECT id, format, taxonomy FROM datasets WHERE name = ?`).get(name) as
    | { id: number; format: string; taxonomy: string }
    | undefined;
  if (ds && ds.taxonomy !== JSON.stringify(taxonomy)) {
    throw new FerCleanError(`dataset '${name}' already exists with classes ${ds.taxonomy}, not ${JSON.stringify(taxonomy)}; ingest under another --name`);
  }
  if (ds && ds.format !== listing.format) {
    throw new FerCleanError(`dataset '${name}' already exists in format ${ds.format}, not ${listing.format}; ingest under another --name`);
  }
  if (ds) return ds;
  const now = nowIso();
  const id = db
    .prepare(`INSERT INTO datasets (name, format, source, root, taxonomy, options, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
    .run(name, listing.format, source, listing.root, JSON.stringify(taxonomy), listingOptions(listing), now, now).lastInsertRowid;
  return { id: Number(id) };
}

/** A re-ingest that changed images also takes the listing's source, root and options. */
function touchDataset(db: DB, id: number, listing: SourceListing, source: string): void {
  db.prepare(`UPDATE datasets SET source = ?, root = ?, options = ?, updated_at = ? WHERE id = ?`).run(source, listing.root, listingOptions(listing), nowIso(), id);
}

/**
 * What is stored of a source row for `export --format same`: the record, and its bytes when the format keeps them
 * (keptBytes: as text, or base64 when they are not UTF-8); repeated lines naming the same image go with it
 * (affectnet: under `repeats`; other formats: under REPEATS_KEY in the record, a key no CSV header holds).
 */
function sourceRowOf(item: SourceItem, repeats: SourceItem[] = []): string | null {
  if (item.text !== undefined) {
    const more = repeats.map((x) => ({ line: x.line, record: x.record, ...keptBytes('text', x.text ?? Buffer.alloc(0)) }));
    return JSON.stringify({ record: item.record, ...keptBytes('text', item.text), ...(more.length ? { repeats: more } : {}) });
  }
  if (!item.record) return null;
  if (!repeats.length) return JSON.stringify(item.record);
  return JSON.stringify({ ...item.record, [REPEATS_KEY]: repeats.map((x) => ({ line: x.line, record: x.record })) });
}

/**
 * Inserts new images with their labels and updates those whose file, label, split, source row, face box or quality
 * flag changed. A face box or quality flag the source says nothing about (undefined) is left as stored (e.g. a box
 * found by face detection). Returns the counts and how many stored images the source no longer lists.
 */
function upsertImages(db: DB, ds: { id: number }, good: Resolved[]): Pick<IngestSummary, 'added' | 'updated' | 'newPixels' | 'unchanged' | 'missingFromSource'> {
  const existing = new Map<string, StoredImage>();
  for (const row of db
    .prepare(
      `SELECT i.id, i.path, i.sha256, i.split, i.source_line, i.source_row, i.crop_x, i.crop_y, i.crop_w, i.crop_h, i.crop_source, i.quality,
              l.given, l.given_raw, l.trainable, l.reference, l.reference_votes
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
  const setBox = db.prepare(`UPDATE images SET crop_x = ?, crop_y = ?, crop_w = ?, crop_h = ?, crop_source = 'annotation' WHERE id = ?`);
  const setQuality = db.prepare(`UPDATE images SET quality = ? WHERE id = ?`);
  // new pixels: the detected face may have moved or gone, and the embeddings describe the old picture
  const markChanged = db.prepare(`UPDATE images SET pixels_changed_at = ? WHERE id = ?`);
  const now = nowIso();
  const clearDetectedBox = db.prepare(
    `UPDATE images SET crop_x = NULL, crop_y = NULL, crop_w = NULL, crop_h = NULL, crop_source = NULL WHERE id = ? AND crop_source = 'detected'`,
  );
  const dropEmbeddings = db.prepare(`DELETE FROM embeddings WHERE image_id = ?`);
  const upsertLabel = db.prepare(
    `INSERT INTO labels (image_id, given, given_raw, reference, reference_votes, trainable) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (image_id) DO UPDATE SET given = excluded.given, given_raw = excluded.given_raw,
       reference = excluded.reference, reference_votes = excluded.reference_votes, trainable = excluded.trainable`,
  );
  let added = 0;
  let updated = 0;
  let newPixels = 0;
  let unchanged = 0;
  const seen = new Set<string>();
  for (const r of good) {
    const { item } = r;
    const info = r.info!;
    const votes = item.referenceVotes ? JSON.stringify(item.referenceVotes) : null;
    const sourceRow = sourceRowOf(item, r.repeats);
    const line = item.line ?? null;
    const trainable = r.trainable ? 1 : 0;
    const box = item.box;
    const old = existing.get(item.path);
    seen.add(item.path);
    if (!old) {
      const id = insertImage.run(ds.id, item.path, info.sha256, info.width, info.height, info.channels, item.split, line, sourceRow).lastInsertRowid;
      upsertLabel.run(id, r.given, item.labelRaw, r.reference, votes, trainable);
      if (box) setBox.run(box.x, box.y, box.w, box.h, id);
      if (item.quality) setQuality.run(item.quality, id);
      added++;
      continue;
    }
    const sameImage =
      old.sha256 === info.sha256 && old.split === item.split && old.source_line === line && old.source_row === sourceRow;
    const sameLabel =
      old.given === r.given && old.given_raw === item.labelRaw && old.trainable === trainable && old.reference === r.reference && old.reference_votes === votes;
    const sameBox =
      !box || (old.crop_source === 'annotation' && old.crop_x === box.x && old.crop_y === box.y && old.crop_w === box.w && old.crop_h === box.h);
    const changedPixels = old.sha256 !== info.sha256;
    // null: the source implies no flag; it clears the one it implies (no-face), never a flag set elsewhere. A source
    // that says nothing (undefined) keeps the stored flag, except a detection flag on new pixels: detected again.
    const quality =
      item.quality === undefined
        ? changedPixels && old.quality !== null && UNUSABLE_QUALITIES.includes(old.quality) ? null : old.quality
        : (item.quality ?? (old.quality === NO_FACE ? null : old.quality));
    const sameQuality = old.quality === quality;
    if (sameImage && sameLabel && sameBox && sameQuality) {
      unchanged++;
      continue;
    }
    updateImage.run(info.sha256, info.width, info.height, info.channels, item.split, line, sourceRow, old.id);
    upsertLabel.run(old.id, r.given, item.labelRaw, r.reference, votes, trainable);
    if (changedPixels) {
      markChanged.run(now, old.id);
      clearDetectedBox.run(old.id);
      dropEmbeddings.run(old.id);
      newPixels++;
    }
    if (!sameBox) setBox.run(box!.x, box!.y, box!.w, box!.h, old.id);
    if (!sameQuality) setQuality.run(quality, old.id);
    updated++;
  }
  const missingFromSource = [...existing.keys()].filter((p) => !seen.has(p)).length;
  return { added, updated, newPixels, unchanged, missingFromSource };
}

/** The ingest summary's figures over the images written: classes, non-expression labels, splits, agreement, duplicates. */
function summarize(good: Resolved[]): Pick<IngestSummary, 'images' | 'classes' | 'nonExpression' | 'faceBoxes' | 'splits' | 'duplicates' | 'agreement'> {
  const classes: Record<string, number> = {};
  const nonExpression: Record<string, number> = {};
  const splits: Record<string, number> = {};
  let compared = 0;
  let agree = 0;
  const byHash = new Map<string, Resolved[]>();
  for (const r of good) {
    const counts = r.trainable ? classes : nonExpression;
    counts[r.given] = (counts[r.given] ?? 0) + 1;
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
    images: good.length,
    classes,
    nonExpression,
    faceBoxes: good.filter((r) => r.item.box).length,
    splits,
    duplicates,
    agreement: hasReference ? { compared, agree } : null,
  };
}
