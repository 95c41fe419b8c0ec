import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { openStore } from '../src/store/db.js';
import { resolveDataset } from '../src/store/datasets.js';
import { DEFAULT_BACKBONE } from '../src/features/store.js';
import { initBackend } from '../src/features/backend.js';
import { chooseHeadEngine } from '../src/scn/engine.js';
import { loadDatasetView } from '../src/scn/data.js';
import { HEAD_DEFAULTS, SCN_DEFAULTS, trainHead, type TrainOptions } from '../src/scn/train.js';
import { BENCH_DB, machine } from './common.js';

/**
 * Head training speed, side by side: fer-clean's trainHead (method scn, default options) against a PyTorch script
 * of the authors' training step (bench/scn_torch.py) on the same embeddings (dataset fer2013plus in the bench
 * database, original labels, train split), alternating the two in one run so that both see the same machine load.
 * TRAIN_BENCH_ROUNDS (default 3) rounds; TORCH_PYTHON (default /usr/bin/python3) must import torch, else the
 * PyTorch half is skipped with a message. TRAIN_BENCH_BASELINE=path/to/another/build/dist/src/scn/train.js also
 * times that build's trainHead in every round (e.g. the previous implementation, built from an older commit).
 * TRAIN_BENCH_HIDDEN (default 256) sets the head's hidden units for all of them (0 = the authors' linear head).
 */
export async function main(): Promise<void> {
  const db = openStore(BENCH_DB);
  const dataset = resolveDataset(db, process.env['SCN_BENCH_DATASET'] ?? 'fer2013plus');
  const view = loadDatasetView(db, dataset, DEFAULT_BACKBONE, { kind: 'given' });
  db.close();
  const backend = await initBackend('auto');
  const engine = await chooseHeadEngine('auto');
  const kernels = engine.name === 'tfjs' ? `tfjs ${backend.name}` : engine.name;
  const C = dataset.taxonomy.length;
  const rows = (split: string): number[] => view.splits.flatMap((s, i) => (s === split && view.source[i]! >= 0 ? [i] : []));
  const train = rows('train');
  const valid = rows('valid');
  const options: TrainOptions = { ...HEAD_DEFAULTS, ...SCN_DEFAULTS, method: 'scn', hidden: Number(process.env['TRAIN_BENCH_HIDDEN'] ?? HEAD_DEFAULTS.hidden) };
  const baselinePath = process.env['TRAIN_BENCH_BASELINE'];
  const baseline = baselinePath ? ((await import(resolve(baselinePath))) as { trainHead: typeof trainHead }).trainHead : null;
  const rounds = Number(process.env['TRAIN_BENCH_ROUNDS'] ?? 3);
  const python = process.env['TORCH_PYTHON'] ?? '/usr/bin/python3';

  const dir = mkdtempSync(join(os.tmpdir(), 'fer-clean-train-bench-'));
  const write = (name: string, a: Float32Array | Int32Array): void => writeFileSync(join(dir, name), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  write('features.f32', view.features);
  write('labels.i32', view.source);
  write('train.i32', Int32Array.from(train));
  write('valid.i32', Int32Array.from(valid));
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ dim: view.dim, classes: C, options }));
  // One thread on the PyTorch side too: the BLAS under it (OpenBLAS, when Debian's alternative points there) would
  // otherwise start a thread per core.
  const torchEnv = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  const probe = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', env: torchEnv });
  const blasLink = '/usr/lib/x86_64-linux-gnu/libblas.so.3';
  const blas = existsSync(blasLink) ? realpathSync(blasLink) : 'unknown';
  const torchVersion = probe.status === 0 ? probe.stdout.trim() : null;

  console.log(`## Head training: fer-clean vs PyTorch (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)`);
  console.log(`machine: ${machine()}; load average at start ${os.loadavg().map((v) => v.toFixed(1)).join(' / ')}`);
  console.log(`command: npm run build && npm run bench -- train   (${rounds} rounds, alternating; TRAIN_BENCH_ROUNDS to change)`);
  console.log(
    `data: ${train.length} training rows (original labels), ${valid.length} valid rows, ${view.dim}-d ${DEFAULT_BACKBONE} embeddings; ` +
      `scn, hidden ${options.hidden}${options.hidden === HEAD_DEFAULTS.hidden ? ' (default)' : ` (default ${HEAD_DEFAULTS.hidden})`}, dropout ${options.dropout}, batch ${options.batchSize}, ${options.epochs} epochs.`,
  );
  if (!torchVersion) {
    console.log(`\nPyTorch half skipped: ${python} cannot import torch (${(probe.stderr || probe.error?.message || '').trim().split('\n').pop()}). ` + 'Set TORCH_PYTHON to a python with torch.');
  }
  if (torchVersion) console.log(`PyTorch's BLAS (Debian's libblas.so.3 alternative): ${blas}`);
  if (baseline) console.log(`baseline: trainHead of ${baselinePath}`);
  const baseCols = baseline ? ' baseline trainHead: wall (CPU) | baseline / fer-clean |' : '';
  console.log(`\n| round | fer-clean trainHead (${kernels}, 1 thread): wall (CPU) |${baseCols} PyTorch ${torchVersion ?? '-'} (1 thread): wall (CPU) | fer-clean / PyTorch | final valid acc fer-clean${baseline ? ' / baseline' : ''} / PyTorch |`);
  console.log(`|---|---|${baseline ? '---|---|' : ''}---|---|---|`);
  const baseS: number[] = [];
  const ratios: number[] = [];
  const ratiosCpu: number[] = [];
  const ours: number[] = [];
  const oursCpu: number[] = [];
  const theirs: number[] = [];
  const theirsCpu: number[] = [];
  const baseCpu: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const r = await trainHead({ features: view.features, dim: view.dim, classes: C, labels: view.source, train, valid }, options);
    const s = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(c0);
    ours.push(s);
    oursCpu.push(cpu);
    let baseCells = '';
    let baseVal = '';
    if (baseline) {
      const t1 = performance.now();
      const c1 = process.cpuUsage();
      const rb = await baseline({ features: view.features, dim: view.dim, classes: C, labels: view.source, train, valid }, options);
      const sb = (performance.now() - t1) / 1000;
      const cb = cpuSeconds(c1);
      baseS.push(sb);
      baseCpu.push(cb);
      baseCells = ` ${sb.toFixed(1)} s (${cb.toFixed(1)}) | ${(sb / s).toFixed(2)} (${(cb / cpu).toFixed(2)}) |`;
      baseVal = ` / ${pc(rb.epochs.at(-1)!.valAccuracy)}`;
    }
    let torchS: number | null = null;
    let torchCpu = NaN;
    let torchVal: number | null = null;
    if (torchVersion) {
      const p = spawnSync(python, [resolve('bench/scn_torch.py'), dir], { encoding: 'utf8', maxBuffer: 1 << 26, env: torchEnv });
      if (p.status !== 0) throw new Error(`bench/scn_torch.py failed: ${p.stderr}`);
      const out = JSON.parse(p.stdout.trim().split('\n').pop()!) as { seconds: number; cpuSeconds: number; epochs: { valAccuracy: number }[] };
      torchS = out.seconds;
      torchCpu = out.cpuSeconds;
      theirsCpu.push(torchCpu);
      ratiosCpu.push(cpu / torchCpu);
      torchVal = out.epochs.at(-1)!.valAccuracy;
      theirs.push(torchS);
      ratios.push(s / torchS);
    }
    console.log(
      `| ${round} | ${s.toFixed(1)} s (${cpu.toFixed(1)}) |${baseCells} ${torchS === null ? 'skipped' : `${torchS.toFixed(1)} s (${torchCpu.toFixed(1)})`} | ` +
        `${torchS === null ? '-' : `${(s / torchS).toFixed(2)} (${(cpu / torchCpu).toFixed(2)})`} | ` +
        `${pc(r.epochs.at(-1)!.valAccuracy)}${baseVal} / ${pc(torchVal)} |`,
    );
  }
  console.log(
    `\nmedian wall (CPU) seconds: fer-clean ${med(ours).toFixed(1)} (${med(oursCpu).toFixed(1)})` +
      (baseS.length ? `, baseline ${med(baseS).toFixed(1)} (${med(baseCpu).toFixed(1)})` : '') +
      (theirs.length ? `, PyTorch ${med(theirs).toFixed(1)} (${med(theirsCpu).toFixed(1)}); fer-clean / PyTorch ${med(ratios).toFixed(2)} (${med(ratiosCpu).toFixed(2)})` : ''),
  );
  console.log(
    'Times cover the training loop only (standardising, 20 epochs, per-epoch valid accuracy, importance window), not loading. ' +
      'In brackets: CPU seconds of the process (user + system), steadier than wall time when other jobs share the cores.',
  );
  rmSync(dir, { recursive: true, force: true });
}

/** CPU seconds (user + system) of this process since `from`. */
function cpuSeconds(from: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1e6;
}

const pc = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
function med(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
}
