import { openStore } from '../src/store/db.js';
import { resolveDataset } from '../src/store/datasets.js';
import { DEFAULT_BACKBONE } from '../src/features/store.js';
import { trainRun, type TrainRunOptions } from '../src/scn/index.js';
import type { RunReport } from '../src/scn/metrics.js';
import { runImagesForScoring, type Method } from '../src/store/runs.js';
import type { DB } from '../src/store/db.js';
import { BENCH_DB, machine, mb, peakRss } from './common.js';

/**
 * SCN against its baselines on the shared FER2013 / FER+ data (dataset `fer2013plus` in the bench database,
 * embeddings from the embed benchmark), default backbone and hyper-parameters:
 *  1. the paper's protocol: given = FER+ majority, symmetric noise 10/20/30%, ce vs scn test accuracy (mean of
 *     the seeds), flip-detection F1 of scn vs cl;
 *  2. real noise: given = original FER2013 labels, reference = FER+ majority: detection and relabel accuracy of
 *     scn and cl, and test accuracy of a ce head retrained on each method's corrected labels;
 *  3. speed: seconds and peak RSS of one full scn run on the train split.
 * SCN_BENCH_SEEDS (default 3) and SCN_BENCH_PARTS (default 1,2,3) shorten it.
 */
export async function main(): Promise<void> {
  const db = openStore(BENCH_DB);
  const dataset = resolveDataset(db, process.env['SCN_BENCH_DATASET'] ?? 'fer2013plus');
  const seeds = Array.from({ length: Number(process.env['SCN_BENCH_SEEDS'] ?? 3) }, (_, i) => i + 1);
  const parts = new Set((process.env['SCN_BENCH_PARTS'] ?? '1,2,3').split(',').map((s) => s.trim()));
  const started = performance.now();
  const base: Omit<TrainRunOptions, 'method' | 'seed'> = {
    dataset: dataset.name,
    backbone: DEFAULT_BACKBONE,
    backend: 'auto',
    labelSource: { kind: 'given' },
    noiseRate: 0,
    noiseType: 'symmetric',
    folds: 5,
  };
  const run = async (method: Exclude<Method, 'probs'>, seed: number, extra: Partial<TrainRunOptions> = {}): Promise<RunReport & { id: number }> => {
    const t0 = performance.now();
    const { runId, report } = await trainRun(db, { ...base, method, seed, ...extra });
    const d = report.detection;
    console.error(
      `  run ${runId}: ${method} seed ${seed} ${extra.labelSource?.kind ?? 'given'} noise ${extra.noiseRate ?? 0}: ` +
        `test ${pc(report.test_accuracy)}, F1 ${f3(d?.f1 ?? null)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
    );
    return { ...report, id: runId };
  };

  console.log(`## SCN (${new Date().toISOString().slice(0, 10)})`);
  console.log(`machine: ${machine()} (2 cores shared with other work: timings are indicative)`);
  console.log(`command: npm run build && npm run bench -- scn   (dataset ${dataset.name}, backbone ${DEFAULT_BACKBONE}, default hyper-parameters)`);

  if (parts.has('1')) {
    console.log('\n### 1. Paper protocol: given = FER+ majority, symmetric noise (test accuracy vs FER+ majority)');
    console.log(`seeds ${seeds.join(', ')}; cl uses seed 1 only (5 folds).\n`);
    console.log('| noise | ce acc | scn acc | scn - ce | scn P / R / F1 | cl P / R / F1 | scn relabel acc | cl relabel acc | scn lowest-importance 10%: wrong | runs |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    const ref = { labelSource: { kind: 'reference' } as const };
    const rules: string[] = [];
    for (const rate of [0.1, 0.2, 0.3]) {
      const ce: (RunReport & { id: number })[] = [];
      const scn: (RunReport & { id: number })[] = [];
      for (const seed of seeds) {
        ce.push(await run('ce', seed, { ...ref, noiseRate: rate }));
        scn.push(await run('scn', seed, { ...ref, noiseRate: rate }));
      }
      const cl = await run('cl', 1, { ...ref, noiseRate: rate });
      const accCe = stats(ce.map((r) => r.test_accuracy!));
      const accScn = stats(scn.map((r) => r.test_accuracy!));
      rules.push(`| ${rate * 100}% | ${ruleLine(db, scn.map((r) => r.id))} |`);
      console.log(
        `| ${rate * 100}% | ${pcs(accCe)} | ${pcs(accScn)} | ${((accScn.mean - accCe.mean) * 100).toFixed(1)} pt | ` +
          `${prf(mean(scn.map((r) => r.detection!.precision)), mean(scn.map((r) => r.detection!.recall)), mean(scn.map((r) => r.detection!.f1)))} | ` +
          `${prf(cl.detection!.precision, cl.detection!.recall, cl.detection!.f1)} | ${pc(mean(scn.map((r) => r.relabel_accuracy)))} | ` +
          `${pc(cl.relabel_accuracy)} | ${pc(mean(scn.map((r) => r.detection!.low_importance_precision)))} | ` +
          `ce ${ce.map((r) => r.id).join(',')}; scn ${scn.map((r) => r.id).join(',')}; cl ${cl.id} |`,
      );
    }
    console.log('\nscn detection F1 (mean over the seeds) by proposal rule, from the same runs\' stored rows:\n');
    console.log('| noise | margin (default) | predicted | relabeled |');
    console.log('|---|---|---|---|');
    for (const line of rules) console.log(line);
  }

  if (parts.has('2')) {
    console.log('\n### 2. Real noise: given = original FER2013 labels, reference = FER+ majority (seed 1)\n');
    const scn = await run('scn', 1);
    const cl = await run('cl', 1);
    const ce = await run('ce', 1);
    const ceOnScn = await run('ce', 1, { labelSource: { kind: 'run', runId: scn.id } });
    const ceOnCl = await run('ce', 1, { labelSource: { kind: 'run', runId: cl.id } });
    const ceOnRef = await run('ce', 1, { labelSource: { kind: 'reference' } });
    console.log('| method | proposals | precision | recall | F1 | relabel acc (all proposals) | relabel acc (true detections) | own test acc | ce retrained on its corrections | run |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const [name, r, retrained] of [
      ['scn', scn, ceOnScn],
      ['cl', cl, ceOnCl],
      ['ce (in-sample, P_max - P_given > 0.2)', ce, null],
    ] as const) {
      const d = r.detection!;
      console.log(
        `| ${name} | ${d.proposals} | ${f3(d.precision)} | ${f3(d.recall)} | ${f3(d.f1)} | ${pc(r.relabel_accuracy)} | ` +
          `${pc(r.relabel_accuracy_detected)} | ${pc(r.test_accuracy)} | ${retrained ? `${pc(retrained.test_accuracy)} (run ${retrained.id})` : '-'} | ${r.id} |`,
      );
    }
    console.log(`\nce trained on the original labels: ${pc(ce.test_accuracy)} test accuracy (vs FER+ majority); on the FER+ majority (ceiling): ${pc(ceOnRef.test_accuracy)} (run ${ceOnRef.id}).`);
    console.log(`wrong labels among the scored training images: ${scn.detection!.noisy} of ${scn.detection!.scored}; scn lowest-importance 10%: ${pc(scn.detection!.low_importance_precision)} wrong.`);
    console.log(`scn detection F1 by proposal rule (margin, default / predicted / relabeled), from run ${scn.id}'s stored rows: ${ruleLine(db, [scn.id])}.`);
  }

  if (parts.has('3')) {
    console.log('\n### 3. Speed: one full scn run on the original labels of the train split\n');
    const mem = peakRss();
    const t0 = performance.now();
    const r = await run('scn', 7);
    const secs = (performance.now() - t0) / 1000;
    const peak = mem.stop();
    console.log(
      `${r.train_images} training images, ${r.epochs} epochs on ${r.backend}: ${secs.toFixed(1)} s in all (training ${r.duration_s!.toFixed(1)} s = ` +
        `${((r.train_images * r.epochs) / r.duration_s!).toFixed(0)} samples/s; the rest loads embeddings and stores ${dataset.name}'s per-image rows), peak RSS ${mb(peak)}.`,
    );
  }
  console.log(`\nbenchmark wall time: ${((performance.now() - started) / 60000).toFixed(1)} min`);
  db.close();
}

const pc = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
const f3 = (x: number | null): string => (x === null ? '-' : x.toFixed(3));
const prf = (p: number | null, r: number | null, f: number | null): string => `${f3(p)} / ${f3(r)} / ${f3(f)}`;
function mean(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}
function stats(xs: number[]): { mean: number; sd: number } {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean: m, sd };
}
const pcs = (s: { mean: number; sd: number }): string => `${(100 * s.mean).toFixed(1)} ± ${(100 * s.sd).toFixed(1)}%`;

/** Detection F1 of the three scn proposal rules, recomputed from stored rows (mean over runs), as 'a | b | c'. */
function ruleLine(db: DB, runIds: number[]): string {
  const rules = ['margin', 'predicted', 'relabeled'] as const;
  const f1s = rules.map(() => [] as number[]);
  for (const id of runIds) {
    const synthetic = (db.prepare(`SELECT noise_rate FROM runs WHERE id = ?`).get(id) as { noise_rate: number }).noise_rate > 0;
    const tax = (JSON.parse((db.prepare(`SELECT d.taxonomy FROM runs r JOIN datasets d ON d.id = r.dataset_id WHERE r.id = ?`).get(id) as { taxonomy: string }).taxonomy)) as string[];
    const rows = runImagesForScoring(db, id).filter((r) => r.in_training === 1 && (synthetic || r.reference !== null));
    rules.forEach((rule, k) => {
      let tp = 0;
      let proposals = 0;
      let noisy = 0;
      for (const r of rows) {
        const truth = synthetic ? (r.noise_original ?? r.given_label) : r.reference!;
        const bad = truth !== r.given_label;
        if (bad) noisy++;
        const margin = Math.max(...r.probs) - r.probs[tax.indexOf(r.given_label)]!;
        const proposed =
          rule === 'margin' ? r.predicted_label !== r.given_label && margin > 0.2 : rule === 'predicted' ? r.predicted_label !== r.given_label : r.trained_label !== r.given_label;
        if (!proposed) continue;
        proposals++;
        if (bad) tp++;
      }
      const p = proposals ? tp / proposals : 0;
      const rc = noisy ? tp / noisy : 0;
      f1s[k]!.push(p + rc > 0 ? (2 * p * rc) / (p + rc) : 0);
    });
  }
  return f1s.map((v) => f3(mean(v))).join(' | ');
}
