import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/features/backend.js';
import { embedDataset } from '../src/features/embed.js';
import { ingest } from '../src/ingest/index.js';
import { openStore, type DB } from '../src/store/db.js';
import { createRun } from '../src/store/runs.js';
import { fixture, tempDir, cliRunner } from './helpers.js';

let tmp: { dir: string; cleanup: () => void };
let dbPath: string;
let db: DB;
let labelsBefore: unknown[];

beforeAll(async () => {
  tmp = tempDir();
  dbPath = join(tmp.dir, 'fer.db');
  db = openStore(dbPath);
  await initBackend('auto');
  const ing = await ingest(db, { source: fixture('ferplus', 'labels.csv') });
  expect(ing).toBeTruthy();
  const dataset = db.prepare(`SELECT id FROM datasets`).get() as { id: number };
  await embedDataset(db, { datasetId: dataset.id, backbone: 'faceexpr', workers: 0 });
  labelsBefore = db.prepare(`SELECT image_id, given, reference FROM labels ORDER BY image_id`).all();
}, 120_000);

afterAll(() => {
  db?.close();
  tmp?.cleanup();
});

const cli = cliRunner({ cwd: () => tmp.dir, db: () => dbPath });

const FAST = ['--epochs', '6', '--relabel-epoch', '2', '--hidden', '32', '--batch', '32'];

interface ImageRow {
  image_id: number;
  given_label: string;
  trained_label: string;
  in_training: number;
  importance: number | null;
  importance_mean: number | null;
  probs: string;
  predicted_label: string;
  proposed_label: string | null;
  proposal_margin: number | null;
  split: string;
  reference: string | null;
  dataset_given: string;
  original: string | null;
}

function imagesOf(runId: number): ImageRow[] {
  return db
    .prepare(
      `SELECT ri.*, i.split, l.reference, l.given AS dataset_given, n.original FROM run_images ri JOIN images i ON i.id = ri.image_id
       JOIN labels l ON l.image_id = ri.image_id LEFT JOIN run_noise n ON n.run_id = ri.run_id AND n.image_id = ri.image_id
       WHERE ri.run_id = ? ORDER BY ri.image_id`,
    )
    .all(runId) as ImageRow[];
}

describe('train and report on the ferplus fixture (296 images: 192 train, 52 valid, 52 test)', () => {
  let scnRun: number;

  it('scn with 30% synthetic noise stores the run, its epochs, its flips and every per-image field', async () => {
    const r = await cli('train', '--noise', '0.3', '--seed', '2', ...FAST);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\d+\n$/);
    scnRun = Number(r.stdout.trim());
    expect(r.stderr).toMatch(/noise detection against injected flips/);

    const runRow = db.prepare(`SELECT * FROM runs WHERE id = ?`).get(scnRun) as Record<string, unknown>;
    expect(runRow).toMatchObject({ method: 'scn', backbone: 'faceexpr', seed: 2, noise_rate: 0.3, noise_type: 'symmetric', status: 'done' });
    // The head trained on onnxruntime's kernels (--backend auto); the tfjs backend is recorded beside it.
    expect(runRow['backend']).toBe('onnxruntime');
    const config = JSON.parse(runRow['config'] as string);
    expect(config).toMatchObject({ head_engine: 'onnxruntime', backend: expect.stringMatching(/^(wasm|cpu|tensorflow)$/) });
    expect(config).toMatchObject({ label_source: 'given', head: { epochs: 6, hidden: 32, batchSize: 32 }, scn: { beta: 0.7, delta1: 0.15, delta2: 0.2, relabelEpoch: 2, relabelScope: 'low' } });
    expect(runRow['duration_s']).toBeGreaterThan(0);

    const epochs = db.prepare(`SELECT * FROM run_epochs WHERE run_id = ? ORDER BY epoch`).all(scnRun) as Record<string, number>[];
    expect(epochs.map((e) => e['epoch'])).toEqual([1, 2, 3, 4, 5, 6]);
    for (const e of epochs) {
      expect(Number.isFinite(e['loss'])).toBe(true);
      expect(e['importance_gap']).not.toBeNull();
      expect(e['val_accuracy']).not.toBeNull();
    }
    expect(epochs[0]!['relabeled']).toBe(0);

    const images = imagesOf(scnRun);
    expect(images).toHaveLength(296);
    const train = images.filter((i) => i.in_training === 1);
    expect(train).toHaveLength(192); // the fixture's train split
    expect(train.every((i) => i.split === 'train')).toBe(true);
    const noise = db.prepare(`SELECT * FROM run_noise WHERE run_id = ?`).all(scnRun) as { original: string; noisy: string }[];
    expect(noise).toHaveLength(58); // round(0.3 * 192)
    expect(noise.every((n) => n.original !== n.noisy)).toBe(true);
    // Stored probabilities are calibrated by temperature scaling on the valid split (52 images); proposals are chosen
    // on the head's own probabilities, softmax(z) = q^T / sum q^T for the stored q = softmax(z / T).
    const calibration = (JSON.parse((db.prepare(`SELECT config FROM runs WHERE id = ?`).get(scnRun) as { config: string }).config) as { calibration: { method: string; T: number; rows: number } }).calibration;
    expect(calibration).toMatchObject({ method: 'temperature', rows: 52 });
    expect(calibration.T).toBeGreaterThan(0);
    const uncalibrated = (q: number[]): number[] => {
      const w = q.map((v) => Math.pow(Math.max(v, 1e-12), calibration.T));
      const sum = w.reduce((a, b) => a + b, 0);
      return w.map((v) => v / sum);
    };
    for (const img of images) {
      const probs = JSON.parse(img.probs) as number[];
      expect(probs).toHaveLength(7);
      expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
      expect(img.importance).toBeGreaterThan(0);
      expect(img.importance).toBeLessThan(1);
      expect(img.importance_mean).not.toBeNull();
      // given_label is the label after noise: the stored dataset label unless this run flipped it.
      if (img.original) expect(img.given_label).not.toBe(img.dataset_given);
      else expect(img.given_label).toBe(img.dataset_given);
      if (img.in_training === 0) expect(img.trained_label).toBe(img.given_label);
      // Default proposals: the final classifier's class where it beats the given label by more than delta2 (training images).
      if (img.in_training === 1) {
        const tax = ['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral'];
        const raw = uncalibrated(probs);
        const margin = Math.max(...raw) - raw[tax.indexOf(img.given_label)]!;
        if (margin > 0.2 + 1e-3) expect(img.proposed_label).toBe(img.predicted_label);
        if (margin < 0.2 - 1e-3) expect(img.proposed_label).toBeNull();
      }
      if (img.proposed_label !== null) {
        expect(img.in_training).toBe(1);
        expect(img.proposed_label).not.toBe(img.given_label);
        const tax = ['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral'];
        expect(img.proposal_margin).toBeCloseTo(probs[tax.indexOf(img.proposed_label)]! - probs[tax.indexOf(img.given_label)]!, 4);
      } else {
        expect(img.proposal_margin).toBeNull();
      }
    }
    // Stored labels are never changed by training.
    expect(db.prepare(`SELECT image_id, given, reference FROM labels ORDER BY image_id`).all()).toEqual(labelsBefore);
  });

  it('report --json is consistent with the stored rows', async () => {
    const r = await cli('report', '--run', String(scnRun), '--json');
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    const images = imagesOf(scnRun);
    const test = images.filter((i) => i.split === 'test');
    const withRef = test.filter((i) => i.reference !== null);
    expect(rep.test_images).toBe(52);
    expect(rep.test_accuracy).toBeCloseTo(withRef.filter((i) => i.predicted_label === i.reference).length / withRef.length, 10);
    expect(rep.test_accuracy_given).toBeCloseTo(test.filter((i) => i.predicted_label === i.dataset_given).length / test.length, 10);
    const train = images.filter((i) => i.in_training === 1);
    const flipped = new Set(train.filter((i) => i.original !== null).map((i) => i.image_id));
    const proposed = train.filter((i) => i.proposed_label !== null);
    const tp = proposed.filter((i) => flipped.has(i.image_id)).length;
    expect(rep.detection.truth).toBe('synthetic');
    expect(rep.detection.noisy).toBe(58);
    expect(rep.detection.proposals).toBe(proposed.length);
    const precision = proposed.length ? tp / proposed.length : null;
    const recall = tp / 58;
    if (precision === null) expect(rep.detection.precision).toBeNull();
    else expect(rep.detection.precision).toBeCloseTo(precision, 10);
    expect(rep.detection.recall).toBeCloseTo(recall, 10);
    if (precision !== null && precision + recall > 0) expect(rep.detection.f1).toBeCloseTo((2 * precision * recall) / (precision + recall), 10);
    const lowest = [...train].sort((a, b) => a.importance! - b.importance! || a.image_id - b.image_id).slice(0, 20); // ceil(10% of 192)
    expect(rep.detection.low_importance_precision).toBeCloseTo(lowest.filter((i) => flipped.has(i.image_id)).length / 20, 10);
    if (proposed.length) {
      expect(rep.relabel_accuracy).toBeCloseTo(proposed.filter((i) => i.proposed_label === i.original).length / proposed.length, 10);
    }
    const hist = rep.importance_histogram;
    expect(hist.clean.reduce((a: number, b: number) => a + b, 0) + hist.noisy.reduce((a: number, b: number) => a + b, 0)).toBe(192);
    expect(rep.proposal_confusions.reduce((s: number, p: { count: number }) => s + p.count, 0)).toBe(proposed.length);
    // The summary stored with the run says the same.
    const metrics = JSON.parse((db.prepare(`SELECT metrics FROM runs WHERE id = ?`).get(scnRun) as { metrics: string }).metrics);
    expect(metrics.test_accuracy).toBe(rep.test_accuracy);
    expect(metrics.detection).toEqual(rep.detection);

    const text = await cli('report', '--run', String(scnRun));
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/importance of the training images/);
    expect(text.stdout).toMatch(/precision/);
  });

  it('the same seed on the same backend reproduces the run', async () => {
    const r = await cli('train', '--noise', '0.3', '--seed', '2', ...FAST);
    const again = Number(r.stdout.trim());
    const a = imagesOf(scnRun).map((i) => [i.probs, i.importance, i.proposed_label]);
    const b = imagesOf(again).map((i) => [i.probs, i.importance, i.proposed_label]);
    expect(b).toEqual(a);
    // --propose relabeled: proposals = the labels SCN trained with at the end.
    const relArgs = ['--propose', 'relabeled', '--relabel-scope', 'all', '--delta2', '0', '--epochs', '10', '--relabel-epoch', '2', '--batch', '32'];
    const rel = Number((await cli('train', '--noise', '0.3', '--seed', '2', ...relArgs)).stdout.trim());
    const relImages = imagesOf(rel);
    for (const img of relImages) {
      expect(img.proposed_label).toBe(img.in_training && img.trained_label !== img.given_label ? img.trained_label : null);
    }
    expect(relImages.some((i) => i.proposed_label !== null)).toBe(true);
    // --propose predicted: proposals = the final classifier's class wherever it differs from the given label.
    const pred = Number((await cli('train', '--noise', '0.3', '--seed', '2', '--propose', 'predicted', ...FAST)).stdout.trim());
    const predImages = imagesOf(pred);
    for (const img of predImages) {
      expect(img.proposed_label).toBe(img.in_training && img.predicted_label !== img.given_label ? img.predicted_label : null);
    }
    // More proposals than the margin rule (delta2 0.2) of the same seed, which are a subset of them.
    const byMargin = new Map(imagesOf(again).map((i) => [i.image_id, i.proposed_label]));
    const nPred = predImages.filter((i) => i.proposed_label !== null).length;
    expect(nPred).toBeGreaterThan([...byMargin.values()].filter((p) => p !== null).length);
    expect(predImages.every((i) => byMargin.get(i.image_id) === null || byMargin.get(i.image_id) === i.proposed_label)).toBe(true);
  });

  it('ce and cl runs on the original labels, scored against the reference labels', async () => {
    const ce = await cli('train', '--method', 'ce', '--epochs', '4', '--hidden', '32');
    expect(ce.code, ce.stderr).toBe(0);
    const cl = await cli('train', '--method', 'cl', '--folds', '3', '--epochs', '4', '--hidden', '32');
    expect(cl.code, cl.stderr).toBe(0);
    const clRun = Number(cl.stdout.trim());
    expect((db.prepare(`SELECT count(*) AS n FROM run_epochs WHERE run_id = ?`).get(clRun) as { n: number }).n).toBe(12);
    const rep = JSON.parse((await cli('report', '--run', String(clRun), '--json')).stdout);
    expect(rep.method).toBe('cl');
    expect(rep.detection.truth).toBe('reference');
    expect(rep.importance_histogram).toBeNull();
    const images = imagesOf(clRun);
    expect(images.every((i) => i.importance === null)).toBe(true);
    const scored = images.filter((i) => i.in_training === 1 && i.reference !== null);
    expect(rep.detection.scored).toBe(scored.length);
    expect(rep.detection.noisy).toBe(scored.filter((i) => i.reference !== i.given_label).length);
    // A head trained on cl's corrections, then on the reference labels (images without one are left out).
    const fixed = await cli('train', '--method', 'ce', '--epochs', '2', '--label-source', `run:${clRun}`);
    expect(fixed.code, fixed.stderr).toBe(0);
    const ref = await cli('train', '--method', 'ce', '--epochs', '2', '--label-source', 'reference');
    const refRun = Number(ref.stdout.trim());
    const trained = imagesOf(refRun).filter((i) => i.in_training === 1);
    expect(trained.every((i) => i.reference !== null && i.given_label === i.reference)).toBe(true);
  });

  it('--trust-decisions: reviewed labels train as given, are never relabeled and get no new proposal', async () => {
    const first = await cli('train', '--seed', '3', ...FAST);
    expect(first.code, first.stderr).toBe(0);
    const runId = Number(first.stdout.trim());
    const props = imagesOf(runId).filter((i) => i.proposed_label !== null).slice(0, 3);
    expect(props).toHaveLength(3);
    const path = (id: number) => (db.prepare(`SELECT path FROM images WHERE id = ?`).get(id) as { path: string }).path;
    const other = (i: ImageRow) => ['anger', 'disgust', 'fear'].find((c) => c !== i.given_label && c !== i.proposed_label)!;
    const file = join(tmp.dir, 'decisions.csv');
    writeFileSync(
      file,
      `path,action,label\n${path(props[0]!.image_id)},accepted,\n${path(props[1]!.image_id)},rejected,\n${path(props[2]!.image_id)},manual,${other(props[2]!)}\n`,
    );
    expect((await cli('decide', '--run', String(runId), '--annotator', 'ana', file)).code).toBe(0);
    const decided = new Map([
      [props[0]!.image_id, props[0]!.proposed_label!],
      [props[1]!.image_id, props[1]!.dataset_given],
      [props[2]!.image_id, other(props[2]!)],
    ]);
    const bad = await cli('train', '--trust-decisions', '--noise', '0.2', ...FAST);
    expect(bad.stderr).toMatch(/--trust-decisions cannot be combined with --noise/);
    const second = await cli('train', '--seed', '3', '--trust-decisions', '--relabel-scope', 'all', ...FAST);
    expect(second.code, second.stderr).toBe(0);
    const run2 = Number(second.stdout.trim());
    const config = JSON.parse((db.prepare(`SELECT config FROM runs WHERE id = ?`).get(run2) as { config: string }).config);
    expect(config.trusted_decisions).toBe(3);
    const rows = imagesOf(run2);
    for (const r of rows.filter((i) => decided.has(i.image_id))) {
      expect([r.given_label, r.trained_label, r.proposed_label]).toEqual([decided.get(r.image_id), decided.get(r.image_id), null]);
    }
    // Relabeling (scope all) changed undecided images but no decided one; undecided ones still get proposals.
    expect(rows.some((i) => !decided.has(i.image_id) && i.trained_label !== i.given_label)).toBe(true);
    expect(rows.filter((i) => i.proposed_label !== null).length).toBeGreaterThan(0);
  });

  it('explains bad options and missing embeddings', async () => {
    const bad = await cli('train', '--method', 'ce', '--beta', '0.5');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/takes no SCN options/);
    const badPropose = await cli('train', '--method', 'cl', '--propose', 'relabeled');
    expect(badPropose.stderr).toMatch(/--method cl takes no SCN options \(--propose\)/);
    // Ranges are the library's, told in flags; the CLI only parses types.
    const ranges = await cli('train', '--dropout', '1', '--beta', '0', '--delta1', '3', '--epochs', '1');
    expect(ranges.code).toBe(1);
    expect(ranges.stderr).toContain('2 bad options\n  --dropout 1: expected a rate in [0, 1)\n  --beta 0: expected a fraction in (0, 1)\n');
    const noise = await cli('train', '--noise', '1');
    expect(noise.stderr).toMatch(/--noise 1: expected a fraction in \[0, 1\)/);
    const notNumber = await cli('train', '--lr', 'fast');
    expect(notNumber.stderr).toMatch(/--lr must be a number, got 'fast'/);
    const ceDelta2 = await cli('train', '--method', 'ce', '--delta2', '0.3');
    expect(ceDelta2.stderr).toMatch(/--method ce takes no SCN options \(--delta2\)/);
    const noEmb = await cli('train', '--backbone', 'facerec', '--epochs', '1');
    expect(noEmb.code).toBe(1);
    expect(noEmb.stderr).toMatch(/fer-clean embed/);
    // --label-source run:ID names a finished run of this dataset.
    expect((await cli('train', '--label-source', 'run:x')).stderr).toMatch(/label source 'run:x': expected given, reference or run:ID/);
    expect((await cli('train', '--label-source', 'run:999', '--epochs', '1')).stderr).toMatch(/no run with id 999 \(runs in this database: \d/);
    const unfinished = createRun(db, { datasetId: 1, method: 'scn', backbone: 'faceexpr', backend: 'cpu', seed: 1, noiseRate: 0, noiseType: null, config: {} });
    const notDone = await cli('train', '--label-source', `run:${unfinished}`, '--epochs', '1');
    expect(notDone.code).toBe(1);
    expect(notDone.stderr).toMatch(new RegExp(`run ${unfinished} has status 'running': only a finished run \\(status 'done'\\) can be used as a label source`));
    const noRun = await cli('report', '--run', '999');
    expect(noRun.code).toBe(1);
    expect(noRun.stderr).toMatch(/no run with id 999/);
  });
});
