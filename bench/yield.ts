import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { embedDataset } from '../src/features/embed.js';
import { DEFAULT_BACKBONE } from '../src/features/store.js';
import { ingest } from '../src/ingest/index.js';
import { calibrationByDecile, type CalibrationBin } from '../src/estimate/model.js';
import { finalLabels } from '../src/export/index.js';
import { loadEstimates, refit } from '../src/review/estimates/run-estimates.js';
import { learningOrder } from '../src/review/domain/order.js';
import { resolveRun } from '../src/store/runs.js';
import { bulkAccept, decideFromCsv, nextItems, type QueueOrder } from '../src/review/verbs.js';
import { trainRun } from '../src/scn/index.js';
import { openStore, type DB } from '../src/store/db.js';
import { resolveDataset } from '../src/store/datasets.js';
import { DATA_DIR, machine } from './common.js';

/**
 * Annotator yield: a simulated annotator whose truth is the FER+ majority (reference) walks a run's queue through
 * the scripted verbs (nextItems = `fer-clean queue`, decideFromCsv = `fer-clean decide`) in batches of BATCH:
 * accept when proposed = reference, reject when given = reference (or when there is no reference: the crowd did not
 * agree, keep the given label), set the reference by hand otherwise. Margin order and learning order run one after
 * the other on the same run, each inside a transaction that is rolled back, so the database is left as it was.
 *
 * `npm run bench -- yield [--db PATH]`: PATH must hold the shared FER2013/FER+ data ingested and embedded (the
 * latest finished scn run with seed 1 on the given labels is used, else one is trained); without --db, a database
 * is built once under .tmp/yield.db (ingest, embed, train: minutes) and reused.
 */
const CHECKPOINTS = [500, 1000, 2000, 4000];
const BATCH = 50;
const BULK_AT = 1000;
/** Bulk accept thresholds tried (each rolled back): the target's 0.95, and lower ones to show the trade-off. */
const BULK_P = [0.95, 0.9, 0.8, 0.7];

interface Truth {
  given: string;
  proposed: string;
  reference: string | null;
}

interface Checkpoint {
  decisions: number;
  accepted: number;
  fixed: number;
  nextPrecision: number;
  calibration: CalibrationBin[];
  exportAccuracy: number;
  bulk?: { p: number; items: number; right: number; expectedWrong: number }[];
}

function dbPathFromArgs(): string | undefined {
  const i = process.argv.indexOf('--db');
  return i >= 0 ? resolve(process.argv[i + 1] ?? '') : undefined;
}

async function prepare(path: string, build: boolean): Promise<{ db: DB; runId: number }> {
  const db = openStore(path);
  if (build) {
    console.error(`yield: building ${path} (ingest, embed, train)`);
    await ingest(db, { source: join(DATA_DIR, 'labels.csv'), name: 'fer2013plus' });
    const dataset = resolveDataset(db, 'fer2013plus');
    await embedDataset(db, { datasetId: dataset.id, backbone: DEFAULT_BACKBONE });
  }
  const dataset = resolveDataset(db, process.env['YIELD_DATASET'] ?? 'fer2013plus');
  const runs = db
    .prepare(`SELECT id, config FROM runs WHERE dataset_id = ? AND status = 'done' AND method = 'scn' AND seed = 1 ORDER BY id DESC`)
    .all(dataset.id) as { id: number; config: string }[];
  const found = runs.find((r) => {
    const c = JSON.parse(r.config) as { label_source?: string; noise?: { rate: number }; propose?: string; trusted_decisions?: number };
    return c.label_source === 'given' && (c.noise?.rate ?? 0) === 0 && (c.propose ?? 'margin') === 'margin' && !c.trusted_decisions;
  });
  if (found) return { db, runId: found.id };
  console.error('yield: training scn (defaults, seed 1)');
  const { runId } = await trainRun(db, scnDefaults(dataset.name));
  return { db, runId };
}

/** The run the benchmark walks: scn with its defaults on the given (original) labels, seed 1. */
function scnDefaults(dataset: string): Parameters<typeof trainRun>[1] {
  return {
    dataset,
    method: 'scn',
    backbone: DEFAULT_BACKBONE,
    backend: 'auto',
    labelSource: { kind: 'given' },
    noiseRate: 0,
    noiseType: 'symmetric',
    seed: 1,
    folds: 5,
  };
}

interface Retrained {
  runId: number;
  trusted: number;
  /** The new run's proposals (all on undecided images) and how many are right. */
  proposals: number;
  right: number;
  /** The original run's proposals still undecided, and how many are right. */
  before: number;
  beforeRight: number;
  testAccuracy: number | null;
  testAccuracyBefore: number | null;
}

async function simulate(
  db: DB,
  runId: number,
  order: QueueOrder,
  truth: Map<string, Truth>,
  tmp: string,
  retrain = false,
): Promise<{ checkpoints: Checkpoint[]; prior: CalibrationBin[]; seconds: number; retrained?: Retrained }> {
  const run = resolveRun(db, { runId });
  const checkpoints: Checkpoint[] = [];
  let decisions = 0;
  let accepted = 0;
  let fixed = 0;
  const t0 = performance.now();
  const right = (p: string) => truth.get(p)!.reference === truth.get(p)!.proposed;
  const calibrationNow = (): CalibrationBin[] => {
    const all = nextItems(db, { runId, order });
    return calibrationByDecile(all.items.map((i) => i.estimate), all.items.map((i) => right(i.path)));
  };
  const prior = calibrationNow();
  db.exec('BEGIN IMMEDIATE');
  try {
    for (const stop of CHECKPOINTS) {
      while (decisions < stop) {
        const q = nextItems(db, { runId, order, annotator: 'sim', limit: Math.min(BATCH, stop - decisions) });
        if (q.items.length === 0) break;
        const rows = q.items.map((it) => {
          const t = truth.get(it.path)!;
          if (t.reference === t.proposed) {
            accepted++;
            fixed++;
            return [it.path, 'accepted', ''];
          }
          if (t.reference === null || t.reference === t.given) return [it.path, 'rejected', ''];
          fixed++;
          return [it.path, 'manual', t.reference];
        });
        const file = join(tmp, 'batch.csv');
        writeFileSync(file, stringify(rows, { header: true, columns: ['path', 'action', 'label'] }));
        decideFromCsv(db, { runId, annotator: 'sim', file });
        decisions += rows.length;
      }
      const next = nextItems(db, { runId, order, limit: 1000 });
      const cal = calibrationNow();
      const exp = finalLabels(db, { dataset: run.dataset, runId }).rows.filter((r) => r.split === 'train' && r.reference_label !== null);
      const cp: Checkpoint = {
        decisions,
        accepted,
        fixed,
        nextPrecision: next.items.filter((i) => right(i.path)).length / Math.max(1, next.items.length),
        calibration: cal,
        exportAccuracy: exp.filter((r) => r.final_label === r.reference_label).length / exp.length,
      };
      if (stop === BULK_AT && order === 'estimate') {
        cp.bulk = [];
        for (const p of BULK_P) {
          db.exec('SAVEPOINT bulk');
          const b = bulkAccept(db, { runId, annotator: 'bulk', minEstimate: p });
          const rows = db.prepare(`SELECT i.path FROM decisions d JOIN images i ON i.id = d.image_id WHERE d.bulk_id = ?`).all(b.bulkId) as { path: string }[];
          cp.bulk.push({ p, items: b.items, right: rows.filter((r) => right(r.path)).length, expectedWrong: b.expectedWrong });
          db.exec('ROLLBACK TO bulk');
          db.exec('RELEASE bulk');
        }
      }
      checkpoints.push(cp);
      console.error(`  ${order}: ${decisions} decisions, next-1000 precision ${cp.nextPrecision.toFixed(3)}, fixed ${fixed} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
    const seconds = (performance.now() - t0) / 1000;
    let retrained: Retrained | undefined;
    if (retrain) {
      // A new run on the decisions so far as trusted labels (train --trust-decisions), same settings and seed.
      const before = nextItems(db, { runId, order: 'margin' }).items;
      const { runId: r2, report } = await trainRun(db, { ...scnDefaults(run.dataset.name), trustDecisions: true });
      const rows = db
        .prepare(
          `SELECT ri.proposed_label AS proposed, l.reference FROM run_images ri JOIN labels l ON l.image_id = ri.image_id
           WHERE ri.run_id = ? AND ri.proposed_label IS NOT NULL`,
        )
        .all(r2) as { proposed: string; reference: string | null }[];
      const cfg = JSON.parse((db.prepare(`SELECT config FROM runs WHERE id = ?`).get(r2) as { config: string }).config) as { trusted_decisions: number };
      const old = db.prepare(`SELECT metrics FROM runs WHERE id = ?`).get(runId) as { metrics: string };
      retrained = {
        runId: r2,
        trusted: cfg.trusted_decisions,
        proposals: rows.length,
        right: rows.filter((r) => r.reference === r.proposed).length,
        before: before.length,
        beforeRight: before.filter((i) => right(i.path)).length,
        testAccuracy: report.test_accuracy,
        testAccuracyBefore: (JSON.parse(old.metrics) as { test_accuracy: number | null }).test_accuracy,
      };
      console.error(`  retrained on ${retrained.trusted} trusted labels: run ${r2}, ${retrained.proposals} proposals`);
    }
    return { checkpoints, prior, seconds, retrained };
  } finally {
    db.exec('ROLLBACK');
  }
}

export async function main(): Promise<void> {
  const given = dbPathFromArgs();
  const path = given ?? resolve('.tmp/yield.db');
  if (given && !existsSync(given)) throw new Error(`bench yield: --db ${given}: no such file`);
  const { db, runId } = await prepare(path, !given && !existsSync(path));
  const run = resolveRun(db, { runId });
  const truth = new Map<string, Truth>();
  for (const r of db
    .prepare(
      `SELECT i.path, l.given, ri.proposed_label AS proposed, l.reference FROM run_images ri JOIN images i ON i.id = ri.image_id
       JOIN labels l ON l.image_id = ri.image_id WHERE ri.run_id = ? AND ri.proposed_label IS NOT NULL`,
    )
    .all(runId) as (Truth & { path: string })[]) {
    truth.set(r.path, r);
  }
  const decided = (db.prepare(`SELECT count(*) AS n FROM decisions WHERE run_id = ?`).get(runId) as { n: number }).n;
  if (decided > 0) throw new Error(`bench yield: run ${runId} already has ${decided} decision rows; use a database without review decisions`);

  // Speed of one refit + re-rank on this run (after the margin walk's 4,000 decisions it is timed again below).
  const tmp = mkdtempSync(join(tmpdir(), 'fer-bench-yield-'));
  try {
    const margin = await simulate(db, runId, 'margin', truth, tmp);
    const learning = await simulate(db, runId, 'estimate', truth, tmp, process.env['YIELD_RETRAIN'] !== '0');
    const speed = timeRefit(db, run, tmp, truth);
    const bound = ceiling(db, run, truth);

    console.log(`## Annotator yield (${new Date().toISOString().slice(0, 10)})`);
    console.log(`machine: ${machine()} (measured under load: other jobs on the 2 cores; the quality figures do not depend on it)`);
    console.log(`command: npm run build && npm run bench -- yield${given ? ` --db ${given}` : ''}`);
    console.log(
      `run ${runId} (${run.method}, dataset ${run.dataset.name}): ${truth.size} proposals, ` +
        `${[...truth.values()].filter((t) => t.reference === t.proposed).length} of them right (proposed = FER+ majority), ` +
        `${[...truth.values()].filter((t) => t.reference === null).length} without a reference (simulated annotator rejects them). Batches of ${BATCH}.\n`,
    );
    console.log('| decisions | order | accepted / 1,000 decisions | wrong labels fixed (per 1,000) | precision of the next 1,000 | export accuracy (train, vs FER+) |');
    console.log('|---|---|---|---|---|---|');
    CHECKPOINTS.forEach((_, k) => {
      for (const [name, r] of [['margin', margin], ['learning', learning]] as const) {
        const c = r.checkpoints[k];
        if (!c) continue;
        console.log(
          `| ${c.decisions} | ${name} | ${Math.round((1000 * c.accepted) / c.decisions)} | ${c.fixed} (${Math.round((1000 * c.fixed) / c.decisions)}) | ` +
            `${c.nextPrecision.toFixed(3)} | ${(100 * c.exportAccuracy).toFixed(2)}% |`,
        );
      }
    });
    console.log('\nCalibration of the learning order\'s estimate on the undecided proposals (predicted / observed acceptance, items):\n');
    const header = ['bin', 'before any decision', ...CHECKPOINTS.map((c) => `after ${c}`)];
    console.log(`| ${header.join(' | ')} |`);
    console.log(`|${header.map(() => '---').join('|')}|`);
    for (let b = 0; b < 10; b++) {
      const cell = (bin: CalibrationBin | undefined) =>
        bin && bin.n ? `${bin.predicted!.toFixed(3)} / ${bin.observed!.toFixed(3)} (${bin.n})` : '-';
      console.log(`| ${b / 10}-${(b + 1) / 10} | ${cell(learning.prior[b])} | ${learning.checkpoints.map((c) => cell(c.calibration[b])).join(' | ')} |`);
    }
    const worst = (c: Checkpoint | undefined) =>
      c ? Math.max(0, ...c.calibration.filter((b) => b.n >= 200).map((b) => Math.abs(b.predicted! - b.observed!))) : NaN;
    console.log(`\nlargest gap in a bin with >= 200 items after 1,000 decisions: ${(100 * worst(learning.checkpoints[1])).toFixed(1)} points.`);
    for (const b of learning.checkpoints[1]?.bulk ?? []) {
      console.log(
        `bulk accept at --min-estimate ${b.p} after ${BULK_AT} decisions (learning order): ${b.items} proposals, ${b.right} right ` +
          `(${b.items ? ((100 * b.right) / b.items).toFixed(1) : '-'}%), expected wrong ${b.expectedWrong.toFixed(1)}, observed wrong ${b.items - b.right}.`,
      );
    }
    const rt = learning.retrained;
    if (rt) {
      const pc = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : '-');
      console.log(
        `retraining after ${CHECKPOINTS.at(-1)} decisions (learning order; train --trust-decisions, scn defaults, seed 1, rolled back): ${rt.trusted} trusted labels; ` +
          `the new run proposes ${rt.proposals} relabels on undecided images, ${rt.right} right (${pc(rt.right, rt.proposals)}), against the original run's ` +
          `${rt.before} undecided proposals, ${rt.beforeRight} right (${pc(rt.beforeRight, rt.before)}); test accuracy vs FER+ ` +
          `${rt.testAccuracy === null ? '-' : (100 * rt.testAccuracy).toFixed(1)}% (original run ${rt.testAccuracyBefore === null ? '-' : (100 * rt.testAccuracyBefore).toFixed(1)}%).`,
      );
    }
    for (const c of bound) {
      console.log(
        `after the first ${c.k} items of the margin order: their next 1,000 in margin order ${c.margin.toFixed(3)}; the 1,000 best of the rest by ` +
          `the estimate refitted on those ${c.k} decisions (no exploration) ${c.fitted.toFixed(3)}; by the estimate fitted on all ${truth.size} outcomes (in-sample bound of these features) ${c.inSample.toFixed(3)}.`,
      );
    }
    console.log(
      `refit + re-rank of the run's ${truth.size} proposals after 4,000 decisions: median ${speed.median.toFixed(0)} ms of ${speed.n} (load, parse and features once: ${speed.load.toFixed(0)} ms); ` +
        `walks took ${margin.seconds.toFixed(0)} s (margin) and ${learning.seconds.toFixed(0)} s (learning), each batch re-reading the run through the verbs.`,
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    db.close();
  }
}

/** Times refit + learning order on the run with 4,000 simulated decisions in force (rolled back afterwards). */
function timeRefit(db: DB, run: ReturnType<typeof resolveRun>, tmp: string, truth: Map<string, Truth>): { median: number; load: number; n: number } {
  db.exec('BEGIN IMMEDIATE');
  try {
    const q = nextItems(db, { runId: run.id, order: 'margin', limit: 4000 });
    const rows = q.items.map((it) => {
      const t = truth.get(it.path)!;
      return [it.path, t.reference === t.proposed ? 'accepted' : 'rejected', ''];
    });
    const file = join(tmp, 'speed.csv');
    writeFileSync(file, stringify(rows, { header: true, columns: ['path', 'action', 'label'] }));
    decideFromCsv(db, { runId: run.id, annotator: 'speed', file });
    const t0 = performance.now();
    const e = loadEstimates(db, run);
    const load = performance.now() - t0;
    const times: number[] = [];
    for (let k = 0; k < 7; k++) {
      const t = performance.now();
      const decided = refit(db, e);
      learningOrder(e.items, e.model, decided);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return { median: times[3]!, load, n: times.length };
  } finally {
    db.exec('ROLLBACK');
  }
}

/**
 * What the estimate's features can give: after the first k items of the margin order are decided, the precision of
 * the next 1,000 in margin order, of the 1,000 best of the rest by the estimate refitted on those k decisions (the
 * issue's offline check), and by the estimate fitted on every outcome (in-sample: an upper bound for these features).
 */
function ceiling(db: DB, run: ReturnType<typeof resolveRun>, truth: Map<string, Truth>): { k: number; margin: number; fitted: number; inSample: number }[] {
  const e = loadEstimates(db, run); // items in margin order
  const right = e.items.map((it) => truth.get(it.path)!.reference === truth.get(it.path)!.proposed);
  const all = e.items.map((_, i) => ({ index: i, accepted: right[i]! }));
  const best = (from: number): number => {
    const rest = e.items.map((_, i) => i).slice(from).sort((a, b) => e.model.estimate(b) - e.model.estimate(a));
    return rest.slice(0, 1000).filter((i) => right[i]).length / 1000;
  };
  return [1000, 2000].map((k) => {
    const margin = right.slice(k, k + 1000).filter(Boolean).length / 1000;
    e.model.fit(all.slice(0, k));
    const fitted = best(k);
    e.model.fit(all);
    return { k, margin, fitted, inSample: best(k) };
  });
}
