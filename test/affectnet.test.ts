/** Issue 13: AffectNet as users have it: the annotation CSV with face boxes, and class folders named by code. */
import { parse } from 'csv-parse/sync';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { FerCleanError } from '../src/errors.js';
import { exportLabels } from '../src/export/index.js';
import { ingest } from '../src/ingest/index.js';
import { datasetLabelStats } from '../src/ingest/stats.js';
import { resolveDataset } from '../src/store/datasets.js';
import { openStore } from '../src/store/db.js';
import { fixture, cliRunner, useStore, useTempDir } from './helpers.js';

const TRAINING = fixture('affectnet', 'Manually_Annotated_file_lists', 'training.csv');
const IMAGES = fixture('affectnet', 'Manually_Annotated_Images');
const records = (file = TRAINING): Record<string, string>[] => parse(readFileSync(file), { columns: true });
const CODES = ['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger', 'contempt'];

const t = useTempDir();
const store = useStore(t, (dir) => {
  const dbPath = join(dir, 'test.db');
  return { dbPath, db: openStore(dbPath) };
});

const cli = cliRunner({
  cwd: () => t.dir,
  db: () => store.dbPath,
  reopen: { close: () => store.db.close(), open: () => void (store.db = openStore(store.dbPath)) },
  squashStderr: true,
});

describe('AffectNet annotation file (--format affectnet)', () => {
  it('is detected, stores the face box per row, codes 8-10 as not trainable, 10 as a no-face flag; the summary counts them', async () => {
    const r = await cli('ingest', TRAINING);
    expect(r.code, r.stderr).toBe(0);
    const recs = records();
    expect(r.stdout).toMatch(new RegExp(`dataset 'affectnet-training' \\(affectnet\\) .*: ${recs.length} images — ${recs.length} added`));
    expect(r.stdout).toMatch(/not an expression \(kept, not trained on\): 3 — /);
    expect(r.stdout).toMatch(/face boxes from the source: 27/);
    const ds = resolveDataset(store.db);
    expect(ds.taxonomy).toEqual(['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral', 'contempt']);
    expect(ds.root).toBe(IMAGES); // Manually_Annotated_Images/ found beside the file lists
    const rows = store.db
      .prepare(
        `SELECT i.path, i.split, i.crop_x, i.crop_y, i.crop_w, i.crop_h, i.crop_source, i.quality, l.given, l.given_raw, l.trainable
         FROM images i JOIN labels l ON l.image_id = i.id ORDER BY i.source_line`,
      )
      .all() as Record<string, unknown>[];
    expect(rows).toHaveLength(recs.length);
    rows.forEach((row, k) => {
      const rec = recs[k]!;
      const code = Number(rec['expression']);
      expect(row).toMatchObject({
        path: rec['subDirectory_filePath'],
        split: 'train',
        crop_x: Number(rec['face_x']),
        crop_y: Number(rec['face_y']),
        crop_w: Number(rec['face_width']),
        crop_h: Number(rec['face_height']),
        crop_source: 'annotation',
        given: code <= 7 ? CODES[code] : { 8: 'none', 9: 'uncertain', 10: 'no-face' }[code],
        given_raw: rec['expression'],
        trainable: code <= 7 ? 1 : 0,
        quality: code === 10 ? 'no-face' : null,
      });
    });
    expect(datasetLabelStats(store.db, { datasetId: ds.id })).toMatchObject({ non_expression: { none: 1, uncertain: 1, 'no-face': 1 }, quality: { 'no-face': 1 } });
    // validation.csv is the valid split; a second ingest changes nothing
    const v = await ingest(store.db, { source: fixture('affectnet', 'Manually_Annotated_file_lists', 'validation.csv') });
    expect(v.splits).toEqual({ valid: records(fixture('affectnet', 'Manually_Annotated_file_lists', 'validation.csv')).length });
    expect((await ingest(store.db, { source: TRAINING })).unchanged).toBe(recs.length);
  });

  it('a re-ingest follows a changed code and box: no-face cleared when 10 becomes 1, a flag set elsewhere kept', async () => {
    const lists = join(t.dir, 'lists');
    cpSync(fixture('affectnet', 'Manually_Annotated_file_lists'), lists, { recursive: true });
    const csv = join(lists, 'training.csv');
    await ingest(store.db, { source: csv, images: IMAGES });
    const noFace = store.db.prepare(`SELECT id, source_line FROM images WHERE quality = 'no-face'`).get() as { id: number; source_line: number };
    const other = store.db.prepare(`SELECT id, source_line FROM images WHERE quality IS NULL LIMIT 1`).get() as { id: number; source_line: number };
    store.db.prepare(`UPDATE images SET quality = 'several-faces' WHERE id = ?`).run(other.id);
    const ls = readFileSync(csv, 'utf8').split('\n');
    const f = ls[noFace.source_line - 1]!.split(',');
    f[6] = '1';
    f[3] = String(Number(f[3]) - 1);
    ls[noFace.source_line - 1] = f.join(',');
    writeFileSync(csv, ls.join('\n'));
    const s = await ingest(store.db, { source: csv, images: IMAGES });
    expect(s).toMatchObject({ updated: 1, unchanged: 26 });
    expect(store.db.prepare(`SELECT i.quality, i.crop_w, l.given, l.trainable FROM images i JOIN labels l ON l.image_id = i.id WHERE i.id = ?`).get(noFace.id)).toEqual({
      quality: null,
      crop_w: Number(f[3]),
      given: 'happiness',
      trainable: 1,
    });
    expect(store.db.prepare(`SELECT quality FROM images WHERE id = ?`).get(other.id)).toEqual({ quality: 'several-faces' });
  });

  it('export --format same gives the file back byte for byte; a changed row changes only its expression', async () => {
    await ingest(store.db, { source: TRAINING });
    const ds = resolveDataset(store.db);
    const r = await cli('export', join(t.dir, 'same.csv'), '--format', 'same');
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(t.dir, 'same.csv')).equals(readFileSync(TRAINING))).toBe(true);

    // a manual decision on one image: that row's expression is rewritten in AffectNet's code, nothing else moves
    const target = store.db.prepare(`SELECT i.id, i.source_line FROM images i JOIN labels l ON l.image_id = i.id WHERE l.given = 'happiness' LIMIT 1`).get() as { id: number; source_line: number };
    store.db.prepare(`INSERT INTO decisions (image_id, annotator, action, previous_label, new_label, decided_at) VALUES (?, 'a', 'manual', 'happiness', 'contempt', '2026-01-01')`).run(target.id);
    await exportLabels(store.db, { dataset: ds, out: join(t.dir, 'changed.csv'), format: 'same' });
    const before = readFileSync(TRAINING, 'utf8').split('\n');
    const after = readFileSync(join(t.dir, 'changed.csv'), 'utf8').split('\n');
    expect(after).toHaveLength(before.length);
    const differ = before.map((l, i) => (l === after[i] ? -1 : i)).filter((i) => i >= 0);
    expect(differ).toEqual([target.source_line - 1]);
    const f = (l: string) => l.split(',');
    expect(f(after[differ[0]!]!)).toEqual(f(before[differ[0]!]!).map((x, k) => (k === 6 ? '7' : x)));
  });

  it('keeps CRLF line endings, a BOM and blank lines byte for byte', async () => {
    const lists = join(t.dir, 'lists');
    cpSync(fixture('affectnet', 'Manually_Annotated_file_lists'), lists, { recursive: true });
    const text = '\ufeff' + readFileSync(TRAINING, 'utf8').replace(/\n/g, '\r\n').replace('\r\n', '\r\n\r\n');
    writeFileSync(join(lists, 'training.csv'), text);
    await ingest(store.db, { source: join(lists, 'training.csv'), images: IMAGES });
    await exportLabels(store.db, { dataset: resolveDataset(store.db), out: join(t.dir, 'same.csv'), format: 'same' });
    expect(readFileSync(join(t.dir, 'same.csv'), 'utf8')).toBe(text);
  });

  it('non-expression rows are kept in export, and dropped with --drop-non-expression', async () => {
    await ingest(store.db, { source: TRAINING });
    const all = await cli('export', join(t.dir, 'all.csv'));
    expect(all.code).toBe(0);
    const rows = parse(readFileSync(join(t.dir, 'all.csv')), { columns: true }) as Record<string, string>[];
    expect(rows).toHaveLength(27);
    expect(rows.filter((r) => ['none', 'uncertain', 'no-face'].includes(r['final_label']!))).toHaveLength(3);
    const dropped = await cli('export', join(t.dir, 'dropped.csv'), '--format', 'same', '--drop-non-expression');
    expect(dropped.code).toBe(0);
    const kept = records(join(t.dir, 'dropped.csv'));
    expect(kept).toHaveLength(24);
    expect(kept.every((r) => Number(r['expression']) <= 7)).toBe(true);
  });

  describe('bad rows: named errors (file:line), exit 1, database unchanged', () => {
    const lines = (): string[] => readFileSync(TRAINING, 'utf8').split('\n');
    const withRow = (k: number, edit: (f: string[]) => void): string => {
      const ls = lines();
      const f = ls[k]!.split(',');
      edit(f);
      ls[k] = f.join(',');
      return ls.join('\n');
    };
    const first = (): string[] => lines()[1]!.split(',');
    const cases: [string, () => string, RegExp][] = [
      ['a box outside the image', () => withRow(2, (f) => (f[1] = '500')), /training.csv:3: \S+\.jpg: face box \(x 500, .*\) lies outside the \d+x\d+ image/],
      ['an empty box', () => withRow(3, (f) => (f[3] = '0')), /training.csv:4: \S+\.jpg: face box \(x \d+, y \d+, width 0, .*\) is empty/],
      ['a box that is not a number', () => withRow(4, (f) => (f[2] = 'top')), /training.csv:5: \S+\.jpg: face_y is 'top', not a number of pixels/],
      ['a missing file', () => withRow(5, (f) => (f[0] = '999/missing.jpg')), /training.csv:6: 999\/missing.jpg: image file not found/],
      ['an unknown code', () => withRow(6, (f) => (f[6] = '11')), /training.csv:7: unknown label '11': affectnet labels are 0-10/],
      ['a missing column', () => lines().map((l) => l.split(',').slice(0, 8).join(',')).join('\n'), /training.csv: not an AffectNet annotation file: no column arousal/],
    ];
    for (const [what, text, message] of cases) {
      it(what, async () => {
        expect(first()).toHaveLength(9);
        await ingest(store.db, { source: fixture('bad', 'good.csv'), name: 'existing' });
        const before = JSON.stringify(store.db.prepare(`SELECT * FROM images i JOIN labels l ON l.image_id = i.id`).all());
        const csv = join(t.dir, 'training.csv');
        writeFileSync(csv, text());
        const r = await cli('ingest', csv, '--format', 'affectnet', '--images', IMAGES);
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(message);
        expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
        expect(JSON.stringify(store.db.prepare(`SELECT * FROM images i JOIN labels l ON l.image_id = i.id`).all())).toBe(before);
        expect((store.db.prepare(`SELECT count(*) AS n FROM datasets`).get() as { n: number }).n).toBe(1);
      });
    }
  });

  it('the box is checked in the EXIF-rotated frame the embedder and review crop in', async () => {
    const imgs = join(t.dir, 'imgs');
    // a 40x30 JPEG stored sideways (orientation 6): upright it is 30x40, so a 30x40 box fits and a 40x30 one does not
    await sharp({ create: { width: 40, height: 30, channels: 3, background: '#777' } }).jpeg().withMetadata({ orientation: 6 }).toFile(join(t.dir, 'r.jpg'));
    cpSync(join(t.dir, 'r.jpg'), join(imgs, '1', 'r.jpg'), { recursive: true });
    const header = 'subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n';
    writeFileSync(join(t.dir, 'ok.csv'), `${header}1/r.jpg,0,0,30,40,1;2,1,0.5,0.5\n`);
    writeFileSync(join(t.dir, 'bad.csv'), `${header}1/r.jpg,0,0,40,30,1;2,1,0.5,0.5\n`);
    expect((await ingest(store.db, { source: join(t.dir, 'ok.csv'), images: imgs })).faceBoxes).toBe(1);
    const e = (await ingest(store.db, { source: join(t.dir, 'bad.csv'), images: imgs, name: 'bad' }).catch((x: unknown) => x)) as FerCleanError;
    expect(e).toBeInstanceOf(FerCleanError);
    expect(e.details.join('\n')).toMatch(/bad.csv:2: 1\/r.jpg: face box \(x 0, y 0, width 40, height 30\) lies outside the 30x40 image/);
  });
});

describe('AffectNet class folders (--label-encoding affectnet)', () => {
  it('folders 0-7 map by AffectNet code, contempt included; without the encoding the numbers are an error naming it', async () => {
    const r = await cli('ingest', fixture('affectnet-folders'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/numeric label '\d'.*affectnet \(0-10\)/);
    const s = await ingest(store.db, { source: fixture('affectnet-folders'), labelEncoding: 'affectnet' });
    expect(s.images).toBe(24);
    expect(s.splits).toEqual({ train: 16, valid: 8 });
    expect(Object.keys(s.classes).sort()).toEqual([...CODES].sort());
    const rows = store.db.prepare(`SELECT i.path, l.given FROM images i JOIN labels l ON l.image_id = i.id`).all() as { path: string; given: string }[];
    for (const row of rows) expect(row.given).toBe(CODES[Number(row.path.split('/')[1])]);
    expect(resolveDataset(store.db).taxonomy).toContain('contempt');
  });

  it('numeric labels in a CSV column read as AffectNet codes too, 8-10 kept as not trainable', async () => {
    const faces = readFileSync(fixture('bad', 'good.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',')[0]);
    writeFileSync(join(t.dir, 'codes.csv'), `path,label\n${fixture('bad', faces[0]!)},7\n${fixture('bad', faces[1]!)},9\n`);
    const s = await ingest(store.db, { source: join(t.dir, 'codes.csv'), labelEncoding: 'affectnet' });
    expect(s.classes).toEqual({ contempt: 1 });
    expect(s.nonExpression).toEqual({ uncertain: 1 });
  });
});
