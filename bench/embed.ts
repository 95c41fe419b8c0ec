import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, tf } from '../src/features/backend.js';
import { DEFAULT_BATCH, embedDataset, type EmbedOptions } from '../src/features/embed.js';
import { BACKBONES } from '../src/features/backbones.js';
import { OnnxEmbedder } from '../src/features/onnx-embedder.js';
import { buildOnnxModel } from '../src/features/onnx-graph.js';
import { toNchwBatch } from '../src/features/onnx-input.js';
import { loadEmbeddings, missingImages, saveEmbeddings } from '../src/features/store.js';
import { getDatasetById, imageFile } from '../src/store/datasets.js';
import { ingest } from '../src/ingest/index.js';
import { openStore, type DB } from '../src/store/db.js';
import { BENCH_DB, DATA_DIR, machine, mb, peakRss } from './common.js';

/**
 * Embedding throughput and feature quality.
 * 1. Speed: each configuration runs in a child process of its own (so peak RSS is its own, workers included) on a
 *    scratch copy of the benchmark database with its embeddings removed. First the side-by-side (issue 11):
 *    onnxruntime, wasm, onnxruntime again on the same 10,000 train faces, reported as ratios; then onnxruntime
 *    settings and facerec on both engines; then where the CPU time goes, stage by stage.
 * 2. The shared benchmark database gets faceexpr for every image (SCN needs all splits), copied from the scratch run.
 * 3. Quality probe: a softmax-regression head on standardised train-split features, FER+ majority labels, scored
 *    against the FER+ majority on the test split.
 * EMBED_BENCH=quick runs smaller subsets. EMBED_BENCH=tta runs only the flip TTA side-by-side (ttaSideBySide).
 */
const SCRATCH = join(BENCH_DB, '..', 'embed-scratch.db');
const DATASET = 'fer2013plus';
const quick = process.env['EMBED_BENCH'] === 'quick';

interface ChildResult {
  computed: number;
  seconds: number;
  /** CPU time of the whole process (all threads), seconds. */
  cpuSeconds: number;
  peakBytes: number;
  backend: string;
  workers: number;
  reason: string;
}

interface Config {
  label: string;
  opts: Omit<EmbedOptions, 'datasetId'>;
}

/** Peak resident set of this process so far (Linux VmHWM), else the sampled peak. */
function highWaterMark(sampled: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Math.max(sampled, Number(m[1]) * 1024);
  } catch {
    /* not Linux */
  }
  return sampled;
}

/** Child side: one embedDataset run on the scratch database, result as JSON on stdout. */
async function child(opts: Omit<EmbedOptions, 'datasetId'>): Promise<void> {
  const mem = peakRss();
  const cpu0 = process.cpuUsage();
  const db = openStore(SCRATCH);
  const datasetId = (db.prepare(`SELECT id FROM datasets WHERE name = ?`).get(DATASET) as { id: number }).id;
  const r = await embedDataset(db, { ...opts, datasetId });
  db.close();
  const cpu = process.cpuUsage(cpu0);
  const out: ChildResult = {
    computed: r.computed,
    seconds: r.seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakBytes: highWaterMark(mem.stop()),
    backend: r.backend.name,
    workers: r.workers,
    reason: r.backend.reason,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

const rate = (r: ChildResult): number => r.computed / r.seconds;
const cpuMs = (r: ChildResult): number => (1000 * r.cpuSeconds) / r.computed;

interface StageResult {
  images: number;
  rows: { stage: string; ms: number }[];
}

/**
 * Child side of "where the time goes": the onnxruntime pipeline's stages run one after another on the same faces
 * (faceexpr, batches of DEFAULT_BATCH, one intra-op thread), each timed by the process's CPU clock.
 */
async function stagesChild(count: number): Promise<void> {
  const db = openStore(SCRATCH);
  const dsId = datasetId(db);
  const root = getDatasetById(db, dsId).root;
  const info = BACKBONES['faceexpr']!;
  const probeVersion = 'bench-stages';
  const pending = missingImages(db, dsId, info.id, probeVersion, { split: 'train', limit: count });
  const cpu = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const t = { decode: 0, prepare: 0, infer: 0, store: 0 };
  let c = cpu();
  const embedder = await OnnxEmbedder.create(info, buildOnnxModel(info), 1);
  const setup = cpu() - c;
  for (let i = 0; i < pending.length; i += DEFAULT_BATCH) {
    const slice = pending.slice(i, i + DEFAULT_BATCH);
    c = cpu();
    const decoded = await embedder.decode(slice.map((p) => ({ file: imageFile(root, p.path), box: p.box })));
    t.decode += cpu() - c;
    c = cpu();
    const x = toNchwBatch(decoded.images, info.inputSize);
    t.prepare += cpu() - c;
    c = cpu();
    const v = await embedder.infer(x);
    t.infer += cpu() - c;
    c = cpu();
    saveEmbeddings(db, { ids: slice.map((p) => p.id), vectors: v }, info, probeVersion, 'onnxruntime');
    t.store += cpu() - c;
  }
  db.prepare(`DELETE FROM embeddings WHERE backbone_version = ?`).run(probeVersion);
  embedder.dispose();
  db.close();
  const k = pending.length;
  const out: StageResult = {
    images: k,
    rows: [
      { stage: 'decode (sharp: PNG to RGB bytes, libuv threads)', ms: t.decode / k },
      { stage: 'prepare (JS: pad, bilinear resize, mean, NCHW)', ms: t.prepare / k },
      { stage: 'inference (onnxruntime, 1 thread)', ms: t.infer / k },
      { stage: 'store (SQLite, one transaction per batch)', ms: t.store / k },
      { stage: `graph build + session, once (${setup.toFixed(0)} ms in all)`, ms: setup / k },
    ],
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

function runStages(count: number): StageResult {
  const p = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--stages-child', String(count)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (p.status !== 0) throw new Error(`bench embed: stages failed (${p.status}):\n${p.stderr}`);
  return JSON.parse(p.stdout.trim().split('\n').at(-1)!) as StageResult;
}

function runChild(c: Config): ChildResult {
  const p = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--embed-child', JSON.stringify(c.opts)], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (p.status !== 0) throw new Error(`bench embed: '${c.label}' failed (${p.status}):\n${p.stderr}`);
  return JSON.parse(p.stdout.trim().split('\n').at(-1)!) as ChildResult;
}

function datasetId(db: DB): number {
  return (db.prepare(`SELECT id FROM datasets WHERE name = ?`).get(DATASET) as { id: number }).id;
}

// ------------------------------------------------------------------------------------------- quality probe

interface ProbeData {
  x: Float32Array;
  y: Int32Array;
  n: number;
}

/** Rows of one split whose label (FER+ majority `reference`, or the original `given`) is set, as class indices. */
function probeSplit(db: DB, dsId: number, backbone: string, split: string, column: 'reference' | 'given', ids?: Set<number>): ProbeData {
  const emb = loadEmbeddingsPartial(db, dsId, backbone);
  const taxonomy = JSON.parse((db.prepare(`SELECT taxonomy FROM datasets WHERE id = ?`).get(dsId) as { taxonomy: string }).taxonomy) as string[];
  const rows = db
    .prepare(`SELECT i.id, l.${column} AS label FROM images i JOIN labels l ON l.image_id = i.id WHERE i.dataset_id = ? AND i.split = ? AND l.${column} IS NOT NULL ORDER BY i.id`)
    .all(dsId, split) as { id: number; label: string }[];
  const keep = rows.filter((r) => emb.index.has(r.id) && (!ids || ids.has(r.id)) && taxonomy.includes(r.label));
  const x = new Float32Array(keep.length * emb.dim);
  const y = new Int32Array(keep.length);
  keep.forEach((r, i) => {
    const j = emb.index.get(r.id)!;
    x.set(emb.data.subarray(j * emb.dim, (j + 1) * emb.dim), i * emb.dim);
    y[i] = taxonomy.indexOf(r.label);
  });
  return { x, y, n: keep.length };
}

/** Like loadEmbeddings, but tolerates images without an embedding (facerec is probed on a subset). */
function loadEmbeddingsPartial(db: DB, dsId: number, backbone: string): { dim: number; data: Float32Array; index: Map<number, number> } {
  try {
    const e = loadEmbeddings(db, { datasetId: dsId, backbone });
    return { dim: e.dim, data: e.data, index: new Map(e.imageIds.map((id, i) => [id, i])) };
  } catch {
    const parts = backbone.split('+');
    const per = parts.map((b) => {
      const rows = db
        .prepare(`SELECT e.image_id AS id, e.vector FROM embeddings e JOIN images i ON i.id = e.image_id WHERE i.dataset_id = ? AND e.backbone = ? ORDER BY e.image_id`)
        .all(dsId, b) as { id: number; vector: Buffer }[];
      return new Map(rows.map((r) => [r.id, new Float32Array(r.vector.buffer.slice(r.vector.byteOffset, r.vector.byteOffset + r.vector.byteLength))]));
    });
    const ids = [...per[0]!.keys()].filter((id) => per.every((m) => m.has(id)));
    const dim = per.reduce((s, m) => s + (m.values().next().value?.length ?? 0), 0);
    const data = new Float32Array(ids.length * dim);
    ids.forEach((id, i) => {
      let o = 0;
      for (const m of per) {
        const v = m.get(id)!;
        data.set(v, i * dim + o);
        o += v.length;
      }
    });
    return { dim, data, index: new Map(ids.map((id, i) => [id, i])) };
  }
}

/**
 * Softmax regression on standardised features, full-batch Adam with L2, gradients written out with explicit
 * transposes (fast on wasm). Returns test accuracy.
 */
function softmaxProbe(train: ProbeData, test: ProbeData, dim: number, classes: number, l2: number, steps = 300): number {
  return tf.tidy(() => {
    const xTrain = tf.tensor2d(train.x, [train.n, dim]);
    const { mean, variance } = tf.moments(xTrain, 0);
    const std = tf.add(tf.sqrt(variance), 1e-6);
    const X = tf.div(tf.sub(xTrain, mean), std);
    const XT = tf.transpose(X);
    const Y = tf.oneHot(tf.tensor1d(train.y, 'int32'), classes).toFloat();
    const W = tf.variable(tf.zeros([dim, classes]));
    const b = tf.variable(tf.zeros([classes]));
    const opt = tf.train.adam(0.05);
    for (let s = 0; s < steps; s++) {
      const grads = tf.tidy(() => {
        const P = tf.softmax(tf.add(tf.matMul(X, W), b));
        const G = tf.div(tf.sub(P, Y), train.n); // d(mean cross-entropy)/d logits
        return [
          { name: W.name, tensor: tf.add(tf.matMul(XT, G), tf.mul(W, l2)) },
          { name: b.name, tensor: tf.sum(G, 0) },
        ];
      });
      opt.applyGradients(grads);
      tf.dispose(grads.map((g) => g.tensor));
    }
    const Xt = tf.div(tf.sub(tf.tensor2d(test.x, [test.n, dim]), mean), std);
    const pred = tf.argMax(tf.add(tf.matMul(Xt, W), b), 1).dataSync();
    let ok = 0;
    for (let i = 0; i < test.n; i++) if (pred[i] === test.y[i]) ok++;
    opt.dispose();
    W.dispose();
    b.dispose();
    return ok / test.n;
  });
}

function probe(db: DB, dsId: number, backbone: string, subset?: Set<number>): { trainN: number; testN: number; accRef: number; accGiven: number; l2: number } {
  const taxonomy = JSON.parse((db.prepare(`SELECT taxonomy FROM datasets WHERE id = ?`).get(dsId) as { taxonomy: string }).taxonomy) as string[];
  const trainRef = probeSplit(db, dsId, backbone, 'train', 'reference', subset);
  const validRef = probeSplit(db, dsId, backbone, 'valid', 'reference', subset);
  const testRef = probeSplit(db, dsId, backbone, 'test', 'reference', subset);
  const dim = trainRef.x.length / Math.max(1, trainRef.n);
  // L2 chosen on the valid split
  let best = { l2: 0, acc: -1 };
  for (const l2 of [1e-4, 1e-3, 1e-2]) {
    const acc = softmaxProbe(trainRef, validRef, dim, taxonomy.length, l2);
    if (acc > best.acc) best = { l2, acc };
  }
  const accRef = softmaxProbe(trainRef, testRef, dim, taxonomy.length, best.l2);
  // the same head trained on the ORIGINAL (noisy) FER2013 labels, still scored against the FER+ majority
  const trainGiven = probeSplit(db, dsId, backbone, 'train', 'given', subset);
  const accGiven = softmaxProbe(trainGiven, testRef, dim, taxonomy.length, best.l2);
  return { trainN: trainRef.n, testN: testRef.n, accRef, accGiven, l2: best.l2 };
}

// ------------------------------------------------------------------------------------------------ main

/**
 * Flip TTA against none on the same `count` train faces, default settings (onnxruntime, workers), alternated
 * none, flip, none, flip so that a change of load on a shared machine shows in both; the ratio uses the means.
 */
function ttaSideBySide(
  say: (s: string) => void,
  header: () => void,
  row: (label: string, c: Config, r: ChildResult) => void,
  clearAndRun: (c: Config) => ChildResult,
  count: number,
): void {
  say(`Flip TTA side by side: faceexpr on the same ${count} train faces, default settings, alternated none / flip twice.`);
  say('');
  header();
  const cfg = (tta: 'none' | 'flip'): Config => ({ label: `tta ${tta}`, opts: { backbone: 'faceexpr', backend: 'onnxruntime', split: 'train', limit: count, tta } });
  const rates: Record<string, number[]> = { none: [], flip: [] };
  for (const k of [0, 1]) {
    for (const tta of ['none', 'flip'] as const) {
      const c = cfg(tta);
      const r = clearAndRun(c);
      row(`${c.label} (${'ab'[k]})`, c, r);
      rates[tta]!.push(rate(r));
    }
  }
  const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;
  say('');
  say(`**flip / none**: ${(mean(rates['flip']!) / mean(rates['none']!)).toFixed(2)}x images/s (means ${mean(rates['flip']!).toFixed(0)} vs ${mean(rates['none']!).toFixed(0)}); load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(', ')}.`);
  say('');
}

export async function main(): Promise<void> {
  const db = openStore(BENCH_DB);
  const labels = join(DATA_DIR, 'labels.csv');
  if (!db.prepare(`SELECT 1 FROM datasets WHERE name = ?`).get(DATASET)) await ingest(db, { source: labels, name: DATASET });
  const dsId = datasetId(db);

  // scratch copy: same image ids, no embeddings
  for (const f of [SCRATCH, `${SCRATCH}-wal`, `${SCRATCH}-shm`]) rmSync(f, { force: true });
  db.prepare(`VACUUM INTO ?`).run(SCRATCH);
  const scratch = openStore(SCRATCH);
  scratch.exec(`DELETE FROM embeddings`);
  scratch.close();

  const lines: string[] = [];
  const say = (s: string): void => {
    lines.push(s);
    console.log(s);
  };
  say(`### Embed (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)`);
  say(`machine: ${machine()}; load average at start ${os.loadavg().map((x) => x.toFixed(1)).join(', ')}`);
  say(`command: npm run build && npm run bench -- embed${quick ? ' (EMBED_BENCH=quick)' : ''}`);
  say('');
  const n = (full: number, q: number): number => (quick ? q : full);
  const row = (label: string, c: Config, r: ChildResult): void => {
    const threads = r.workers ? `${r.workers} worker${r.workers > 1 ? 's' : ''}` : 'main';
    const intra = /(\d+) onnxruntime threads? each/.exec(r.reason)?.[1];
    say(
      `| ${label} | ${c.opts.backbone} | ${r.backend} | ${threads}${intra ? ` x ${intra}` : ''} | ${c.opts.batch ?? DEFAULT_BATCH} | ${r.computed} | ` +
        `${rate(r).toFixed(0)} | ${cpuMs(r).toFixed(2)} | ${(r.cpuSeconds / r.seconds).toFixed(2)} | ${mb(r.peakBytes)} |`,
    );
  };
  const header = (): void => {
    say('| run | backbone | engine | threads | batch | images | images/s | CPU ms/image | cores busy | peak RSS |');
    say('|---|---|---|---|---|---|---|---|---|---|');
  };
  const clearAndRun = (c: Config): ChildResult => {
    const s = openStore(SCRATCH);
    s.prepare(`DELETE FROM embeddings WHERE backbone = ?`).run(c.opts.backbone!);
    s.close();
    return runChild(c);
  };

  if (process.env['EMBED_BENCH'] === 'tta') {
    ttaSideBySide(say, header, row, clearAndRun, 3000);
    db.close();
    for (const f of [SCRATCH, `${SCRATCH}-wal`, `${SCRATCH}-shm`]) rmSync(f, { force: true });
    return;
  }

  // 1. the side-by-side: the same faces, default settings, onnxruntime then wasm then onnxruntime again
  const sideN = n(10_000, 1000);
  say(`Side by side: faceexpr on the same ${sideN} train faces (the first by id), default settings, one engine at a time.`);
  say('');
  header();
  const ortCfg: Config = { label: 'onnxruntime', opts: { backbone: 'faceexpr', backend: 'onnxruntime', split: 'train', limit: sideN } };
  const wasmCfg: Config = { label: 'wasm', opts: { backbone: 'faceexpr', backend: 'wasm', split: 'train', limit: sideN } };
  const ort1 = clearAndRun(ortCfg);
  row('onnxruntime (a)', ortCfg, ort1);
  const wasm = clearAndRun(wasmCfg);
  row('wasm', wasmCfg, wasm);
  const ort2 = clearAndRun(ortCfg);
  row('onnxruntime (b)', ortCfg, ort2);
  const ortRate = (rate(ort1) + rate(ort2)) / 2;
  const ortCpu = (cpuMs(ort1) + cpuMs(ort2)) / 2;
  say('');
  say(
    `**Ratio onnxruntime / wasm** (mean of runs a and b, which bracket the wasm run): ${(ortRate / rate(wasm)).toFixed(2)}x images/s, ` +
      `${(cpuMs(wasm) / ortCpu).toFixed(2)}x less CPU per image (${ortCpu.toFixed(2)} vs ${cpuMs(wasm).toFixed(2)} ms).`,
  );
  say('');

  // 2. onnxruntime settings, and facerec on both engines
  say('Settings and the second backbone:');
  say('');
  header();
  const m = n(3000, 300);
  const variants: Config[] = [
    { label: 'main thread', opts: { backbone: 'faceexpr', backend: 'onnxruntime', workers: 0, split: 'train', limit: m } },
    { label: '1 worker', opts: { backbone: 'faceexpr', backend: 'onnxruntime', workers: 1, split: 'train', limit: m } },
    { label: 'batch 32', opts: { backbone: 'faceexpr', backend: 'onnxruntime', batch: 32, split: 'train', limit: m } },
    { label: 'batch 64', opts: { backbone: 'faceexpr', backend: 'onnxruntime', batch: 64, split: 'train', limit: m } },
    { label: 'facerec wasm', opts: { backbone: 'facerec', backend: 'wasm', split: 'train', limit: n(1000, 100) } },
    // kept: the facerec probe's train subset
    { label: 'facerec onnxruntime', opts: { backbone: 'facerec', backend: 'onnxruntime', split: 'train', limit: n(4000, 500) } },
  ];
  for (const c of variants) row(c.label, c, clearAndRun(c));
  say('');
  say('images/s counts the whole run (worker start-up, decoding with sharp, inference, SQLite commits); CPU ms/image is');
  say('the CPU time of the whole process (all threads) per image, so 2000 / (CPU ms/image) bounds images/s on 2 idle cores;');
  say('cores busy is that CPU time over the wall time (2.00 = both cores all the time, which other jobs on the machine prevent).');
  say('');

  // 3. where the time goes
  const stages = runStages(n(2000, 200));
  say(`Where the CPU time goes (onnxruntime, faceexpr, ${stages.images} faces, each stage alone in one thread, batches of ${DEFAULT_BATCH}, 1 intra-op thread):`);
  say('');
  say('| stage | CPU ms/image | share |');
  say('|---|---|---|');
  const total = stages.rows.reduce((s, r) => s + r.ms, 0);
  for (const r of stages.rows) say(`| ${r.stage} | ${r.ms.toFixed(2)} | ${((100 * r.ms) / total).toFixed(0)}% |`);
  say(`| total | ${total.toFixed(2)} | 100% |`);
  say('');

  // faceexpr for every image into the shared database (SCN needs all splits), facerec for the probe subset:
  // copy what the scratch runs computed, compute the rest
  const sc = openStore(SCRATCH);
  await embedDataset(sc, { datasetId: dsId, backbone: 'faceexpr' });
  sc.close();
  db.prepare(`ATTACH DATABASE ? AS scratch`).run(SCRATCH);
  db.prepare(`INSERT OR IGNORE INTO embeddings SELECT * FROM scratch.embeddings`).run();
  db.prepare(`DETACH DATABASE scratch`).run();
  const rest = await embedDataset(db, { datasetId: dsId, backbone: 'faceexpr' });
  say(`faceexpr stored for all ${rest.skipped + rest.computed} images of '${DATASET}' in ${BENCH_DB}.`);
  await embedDataset(db, { datasetId: dsId, backbone: 'facerec', split: 'valid', limit: n(1000, 200) });
  await embedDataset(db, { datasetId: dsId, backbone: 'facerec', split: 'test', limit: quick ? 300 : undefined });

  await initBackend('wasm');
  say('');
  say('Quality probe: softmax regression on standardised features (full-batch Adam, 300 steps, L2 picked on valid).');
  say('Trained on train-split features with the FER+ majority (or the original FER2013 label), scored against the FER+ majority on test.');
  say('');
  say('| backbone | train images | test images | test acc (FER+ labels) | test acc (original labels) |');
  say('|---|---|---|---|---|');
  const facerecIds = new Set(
    (db.prepare(`SELECT e.image_id AS id FROM embeddings e JOIN images i ON i.id = e.image_id WHERE i.dataset_id = ? AND e.backbone = 'facerec'`).all(dsId) as { id: number }[]).map((r) => r.id),
  );
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  for (const [backbone, subset] of [
    ['faceexpr', undefined],
    ['faceexpr', facerecIds],
    ['facerec', facerecIds],
    ['faceexpr+facerec', facerecIds],
  ] as const) {
    const p = probe(db, dsId, backbone, subset);
    say(`| ${backbone}${subset ? ' (facerec subset)' : ''} | ${p.trainN} | ${p.testN} | ${pct(p.accRef)} | ${pct(p.accGiven)} |`);
  }
  db.close();
  if (existsSync(SCRATCH)) for (const f of [SCRATCH, `${SCRATCH}-wal`, `${SCRATCH}-shm`]) rmSync(f, { force: true });
}

if (process.argv[2] === '--stages-child') await stagesChild(Number(process.argv[3]));
if (process.argv[2] === '--embed-child') await child(JSON.parse(process.argv[3]!) as Omit<EmbedOptions, 'datasetId'>);
