import { resolve } from 'node:path';
import os from 'node:os';
import { nextItems, type QueueOrder } from '../src/review/verbs.js';
import { trainRun, type TrainRunOptions } from '../src/scn/index.js';
import { openStore, type DB } from '../src/store/db.js';
import { resolveDataset } from '../src/store/datasets.js';
import { resolveRun } from '../src/store/runs.js';
import type { Tta } from '../src/features/tta.js';
import { machine } from './common.js';

/**
 * How right the top of the review queue is (issue 17, item 4). For each finished run of a database: its test
 * accuracy against the reference labels (FER+ majority), and of the first 100 / 250 / 1,000 proposals of three
 * orders, the fraction whose proposed label is the reference (rows with no reference counted wrong; in brackets,
 * the fraction with those rows left out):
 * - margin: P(proposed) - P(given), as stored (`fer-clean queue --order margin`);
 * - estimate: the learning order with no decision yet, as `fer-clean review` and `queue` give it (no random draw
 *   before the first decision: explorationRule in src/review/domain/order.ts).
 *
 * `npm run bench -- top --db PATH [--train scn:1,ce:1,...] [--tta none|flip]`: PATH is never trained on unless
 * --train names method:seed pairs to train first (on PATH: use a copy). Prints a markdown table.
 */
const KS = [100, 250, 1000];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

interface Top {
  k: number;
  right: number;
  scored: number;
  rightScored: number;
}

function score(db: DB, ids: { imageId: number; proposed: string }[], k: number): Top {
  const ref = db.prepare(`SELECT reference FROM labels WHERE image_id = ?`);
  let right = 0;
  let scored = 0;
  for (const it of ids.slice(0, k)) {
    const r = (ref.get(it.imageId) as { reference: string | null } | undefined)?.reference ?? null;
    if (r === null) continue;
    scored++;
    if (r === it.proposed) right++;
  }
  return { k: Math.min(k, ids.length), right, scored, rightScored: right };
}

function orderOf(db: DB, runId: number, which: QueueOrder, n: number): { imageId: number; proposed: string }[] {
  return nextItems(db, { runId, limit: n, order: which }).items.map((q) => ({ imageId: q.imageId, proposed: q.proposed }));
}

export async function main(): Promise<void> {
  const dbPath = arg('db');
  if (!dbPath) throw new Error('bench top: --db PATH is required (a database with finished runs, or a copy to train on)');
  const db = openStore(resolve(dbPath));
  const train = arg('train');
  if (train) {
    const dataset = resolveDataset(db, undefined);
    for (const spec of train.split(',')) {
      const [method, seed] = spec.split(':') as [TrainRunOptions['method'], string];
      const t0 = performance.now();
      const { runId } = await trainRun(db, {
        dataset: dataset.name,
        method,
        backbone: 'faceexpr',
        tta: arg('tta') as Tta | undefined,
        backend: 'auto',
        labelSource: { kind: 'given' },
        noiseRate: 0,
        noiseType: 'symmetric',
        seed: Number(seed),
        folds: 5,
      });
      console.error(`bench top: trained run ${runId} (${method}, seed ${seed}) in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
  }
  console.log(`### Top of the queue (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)`);
  console.log(`machine: ${machine()}; load average ${os.loadavg().map((x) => x.toFixed(1)).join(', ')}`);
  console.log(`command: npm run bench -- top --db ${dbPath}${train ? ` --train ${train}` : ''}${arg('tta') ? ` --tta ${arg('tta')}` : ''}`);
  console.log('');
  const head = ['run', 'method', 'seed', 'tta', 'T', 'test acc', 'proposals', 'order', ...KS.map((k) => `first ${k}`)];
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map(() => '---').join('|')}|`);
  const runs = db.prepare(`SELECT id FROM runs WHERE status = 'done' ORDER BY id`).all() as { id: number }[];
  for (const { id } of runs) {
    const run = resolveRun(db, { runId: id });
    const config = run.config as unknown as { tta?: string; calibration?: { T?: number }; label_source?: string; noise?: { rate: number } };
    if (config.label_source !== 'given' || (config.noise?.rate ?? 0) > 0) continue;
    const metrics = JSON.parse((db.prepare(`SELECT metrics FROM runs WHERE id = ?`).get(id) as { metrics: string }).metrics) as { test_accuracy_reference: number | null; proposals: number };
    const acc = metrics.test_accuracy_reference === null ? '-' : `${(100 * metrics.test_accuracy_reference).toFixed(2)}%`;
    for (const order of ['margin', 'estimate'] as const) {
      const ids = orderOf(db, id, order, Math.max(...KS));
      const cells = KS.map((k) => {
        const t = score(db, ids, k);
        return `${(t.right / Math.max(1, t.k)).toFixed(3)} (${(t.rightScored / Math.max(1, t.scored)).toFixed(3)})`;
      });
      const T = config.calibration?.T;
      console.log(`| ${id} | ${run.method} | ${run.seed} | ${config.tta ?? 'none'} | ${T === undefined ? '-' : T.toFixed(2)} | ${acc} | ${metrics.proposals} | ${order} | ${cells.join(' | ')} |`);
    }
  }
  db.close();
}
