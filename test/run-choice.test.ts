// One rule for --run and --dataset in every command: --run wins and names its dataset; --dataset alone picks that
// dataset's latest finished run; both, disagreeing, is RunDatasetMismatchError; neither, with several datasets, asks.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nowIso } from '../src/store/db.js';
import { resolveDataset } from '../src/store/datasets.js';
import { resolveRun, RunDatasetMismatchError } from '../src/store/runs.js';
import { cliRunner, useStore, useTempDir } from './helpers.js';
import { seedReviewDb, type Seeded } from './review-helpers.js';

/**
 * Dataset 'ferplus-fixture' (id 1): run 1 (10 proposals) and run 2 (finished later, no proposal: its latest).
 * Dataset 'other' (id 2): the same fixture faces, run 3 (10 proposals, the same as run 1's).
 */
function seedTwoDatasets(dbPath: string): Seeded & { otherRunId: number } {
  const s = seedReviewDb(dbPath, { images: 10, emptyRun: true });
  const db = s.db;
  const now = nowIso();
  db.transaction(() => {
    db.prepare(
      `INSERT INTO datasets (name, format, source, root, taxonomy, options, created_at, updated_at)
       SELECT 'other', format, source, root, taxonomy, options, ?, ? FROM datasets WHERE id = 1`,
    ).run(now, now);
    db.prepare(
      `INSERT INTO images (dataset_id, path, sha256, width, height, channels, split)
       SELECT 2, path, sha256, width, height, channels, split FROM images WHERE dataset_id = 1 ORDER BY id`,
    ).run();
    db.prepare(
      `INSERT INTO labels (image_id, given, given_raw, reference)
       SELECT i2.id, l.given, l.given_raw, l.reference FROM labels l
       JOIN images i1 ON i1.id = l.image_id AND i1.dataset_id = 1 JOIN images i2 ON i2.dataset_id = 2 AND i2.path = i1.path`,
    ).run();
    db.prepare(
      `INSERT INTO runs (dataset_id, method, backbone, backend, seed, config, status, started_at, finished_at)
       VALUES (2, 'scn', 'test', 'cpu', 1, '{}', 'done', ?, ?)`,
    ).run(now, now);
    db.prepare(
      `INSERT INTO run_images (run_id, image_id, given_label, trained_label, importance, importance_mean, probs, predicted_label, proposed_label, proposal_margin)
       SELECT 3, i2.id, ri.given_label, ri.trained_label, ri.importance, ri.importance_mean, ri.probs, ri.predicted_label, ri.proposed_label, ri.proposal_margin
       FROM run_images ri JOIN images i1 ON i1.id = ri.image_id JOIN images i2 ON i2.dataset_id = 2 AND i2.path = i1.path WHERE ri.run_id = 1`,
    ).run();
  })();
  return { ...s, otherRunId: 3 };
}

describe('--run and --dataset: one rule, every command', () => {
  const t = useTempDir();
  const s = useStore(t, (dir) => seedTwoDatasets(join(dir, 'two.db')));

  const fer = cliRunner({ cwd: () => t.dir, db: () => join(t.dir, 'two.db'), env: { FER_CLEAN_ANNOTATOR: 'ann' } });
  const MISMATCH = /--run 1 is a run of dataset 'ferplus-fixture' but --dataset names 'other'/;
  const decisions = () => (s.db.prepare(`SELECT count(*) AS n FROM decisions`).get() as { n: number }).n;

  it('resolveRun: the rule itself', () => {
    expect(resolveRun(s.db, { runId: 3 }).dataset.name).toBe('other'); // --run wins, whatever the datasets
    expect(resolveRun(s.db, { dataset: 'other' }).id).toBe(3);
    expect(resolveRun(s.db, { dataset: 'ferplus-fixture' }).id).toBe(2); // the dataset's latest finished run
    expect(resolveRun(s.db, { runId: 1, dataset: 'ferplus-fixture' }).id).toBe(1);
    expect(() => resolveRun(s.db, { runId: 1, dataset: 'other' })).toThrow(RunDatasetMismatchError);
    expect(() => resolveRun(s.db, { runId: 1, dataset: resolveDataset(s.db, 'other') })).toThrow(MISMATCH);
    expect(() => resolveRun(s.db, {})).toThrow(/holds 2 datasets \(ferplus-fixture, other\): pick one with --dataset NAME or --run ID/);
    expect(() => resolveRun(s.db, { runId: 1, dataset: 'nope' })).toThrow(/no dataset named 'nope'/);
  });

  it('report (and report --sheet) follow it', async () => {
    const byRun = await fer('report', '--run', '3', '--json');
    expect(byRun.code).toBe(0);
    expect(JSON.parse(byRun.stdout).run_id).toBe(3);
    const byDataset = await fer('report', '--dataset', 'ferplus-fixture', '--json');
    expect(JSON.parse(byDataset.stdout).run_id).toBe(2);
    const both = await fer('report', '--run', '1', '--dataset', 'other');
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(MISMATCH);
    expect((await fer('report')).stderr).toMatch(/pick one with --dataset NAME or --run ID/);
    // the sheet is drawn from the run chosen once: run 3's ten proposals (its dataset's faces)
    const sheet = await fer('report', '--run', '3', '--sheet', join(t.dir, 's.png'), '--sheet-count', '4', '--json');
    expect(sheet.code).toBe(0);
    expect(sheet.stderr).toMatch(/contact sheet: .*s\.png \(4 faces/);
    const noSheet = await fer('report', '--run', '1', '--dataset', 'other', '--sheet', join(t.dir, 't.png'));
    expect(noSheet.stderr).toMatch(MISMATCH);
  });

  it('review follows it', async () => {
    expect((await fer('review', '--run', '2')).stdout).toMatch(/Nothing to review: run 2 \(ferplus-fixture\)/);
    expect((await fer('review', '--dataset', 'ferplus-fixture')).stdout).toMatch(/Nothing to review: run 2 \(ferplus-fixture\)/);
    const both = await fer('review', '--run', '1', '--dataset', 'other');
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(MISMATCH);
    expect((await fer('review')).stderr).toMatch(/pick one with --dataset NAME or --run ID/);
  });

  it('queue follows it', async () => {
    const q = JSON.parse((await fer('queue', '--run', '3', '--json')).stdout) as { run: number; dataset: string };
    expect([q.run, q.dataset]).toEqual([3, 'other']);
    const d = JSON.parse((await fer('queue', '--dataset', 'other', '--json')).stdout) as { run: number; dataset: string };
    expect([d.run, d.dataset]).toEqual([3, 'other']);
    const both = await fer('queue', '--run', '1', '--dataset', 'other');
    expect([both.code, both.stderr]).toEqual([1, expect.stringMatching(MISMATCH)]);
  });

  it('decide and undo follow it; a mismatch changes nothing', async () => {
    const csv = join(t.dir, 'd.csv');
    writeFileSync(csv, `path,action,label\n${s.images[0]!.path},accepted,\n`);
    const both = await fer('decide', '--run', '1', '--dataset', 'other', csv);
    expect([both.code, both.stderr]).toEqual([1, expect.stringMatching(MISMATCH)]);
    expect(decisions()).toBe(0);
    expect((await fer('decide', '--run', '3', csv)).code).toBe(0); // run 3 names dataset 'other'
    const row = s.db.prepare(`SELECT d.run_id, i.dataset_id FROM decisions d JOIN images i ON i.id = d.image_id`).get();
    expect(row).toEqual({ run_id: 3, dataset_id: 2 });
    const undoBoth = await fer('undo', '--run', '1', '--dataset', 'other');
    expect([undoBoth.code, undoBoth.stderr]).toEqual([1, expect.stringMatching(MISMATCH)]);
    expect(decisions()).toBe(1);
    const undo = await fer('undo', '--dataset', 'other');
    expect(undo.code).toBe(0);
    expect(decisions()).toBe(2); // the undo is a row of its own
  });

  it('accept follows it', async () => {
    // bulk accept needs 200 decisions to estimate from: the refusal names the run chosen
    expect((await fer('accept', '--run', '3', '--min-estimate', '0.01', '--dry-run')).stderr).toMatch(/run 3 has 0 reviewer decision/);
    expect((await fer('accept', '--dataset', 'other', '--min-estimate', '0.01')).stderr).toMatch(/run 3 has 0 reviewer decision/);
    expect((await fer('accept', '--dataset', 'ferplus-fixture', '--min-estimate', '0.01')).stderr).toMatch(/run 2 has 0 reviewer decision/);
    const both = await fer('accept', '--run', '1', '--dataset', 'other', '--min-estimate', '0.01');
    expect([both.code, both.stderr]).toEqual([1, expect.stringMatching(MISMATCH)]);
    expect(decisions()).toBe(0);
  });

  it('export --run names its dataset (it used to ask for --dataset with two datasets)', async () => {
    const byRun = await fer('export', join(t.dir, 'a.csv'), '--run', '3');
    expect(byRun.code).toBe(0);
    expect(byRun.stdout).toMatch(/wrote 10 rows .*SCN fields from run 3/);
    expect((await fer('export', join(t.dir, 'b.csv'), '--dataset', 'ferplus-fixture')).stdout).toMatch(/SCN fields from run 2/);
    const both = await fer('export', join(t.dir, 'c.csv'), '--run', '1', '--dataset', 'other');
    expect([both.code, both.stderr]).toEqual([1, expect.stringMatching(MISMATCH)]);
    expect((await fer('export', join(t.dir, 'd.csv'))).stderr).toMatch(/pick one with --dataset NAME or --run ID/);
  });

  it('train --label-source run:ID names its dataset; --trust-decisions trains on the dataset named', async () => {
    const both = await fer('train', '--label-source', 'run:3', '--dataset', 'ferplus-fixture');
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/--label-source run:3 is a run of dataset 'other' but --dataset names 'ferplus-fixture'/);
    // run 3 picks dataset 'other' (which has no embeddings yet: the message names it)
    expect((await fer('train', '--label-source', 'run:3')).stderr).toMatch(/--dataset other/);
    expect((await fer('train', '--trust-decisions')).stderr).toMatch(/holds 2 datasets .*pick one with --dataset NAME/);
    expect((await fer('train', '--trust-decisions', '--dataset', 'other')).stderr).toMatch(/--dataset other/);
    expect(s.db.prepare(`SELECT count(*) AS n FROM runs`).get()).toEqual({ n: 3 });
  });
});
