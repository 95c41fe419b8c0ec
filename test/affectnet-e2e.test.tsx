/**
 * Issues 9 and 13 end to end on real fixtures: AffectNet's annotation file (face boxes, codes 8-10) and a dataset with
 * its own classes (--classes) go through embed, train, report, review and export.
 */
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { cleanup as inkCleanup, render } from 'ink-testing-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/features/backend.js';
import { embedDataset } from '../src/features/embed.js';
import { ingest } from '../src/ingest/index.js';
import { App } from '../src/review/terminal/App.js';
import { renderFace } from '../src/review/terminal/face.js';
import { loadDetail } from '../src/review/domain/proposals.js';
import { resolveRun } from '../src/store/runs.js';
import { ReviewSession } from '../src/review/session/session.js';
import { openStore, type DB } from '../src/store/db.js';
import { fixture, tempDir, cliRunner } from './helpers.js';

const TRAINING = fixture('affectnet', 'Manually_Annotated_file_lists', 'training.csv');
const FAST = ['--epochs', '6', '--relabel-epoch', '2', '--hidden', '32', '--batch', '16'];

let tmp: { dir: string; cleanup: () => void };
let dbPath: string;
let db: DB;
let customCsv: string;

beforeAll(async () => {
  tmp = tempDir();
  dbPath = join(tmp.dir, 'fer.db');
  db = openStore(dbPath);
  await initBackend('auto');
  await ingest(db, { source: TRAINING });
  // A dataset with its own classes: FER faces labelled pain / confused / happy / neutral.
  const names: Record<string, string> = { anger: 'pain', surprise: 'confused', happiness: 'happy', neutral: 'neutral' };
  const rows = (parse(readFileSync(fixture('ferplus', 'labels.csv')), { columns: true }) as Record<string, string>[])
    .filter((r) => r['split'] !== 'valid' && names[r['fer2013_label']!])
    .filter((_, i) => i % 3 === 0)
    .map((r) => ({ path: fixture('ferplus', r['image']!), label: names[r['fer2013_label']!]!, split: r['split']! }));
  customCsv = join(tmp.dir, 'custom.csv');
  writeFileSync(customCsv, stringify(rows, { header: true }));
  await ingest(db, { source: customCsv, classes: ['pain', 'confused', 'happy', 'neutral'], name: 'custom' });
  await ingest(db, { source: fixture('affectnet-folders'), labelEncoding: 'affectnet' });
  for (const { id } of db.prepare(`SELECT id FROM datasets ORDER BY id`).all() as { id: number }[]) {
    await embedDataset(db, { datasetId: id, backbone: 'faceexpr', workers: 0 });
  }
}, 120_000);

afterAll(() => {
  inkCleanup();
  db?.close();
  tmp?.cleanup();
});

const cli = cliRunner({ cwd: () => tmp.dir, db: () => dbPath });

describe('AffectNet annotation file: embed, train, report, review, export', () => {
  let runId: number;

  it('trains on the expression rows only: codes 8-10 get no run row, no proposal', async () => {
    const r = await cli('train', '--dataset', 'affectnet-training', '--seed', '3', ...FAST);
    expect(r.code, r.stderr).toBe(0);
    runId = Number(r.stdout.trim());
    const seen = db.prepare(`SELECT l.trainable, count(*) AS n FROM run_images ri JOIN labels l ON l.image_id = ri.image_id WHERE ri.run_id = ? GROUP BY l.trainable`).all(runId);
    expect(seen).toEqual([{ trainable: 1, n: 24 }]);
    const probs = JSON.parse((db.prepare(`SELECT probs FROM run_images WHERE run_id = ? LIMIT 1`).get(runId) as { probs: string }).probs) as number[];
    expect(probs).toHaveLength(8); // contempt is a class: the data has it
  });

  it('report counts the rows kept out of training and the no-face flag', async () => {
    const r = await cli('report', '--run', String(runId));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/not an expression \(kept, left out of training and proposals\): 3 of 27 images — no-face 1, none 1, uncertain 1/);
    expect(r.stdout).toMatch(/data-quality flags: no-face 1/);
    const j = await cli('report', '--run', String(runId), '--json');
    expect(JSON.parse(j.stdout).dataset_labels).toMatchObject({ images: 27, non_expression: { none: 1, uncertain: 1, 'no-face': 1 }, quality: { 'no-face': 1 } });
    // each flagged image once with all its reasons (issue 21 item 4): the code-10 image was listed under both
    const flagged = JSON.parse(j.stdout).flagged_images as { path: string; reasons: { source: string; flag: string }[] }[];
    expect(new Set(flagged.map((f) => f.path)).size).toBe(flagged.length);
    expect(flagged).toHaveLength(3);
    const noFace = flagged.filter((f) => f.reasons.some((x) => x.flag === 'no-face'));
    expect(noFace).toHaveLength(1);
    expect(noFace[0]!.reasons.map((x) => `${x.source}:${x.flag}`)).toEqual(['ingest:no-face', 'label:no-face']);
    expect(r.stdout.match(new RegExp(noFace[0]!.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g'))).toHaveLength(1);
  });

  it('the face review shows is the annotated box, not the whole photo', async () => {
    const run = resolveRun(db, { runId });
    const row = db
      .prepare(`SELECT i.id, i.path, i.crop_x AS x, i.crop_y AS y, i.crop_w AS w, i.crop_h AS h FROM images i JOIN run_images ri ON ri.image_id = i.id WHERE ri.run_id = ? LIMIT 1`)
      .get(runId) as { id: number; path: string; x: number; y: number; w: number; h: number };
    const detail = loadDetail(db, run, row.id);
    expect(detail.file).toBe(fixture('affectnet', 'Manually_Annotated_Images', row.path));
    expect(detail.box).toEqual({ x: row.x, y: row.y, w: row.w, h: row.h });
    const crop = join(tmp.dir, 'crop.png');
    await sharp(detail.file).extract({ left: row.x, top: row.y, width: row.w, height: row.h }).png().toFile(crop);
    const shown = await renderFace(detail.file, 24, 12, 'truecolor', detail.box);
    expect(shown).toEqual(await renderFace(crop, 24, 12, 'truecolor'));
    expect(shown).not.toEqual(await renderFace(detail.file, 24, 12, 'truecolor'));
  });

  it('export --format same after training gives the annotation file back byte for byte', async () => {
    const r = await cli('export', join(tmp.dir, 'training.csv'), '--dataset', 'affectnet-training', '--format', 'same');
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(tmp.dir, 'training.csv')).equals(readFileSync(TRAINING))).toBe(true);
  });
});

describe('AffectNet class folders (train/0 ... train/7): train, review, export', () => {
  it('trains over the eight classes, review shows the whole (already cropped) image, export gives each folder code as its class', async () => {
    const r = await cli('train', '--dataset', 'affectnet-folders', '--seed', '2', '--noise', '0.3', ...FAST);
    expect(r.code, r.stderr).toBe(0);
    const runId = Number(r.stdout.trim());
    const run = resolveRun(db, { runId });
    expect(run.dataset.taxonomy).toHaveLength(8);
    const inTraining = db.prepare(`SELECT count(*) AS n FROM run_images WHERE run_id = ? AND in_training = 1`).get(runId) as { n: number };
    expect(inTraining.n).toBe(16); // train/ ; val/ is the valid split
    const some = db.prepare(`SELECT image_id FROM run_images WHERE run_id = ? LIMIT 1`).get(runId) as { image_id: number };
    expect(loadDetail(db, run, some.image_id).box).toBeNull();
    const out = await cli('export', join(tmp.dir, 'folders.csv'), '--dataset', 'affectnet-folders', '--run', String(runId));
    expect(out.code, out.stderr).toBe(0);
    const rows = parse(readFileSync(join(tmp.dir, 'folders.csv')), { columns: true }) as Record<string, string>[];
    expect(rows).toHaveLength(24);
    const CODES = ['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger', 'contempt'];
    for (const x of rows) expect(x['final_label']).toBe(CODES[Number(x['path']!.split('/')[1])]);
  });
});

describe('a dataset with its own classes (--classes): train, review keys, export', () => {
  it('trains over the declared classes, review key 3 picks the third (a real Ink render), export writes it', async () => {
    const r = await cli('train', '--dataset', 'custom', '--seed', '1', '--noise', '0.4', ...FAST);
    expect(r.code, r.stderr).toBe(0);
    const runId = Number(r.stdout.trim());
    const probs = JSON.parse((db.prepare(`SELECT probs FROM run_images WHERE run_id = ? LIMIT 1`).get(runId) as { probs: string }).probs) as number[];
    expect(probs).toHaveLength(4);
    const session = ReviewSession.open(db, { annotator: 'alice', runId }).start();
    expect(session.taxonomy).toEqual(['pain', 'confused', 'happiness', 'neutral']); // FER names become canonical
    expect(session.items.length, 'the noisy run proposes something to review').toBeGreaterThan(0);
    const first = session.items[0]!;
    const app = render(<App session={session} colorMode="none" />);
    const start = Date.now();
    const decided = (): { new_label: string } | undefined =>
      db.prepare(`SELECT new_label FROM decisions WHERE image_id = ? AND action = 'manual'`).get(first.imageId) as { new_label: string } | undefined;
    while (!(app.lastFrame() ?? '').includes('3 happiness') && Date.now() - start < 20_000) await new Promise((res) => setTimeout(res, 5));
    app.stdin.write('3');
    while (!decided() && Date.now() - start < 20_000) await new Promise((res) => setTimeout(res, 5));
    expect(decided()).toEqual({ new_label: 'happiness' });
    app.unmount();
    session.close();

    const out = await cli('export', join(tmp.dir, 'custom-out.csv'), '--dataset', 'custom', '--run', String(runId));
    expect(out.code, out.stderr).toBe(0);
    const rows = parse(readFileSync(join(tmp.dir, 'custom-out.csv')), { columns: true }) as Record<string, string>[];
    const src = parse(readFileSync(customCsv), { columns: true }) as Record<string, string>[];
    expect(rows.map((x) => x['path'])).toEqual(src.map((x) => x['path']));
    const path = (db.prepare(`SELECT path FROM images WHERE id = ?`).get(first.imageId) as { path: string }).path;
    expect(rows.find((x) => x['path'] === path)).toMatchObject({ final_label: 'happiness', decision: 'manual' });
    const canonical = (l: string): string => (l === 'happy' ? 'happiness' : l);
    for (const x of rows) if (x['path'] !== path) expect(x['final_label']).toBe(canonical(src.find((y) => y['path'] === x['path'])!['label']!));
  });
});
