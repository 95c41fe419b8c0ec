/** Issue 9, items 1-2: paths as the source wrote them, and classes that follow the data. */
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { exportLabels } from '../src/export/index.js';
import { ingest } from '../src/ingest/index.js';
import { resolveDataset } from '../src/store/datasets.js';
import { openStore } from '../src/store/db.js';
import { parseClassList } from '../src/taxonomy.js';
import { captureIo, fixture, cliRunner, useStore, useTempDir } from './helpers.js';

const t = useTempDir();
const store = useStore(t, (dir) => {
  const dbPath = join(dir, 'test.db');
  return { dbPath, db: openStore(dbPath) };
});

const faces = (): string[] => readdirSync(fixture('csv', 'faces')).slice(0, 8).map((f) => fixture('csv', 'faces', f));
const LABELS = ['happy', 'sad', 'angry', 'neutral', 'surprise', 'fear', 'disgust', 'happy'];
const snapshot = (): string => JSON.stringify(store.db.prepare(`SELECT * FROM datasets d JOIN images i ON i.dataset_id = d.id JOIN labels l ON l.image_id = i.id`).all());

/** Runs the CLI against the test database (closed meanwhile) and reopens it. */
const cli = cliRunner({
  cwd: () => t.dir,
  db: () => store.dbPath,
  reopen: { close: () => store.db.close(), open: () => void (store.db = openStore(store.dbPath)) },
  squashStderr: true,
});

describe('paths (issue 9.1)', () => {
  it('a CSV of absolute paths ingests with no flag and exports the same paths and labels, as csv and as the same format', async () => {
    const csv = join(t.dir, 'lists', 'abs.csv');
    mkdirSync(join(t.dir, 'lists'));
    const rows = faces().map((f, i) => ({ path: f, label: LABELS[i]! }));
    writeFileSync(csv, stringify(rows, { header: true }));
    const s = await ingest(store.db, { source: csv });
    expect(s.images).toBe(rows.length);
    const stored = (store.db.prepare(`SELECT path FROM images ORDER BY id`).all() as { path: string }[]).map((r) => r.path);
    expect(stored).toEqual(rows.map((r) => r.path));

    const dataset = resolveDataset(store.db);
    await exportLabels(store.db, { dataset, out: join(t.dir, 'out.csv') });
    const out = parse(readFileSync(join(t.dir, 'out.csv')), { columns: true }) as Record<string, string>[];
    expect(out.map((r) => r['path'])).toEqual(rows.map((r) => r.path));
    const canonical = { happy: 'happiness', sad: 'sadness', angry: 'anger', neutral: 'neutral', surprise: 'surprise', fear: 'fear', disgust: 'disgust' } as Record<string, string>;
    expect(out.map((r) => r['final_label'])).toEqual(rows.map((r) => canonical[r.label]));
    await exportLabels(store.db, { dataset, out: join(t.dir, 'same.csv'), format: 'same' });
    expect(readFileSync(join(t.dir, 'same.csv'), 'utf8')).toBe(readFileSync(csv, 'utf8'));
  });

  it('export writes each path as the source wrote it (./, doubled slashes), though it is stored normalised', async () => {
    const root = join(t.dir, 'set');
    cpSync(fixture('csv', 'faces'), join(root, 'faces'), { recursive: true });
    const names = readdirSync(join(root, 'faces')).slice(0, 3);
    const written = [`./faces/${names[0]}`, `faces//${names[1]}`, `${root}/faces/./${names[2]}`];
    writeFileSync(join(root, 'l.csv'), stringify(written.map((p) => ({ path: p, label: 'happy' })), { header: true }));
    await ingest(store.db, { source: join(root, 'l.csv') });
    expect((store.db.prepare(`SELECT path FROM images ORDER BY id`).all() as { path: string }[]).map((r) => r.path)).toEqual([
      `faces/${names[0]}`,
      `faces/${names[1]}`,
      join(root, 'faces', names[2]!),
    ]);
    await exportLabels(store.db, { dataset: resolveDataset(store.db), out: join(t.dir, 'out.csv') });
    expect((parse(readFileSync(join(t.dir, 'out.csv')), { columns: true }) as Record<string, string>[]).map((r) => r['path'])).toEqual(written);
  });

  it('relative paths resolve against --images or the CSV folder, and may lead out of it', async () => {
    const [a, b] = faces();
    const sub = join(t.dir, 'lists');
    mkdirSync(sub);
    cpSync(a!, join(t.dir, 'a.png'));
    writeFileSync(join(sub, 'up.csv'), `path,label\n../a.png,happy\n${b},sad\n`);
    const s = await ingest(store.db, { source: join(sub, 'up.csv') });
    expect(s.images).toBe(2);
    expect((store.db.prepare(`SELECT path FROM images ORDER BY id`).all() as { path: string }[]).map((r) => r.path)).toEqual(['../a.png', b]);
    // the same names against --images
    writeFileSync(join(t.dir, 'rel.csv'), `path,label\nface.png,happy\n`);
    mkdirSync(join(t.dir, 'imgs'));
    cpSync(a!, join(t.dir, 'imgs', 'face.png'));
    const s2 = await ingest(store.db, { source: join(t.dir, 'rel.csv'), images: join(t.dir, 'imgs'), name: 'rel' });
    expect(s2.dataset.root).toBe(join(t.dir, 'imgs'));
  });

  it('missing files are named one by one (file:line and path), exit 1, database unchanged', async () => {
    await ingest(store.db, { source: fixture('bad', 'good.csv'), name: 'existing' });
    const before = snapshot();
    const [a] = faces();
    writeFileSync(join(t.dir, 'gone.csv'), `path,label\n${a},happy\n/nowhere/x.png,sad\nnope/y.png,fear\n`);
    const r = await cli('ingest', join(t.dir, 'gone.csv'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/gone.csv:3: \/nowhere\/x.png: image file not found/);
    expect(r.stderr).toMatch(/gone.csv:4: nope\/y.png: image file not found/);
    expect(snapshot()).toBe(before);
  });
});

describe('classes from the data (issue 9.2)', () => {
  it('an image folder with a contempt folder ingests with no flag: contempt becomes the eighth class, and exports losslessly', async () => {
    const root = join(t.dir, 'folders');
    cpSync(fixture('imagefolder'), root, { recursive: true });
    mkdirSync(join(root, 'train', 'contempt'));
    for (const f of faces().slice(0, 2)) cpSync(f, join(root, 'train', 'contempt', f.split('/').pop()!));
    const s = await ingest(store.db, { source: root });
    expect(s.classes['contempt']).toBe(2);
    const dataset = resolveDataset(store.db);
    expect(dataset.taxonomy).toEqual(['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral', 'contempt']);
    await exportLabels(store.db, { dataset, out: join(t.dir, 'out.csv') });
    const out = parse(readFileSync(join(t.dir, 'out.csv')), { columns: true }) as Record<string, string>[];
    expect(out).toHaveLength(s.images);
    for (const r of out) expect(r['final_label']).toBe(r['path']!.split('/')[1]); // split/class/file: same path, same label
    // re-ingest keeps the classes; a dataset without contempt keeps seven
    expect((await ingest(store.db, { source: root })).unchanged).toBe(s.images);
    await ingest(store.db, { source: fixture('imagefolder'), name: 'plain' });
    expect(resolveDataset(store.db, 'plain').taxonomy).toHaveLength(7);
  });

  it('synonyms and case map to the canonical names', async () => {
    const written = ['Happy', 'HAPPINESS', 'angry', 'sad', 'surprised', 'Fearful', 'disgusted', 'NEUTRAL'];
    writeFileSync(join(t.dir, 'syn.csv'), stringify(faces().map((f, i) => ({ path: f, label: written[i]! })), { header: true }));
    await ingest(store.db, { source: join(t.dir, 'syn.csv') });
    const given = (store.db.prepare(`SELECT l.given, l.given_raw FROM labels l ORDER BY image_id`).all() as { given: string; given_raw: string }[]).map((r) => r.given);
    expect(given).toEqual(['happiness', 'happiness', 'anger', 'sadness', 'surprise', 'fear', 'disgust', 'neutral']);
  });

  it('labels that are not FER classes: one named error listing the labels found and how to declare them; --classes then works', async () => {
    const custom = ['pain', 'confused', 'pain', 'happy', 'confused', 'pain', 'neutral', 'happy'];
    const csv = join(t.dir, 'pain.csv');
    writeFileSync(csv, stringify(faces().map((f, i) => ({ path: f, label: custom[i]! })), { header: true }));
    await ingest(store.db, { source: fixture('bad', 'good.csv'), name: 'existing' });
    const before = snapshot();
    const r = await cli('ingest', csv);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/pain.csv:2: unknown label 'pain' \(3 rows\): not a FER class/);
    expect(r.stderr).toMatch(/pain.csv:3: unknown label 'confused' \(2 rows\): not a FER class/);
    expect(r.stderr).toMatch(/labels found: pain 3, confused 2, happiness 2, neutral 1\./);
    expect(r.stderr).toMatch(/--classes pain,confused,happiness,neutral/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(snapshot()).toBe(before);

    const ok = await cli('ingest', csv, '--classes', 'neutral,happy,pain,Confused', '--name', 'pain');
    expect(ok.code, ok.stderr).toBe(0);
    const ds = resolveDataset(store.db, 'pain');
    expect(ds.taxonomy).toEqual(['neutral', 'happiness', 'pain', 'Confused']);
    const given = (store.db.prepare(`SELECT l.given FROM labels l JOIN images i ON i.id = l.image_id WHERE i.dataset_id = ? ORDER BY i.id`).all(ds.id) as { given: string }[]).map((x) => x.given);
    expect(given).toEqual(['pain', 'Confused', 'pain', 'happiness', 'Confused', 'pain', 'neutral', 'happiness']);
    await exportLabels(store.db, { dataset: ds, out: join(t.dir, 'same.csv'), format: 'same' });
    expect(readFileSync(join(t.dir, 'same.csv'), 'utf8')).toBe(readFileSync(csv, 'utf8'));
    // a label outside the declared list is named
    const missing = await cli('ingest', csv, '--classes', 'pain,happy,neutral', '--name', 'short');
    expect(missing.stderr).toMatch(/pain.csv:3: label 'confused' is not one of the declared classes \(pain, happiness, neutral\)/);
  });

  it('--skip-bad skips the rows with unknown labels, listed once per label', async () => {
    writeFileSync(join(t.dir, 'some.csv'), stringify(faces().map((f, i) => ({ path: f, label: i < 3 ? 'pain' : 'happy' })), { header: true }));
    const s = await ingest(store.db, { source: join(t.dir, 'some.csv'), skipBad: true });
    expect(s.images).toBe(5);
    expect(s.skipped.map((p) => `${p.where}: ${p.message}`)).toEqual(["some.csv:2: unknown label 'pain' (3 rows): not a FER class"]);
  });

  it('a bad --classes is an error before anything is opened: exit 1, no database file', async () => {
    const io = captureIo(t.dir);
    expect(await run(['ingest', fixture('bad', 'good.csv'), '--classes', 'pain', '--db', join(t.dir, 'none.db')], io)).toBe(1);
    expect(io.stderr.text).toMatch(/--classes: 1 classes; a dataset has 2 to 9/);
    expect(existsSync(join(t.dir, 'none.db'))).toBe(false);
  });

  it('--classes is checked: 2 to 9 distinct names, no numbers', () => {
    expect(parseClassList('Happy, pain ,neutral')).toEqual(['happiness', 'pain', 'neutral']);
    expect(() => parseClassList('a,b,c,d,e,f,g,h,i,j')).toThrow(/10 classes; a dataset has 2 to 9 \(review picks them with the keys 1-9\)/);
    expect(() => parseClassList('pain,Pain')).toThrow(/'Pain' is listed twice/);
    expect(() => parseClassList('happy,happiness')).toThrow(/listed twice/);
    expect(() => parseClassList('pain,,x')).toThrow(/empty class name/);
    expect(() => parseClassList('pain,3')).toThrow(/'3' cannot be a class name/);
    expect(() => parseClassList('pain')).toThrow(/1 classes/);
  });

  it('numeric labels without an encoding stay an error, naming the encodings', async () => {
    await expect(ingest(store.db, { source: fixture('bad', 'numeric-label.csv') })).rejects.toThrow(
      /numeric-label.csv:2: numeric label '3'.*--label-encoding fer2013 \(0-6\), rafdb \(1-7\) or affectnet \(0-10\)/,
    );
  });

  it('a re-ingest keeps a face box it does not give (e.g. a detected one)', async () => {
    await ingest(store.db, { source: fixture('bad', 'good.csv') });
    store.db.prepare(`UPDATE images SET crop_x = 1, crop_y = 2, crop_w = 30, crop_h = 30, crop_source = 'detected', quality = 'too-small' WHERE id = 1`).run();
    const s = await ingest(store.db, { source: fixture('bad', 'good.csv') });
    expect(s.unchanged).toBe(2);
    expect(store.db.prepare(`SELECT crop_x, crop_w, crop_source, quality FROM images WHERE id = 1`).get()).toEqual({ crop_x: 1, crop_w: 30, crop_source: 'detected', quality: 'too-small' });
  });
});
