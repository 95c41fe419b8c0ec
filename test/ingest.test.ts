import { parse } from 'csv-parse/sync';
import { copyFileSync, cpSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { ferPlusMajority } from '../src/ingest/ferplus.js';
import { ingest } from '../src/ingest/index.js';
import { openStore } from '../src/store/db.js';
import { captureIo, fixture, useStore, useTempDir } from './helpers.js';

const t = useTempDir();
const store = useStore(t, (dir) => ({ db: openStore(join(dir, 'test.db')) }));

const count = (sql: string, ...args: unknown[]): number => (store.db.prepare(sql).get(...args) as { n: number }).n;
const fixtureRows = (): Record<string, string>[] => parse(readFileSync(fixture('ferplus', 'labels.csv')), { columns: true });

describe('ingest ferplus', () => {
  it('stores every image with its hash, size, split, original label and FER+ majority reference', async () => {
    const s = await ingest(store.db, { source: fixture('ferplus', 'labels.csv') });
    const rows = fixtureRows();
    expect(s.dataset.format).toBe('ferplus');
    expect(s.images).toBe(rows.length);
    expect(count(`SELECT count(*) AS n FROM images`)).toBe(rows.length);
    const img = store.db
      .prepare(`SELECT i.*, l.* FROM images i JOIN labels l ON l.image_id = i.id WHERE path = ?`)
      .get(rows[0]!['image']) as Record<string, unknown>;
    expect(img).toMatchObject({ width: 48, height: 48, channels: 1, split: rows[0]!['split'], given: rows[0]!['fer2013_label'] });
    expect(img['sha256']).toMatch(/^[0-9a-f]{64}$/);
    // the reference label is the FER+ majority, computed from the votes
    for (const r of rows.slice(0, 40)) {
      const votes = Object.fromEntries(Object.entries(r).filter(([k]) => k.startsWith('votes_')).map(([k, v]) => [k.slice(6), Number(v)]));
      const ref = store.db.prepare(`SELECT l.reference FROM labels l JOIN images i ON i.id = l.image_id WHERE i.path = ?`).get(r['image']) as { reference: string | null };
      expect(ref.reference).toBe(ferPlusMajority(votes, false));
    }
    expect(s.agreement!.compared).toBe(count(`SELECT count(*) AS n FROM labels WHERE reference IS NOT NULL`));
    expect(s.agreement!.agree).toBe(count(`SELECT count(*) AS n FROM labels WHERE reference = given`));
    expect(s.splits).toEqual({ train: rows.filter((r) => r['split'] === 'train').length, valid: rows.filter((r) => r['split'] === 'valid').length, test: rows.filter((r) => r['split'] === 'test').length });
  });

  it('is idempotent: a second ingest changes nothing', async () => {
    await ingest(store.db, { source: fixture('ferplus', 'labels.csv') });
    const before = store.db.prepare(`SELECT * FROM images ORDER BY id`).all();
    const s = await ingest(store.db, { source: fixture('ferplus', 'labels.csv') });
    expect(s).toMatchObject({ added: 0, updated: 0, unchanged: before.length });
    expect(store.db.prepare(`SELECT * FROM images ORDER BY id`).all()).toEqual(before);
  });

  it('FER+ majority follows the FER+ rule: single votes dropped, ties and unknown/NF give none', () => {
    const v = (o: Record<string, number>) => ({ neutral: 0, happiness: 0, surprise: 0, sadness: 0, anger: 0, disgust: 0, fear: 0, contempt: 0, unknown: 0, NF: 0, ...o });
    expect(ferPlusMajority(v({ neutral: 4, sadness: 4, anger: 1, unknown: 1 }), false)).toBeNull();
    expect(ferPlusMajority(v({ neutral: 5, sadness: 4, anger: 1 }), false)).toBe('neutral');
    expect(ferPlusMajority(v({ unknown: 6, happiness: 4 }), false)).toBeNull();
    expect(ferPlusMajority(v({ NF: 10 }), false)).toBeNull();
    expect(ferPlusMajority(v({ fear: 1, anger: 1, disgust: 1, happiness: 1, surprise: 1, sadness: 1, neutral: 1 }), false)).toBeNull();
    expect(ferPlusMajority(v({ contempt: 6, neutral: 4 }), false)).toBeNull();
    expect(ferPlusMajority(v({ contempt: 6, neutral: 4 }), true)).toBe('contempt');
  });
});

describe('ingest other formats', () => {
  it('imagefolder: ROOT/<split>/<class>/*', async () => {
    const s = await ingest(store.db, { source: fixture('imagefolder') });
    expect(s.dataset.format).toBe('imagefolder');
    let files = 0;
    for (const split of readdirSync(fixture('imagefolder'))) for (const c of readdirSync(fixture('imagefolder', split))) files += readdirSync(fixture('imagefolder', split, c)).length;
    expect(s.images).toBe(files);
    const r = store.db.prepare(`SELECT i.split, l.given, i.path FROM images i JOIN labels l ON l.image_id = i.id WHERE i.path LIKE 'test/happiness/%' LIMIT 1`).get() as Record<string, string>;
    expect(r).toMatchObject({ split: 'test', given: 'happiness' });
  });

  it('rafdb: list_patition_label.txt with 1-7 labels and aligned images', async () => {
    const s = await ingest(store.db, { source: fixture('rafdb') });
    expect(s.dataset.format).toBe('rafdb');
    const lines = readFileSync(fixture('rafdb', 'EmoLabel', 'list_patition_label.txt'), 'utf8').trim().split('\n');
    expect(s.images).toBe(lines.length);
    const [name, code] = lines[0]!.split(' ');
    const r = store.db.prepare(`SELECT i.width, i.channels, l.given FROM images i JOIN labels l ON l.image_id = i.id WHERE i.path = ?`).get(`Image/aligned/${name!.replace('.jpg', '')}_aligned.jpg`) as Record<string, unknown>;
    const RAF = ['surprise', 'fear', 'disgust', 'happiness', 'sadness', 'anger', 'neutral'];
    expect(r).toMatchObject({ width: 100, channels: 3, given: RAF[Number(code) - 1] });
  });

  it('fer2013: pixels become PNGs named by row index; labels 0-6', async () => {
    const out = join(t.dir, 'pngs');
    const s = await ingest(store.db, { source: fixture('fer2013', 'fer2013.csv'), images: out });
    const rows = parse(readFileSync(fixture('fer2013', 'fer2013.csv')), { columns: true }) as Record<string, string>[];
    expect(s.images).toBe(rows.length);
    expect(existsSync(join(out, 'fer0000000.png'))).toBe(true);
    const first = store.db.prepare(`SELECT l.given, i.split, i.width FROM images i JOIN labels l ON l.image_id = i.id WHERE i.path = 'pngs/fer0000000.png'`).get() as Record<string, unknown>;
    const CLASSES = ['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral'];
    expect(first).toMatchObject({ given: CLASSES[Number(rows[0]!['emotion'])], width: 48 });
    const mtime = statSync(join(out, 'fer0000000.png')).mtimeMs;
    const again = await ingest(store.db, { source: fixture('fer2013', 'fer2013.csv'), images: out });
    expect(again.unchanged).toBe(rows.length);
    expect(statSync(join(out, 'fer0000000.png')).mtimeMs).toBe(mtime);
  });

  it('csv with numeric labels needs --label-encoding, then maps them', async () => {
    await expect(ingest(store.db, { source: fixture('csv', 'labels.csv') })).rejects.toThrow(/labels.csv:2: numeric label '\d'.*--label-encoding/);
    const s = await ingest(store.db, { source: fixture('csv', 'labels.csv'), labelEncoding: 'fer2013' });
    expect(s.images).toBe(parse(readFileSync(fixture('csv', 'labels.csv')), { columns: true }).length);
  });

  it('reports exact duplicates with their labels when they disagree', async () => {
    const root = join(t.dir, 'dups');
    cpSync(fixture('bad', 'images'), join(root, 'images'), { recursive: true });
    const [a, b] = readdirSync(join(root, 'images')).filter((f) => f.startsWith('fer'));
    copyFileSync(join(root, 'images', a!), join(root, 'images', 'copy.png'));
    writeFileSync(join(root, 'l.csv'), `path,label\nimages/${a},happy\nimages/copy.png,sad\nimages/${b},fear\n`);
    const s = await ingest(store.db, { source: join(root, 'l.csv') });
    expect(s.duplicates).toHaveLength(1);
    expect(s.duplicates[0]).toMatchObject({ paths: [`images/${a}`, 'images/copy.png'], labels: ['happiness', 'sadness'], conflicting: true });
  });
});

describe('bad input', () => {
  const cases: [string, RegExp][] = [
    ['empty.csv', /empty.csv: empty CSV/],
    ['header-only.csv', /header-only.csv: CSV has a header \(path, label\) but no rows/],
    ['missing-column.csv', /missing-column.csv: no label column .* columns are: path, mood/],
    ['unknown-label.csv', /unknown-label.csv:3: unknown label 'bored'/],
    ['missing-file.csv', /missing-file.csv:3: images\/nope.png: image file not found/],
    ['truncated-image.csv', /truncated-image.csv:3: images\/truncated.png: cannot decode image/],
    ['not-an-image.csv', /not-an-image.csv:2: images\/not-an-image.png: cannot decode image/],
    ['duplicate-path.csv', /duplicate-path.csv:4: images\/\S+ is listed again with label 'anger' \(first at duplicate-path.csv:2 with 'happy'\)/],
    // a relative path may lead out of the CSV's folder (issue 9): it resolves, and the file it names is not an image
    ['escaping-path.csv', /escaping-path.csv:3: ..\/..\/package.json: cannot decode image: not a supported image format/],
    ['ragged.csv', /ragged.csv:2: expected 2 fields \(path, label\), found 3/],
  ];
  for (const [file, message] of cases) {
    it(`${file}: clear error naming file and line, non-zero exit, database unchanged`, async () => {
      await ingest(store.db, { source: fixture('bad', 'good.csv'), name: 'existing' });
      const before = JSON.stringify(store.db.prepare(`SELECT * FROM images i JOIN labels l ON l.image_id = i.id`).all());
      const datasets = count(`SELECT count(*) AS n FROM datasets`);
      store.db.close();
      const io = captureIo();
      const code = await run(['ingest', fixture('bad', file), '--db', join(t.dir, 'test.db')], io);
      store.db = openStore(join(t.dir, 'test.db'));
      expect(code).not.toBe(0);
      const errText = io.stderr.text.replace(/\s+/g, ' ');
      expect(errText).toMatch(message);
      expect(errText).not.toMatch(/at .*\.js:\d+/); // no stack trace
      expect(JSON.stringify(store.db.prepare(`SELECT * FROM images i JOIN labels l ON l.image_id = i.id`).all())).toBe(before);
      expect(count(`SELECT count(*) AS n FROM datasets`)).toBe(datasets);
    });
  }

  it('--skip-bad ingests the rest and lists what it skipped', async () => {
    const s = await ingest(store.db, { source: fixture('bad', 'missing-file.csv'), skipBad: true });
    expect(s.images).toBe(1);
    expect(s.skipped).toHaveLength(1);
    expect(s.skipped[0]!.where).toMatch(/missing-file.csv:3/);
  });

  it('a failed first ingest leaves no database file behind', async () => {
    const io = captureIo();
    const path = join(t.dir, 'fresh.db');
    expect(await run(['ingest', fixture('bad', 'unknown-label.csv'), '--db', path], io)).toBe(1);
    expect(existsSync(path)).toBe(false);
  });

  it('a missing source is an error naming it', async () => {
    await expect(ingest(store.db, { source: join(t.dir, 'nope.csv') })).rejects.toThrow(/nope.csv: no such file or folder/);
  });
});

describe('ingest CLI', () => {
  it('prints a summary with splits, classes and agreement with the reference', async () => {
    const io = captureIo();
    const code = await run(['ingest', fixture('ferplus', 'labels.csv'), '--db', join(t.dir, 'cli.db')], io);
    expect(code).toBe(0);
    expect(io.stdout.text).toMatch(/dataset 'ferplus' \(ferplus\) .*: 296 images — 296 added/);
    expect(io.stdout.text).toMatch(/splits: +train \d+, valid \d+, test \d+/);
    expect(io.stdout.text).toMatch(/given label agrees with the reference on \d+ of \d+ images/);
  });
  it('rejects an unknown --format', async () => {
    const io = captureIo();
    expect(await run(['ingest', fixture('ferplus', 'labels.csv'), '--format', 'xml', '--db', join(t.dir, 'x.db')], io)).toBe(1);
    expect(io.stderr.text).toMatch(/--format must be one of csv, ferplus, imagefolder, rafdb, fer2013/);
  });
});

describe('decoding in worker threads', () => {
  it('the compiled worker pool gives the same results, in order, as this thread', async () => {
    // worker threads need the compiled script (npm ci builds dist/); the sources' version runs in-process
    const compiled = (await import(['..', 'dist', 'src', 'ingest/images.js'].join('/'))) as typeof import('../src/ingest/images.js');
    const files = readdirSync(fixture('ferplus', 'images', 'train')).map((f) => fixture('ferplus', 'images', 'train', f));
    files.splice(7, 0, fixture('bad', 'images', 'truncated.png'), fixture('bad', 'images', 'missing.png'));
    const progress: number[] = [];
    const pooled = await compiled.inspectAll(files, { workers: 2, chunk: 32 }, (d) => progress.push(d));
    const local = await compiled.inspectAll(files, { workers: 0 });
    // libvips' detail text for a corrupt file can vary between threads; the kind of failure may not
    const kind = (r: (typeof local)[number]) => (r.ok ? r : { ok: false, error: r.error.replace(/ \(.*\)$/, '') });
    expect(pooled.map(kind)).toEqual(local.map(kind));
    expect(pooled[7]).toMatchObject({ ok: false, error: expect.stringMatching(/^cannot decode image: corrupt or truncated data/) });
    expect(pooled[8]).toMatchObject({ ok: false, error: 'image file not found' });
    expect(progress.at(-1)).toBe(files.length);
  });
});
