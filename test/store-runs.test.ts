import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { FerCleanError } from '../src/errors.js';
import { nowIso } from '../src/store/db.js';
import { getDatasetById } from '../src/store/datasets.js';
import { createRun, failRun, resolveRun } from '../src/store/runs.js';
import { useStore, useTempDir } from './helpers.js';
import { seedReviewDb } from './review-helpers.js';

describe('resolveRun: the one way to find a run', () => {
  const t = useTempDir();
  const s = useStore(t, (dir) => seedReviewDb(join(dir, 'r.db'), { images: 3 }));

  const run = (datasetId: number, method: 'scn' | 'ce' | 'cl' = 'scn') =>
    createRun(s.db, { datasetId, method, backbone: 'test', backend: 'cpu', seed: 1, noiseRate: 0, noiseType: null, config: {} });
  const otherDataset = () => {
    const now = nowIso();
    const id = Number(
      s.db
        .prepare(
          `INSERT INTO datasets (name, format, source, root, taxonomy, options, created_at, updated_at)
           VALUES ('other', 'csv', 'x.csv', '/tmp', '["happy","sad"]', '{}', ?, ?)`,
        )
        .run(now, now).lastInsertRowid,
    );
    return getDatasetById(s.db, id);
  };

  it('finds a run by id with its decoded config and its dataset', () => {
    const r = resolveRun(s.db, { runId: s.runId });
    expect([r.id, r.status, r.method, r.dataset.name]).toEqual([s.runId, 'done', 'scn', 'ferplus-fixture']);
    expect(r.config).toEqual({});
  });

  it('without an id: the latest finished run (of the dataset, of the method)', () => {
    const ds = getDatasetById(s.db, 1);
    const running = run(ds.id); // status 'running': never the latest finished one
    expect(resolveRun(s.db).id).toBe(s.runId);
    expect(resolveRun(s.db, { done: false }).id).toBe(running);
    const other = otherDataset();
    expect(() => resolveRun(s.db, { dataset: other, purpose: 'to review' })).toThrow(
      /dataset 'other' has no finished run to review: run `fer-clean train` first/,
    );
    expect(resolveRun(s.db, { dataset: other, optional: true })).toBeNull();
    expect(() => resolveRun(s.db, { dataset: ds, method: 'ce' })).toThrow(/dataset 'ferplus-fixture' has no finished ce run/);
    // no dataset named with several in the database: the choice is asked for, never guessed
    expect(() => resolveRun(s.db, { method: 'ce' })).toThrow(/holds 2 datasets \(ferplus-fixture, other\): pick one with --dataset NAME or --run ID/);
  });

  it('refuses a run that does not meet the requirements, saying why', () => {
    expect(() => resolveRun(s.db, { runId: 99 })).toThrow(/no run with id 99 \(runs in this database: 1\)/);
    const other = otherDataset();
    expect(() => resolveRun(s.db, { runId: s.runId, dataset: other })).toThrow(/--run 1 is a run of dataset 'ferplus-fixture' but --dataset names 'other'/);
    expect(() => resolveRun(s.db, { runId: s.runId, method: 'cl', purpose: 'to x' })).toThrow(/run 1 is a scn run: only a cl run can be used to x/);
    const failed = run(1);
    failRun(s.db, failed, 'boom', 1);
    expect(() => resolveRun(s.db, { runId: failed, purpose: 'to export' })).toThrow(FerCleanError);
    expect(() => resolveRun(s.db, { runId: failed, purpose: 'to export' })).toThrow(
      /run 2 has status 'failed': only a finished run \(status 'done'\) can be used to export/,
    );
    // An id asked for is refused even when optional (optional only covers "no latest run").
    expect(() => resolveRun(s.db, { runId: failed, optional: true })).toThrow(/status 'failed'/);
    expect(resolveRun(s.db, { runId: failed, done: false }).status).toBe('failed');
  });
});
