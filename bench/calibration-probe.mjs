/**
 * Exploration behind issue 17's calibration choice (not a product path): trains heads on a database's embeddings
 * with the library's trainer and writes their logits, so bench/calibration-probe.py can compare calibrations and
 * orderings of the top of the queue on them.
 * usage: npm run build && node bench/calibration-probe.mjs DB none|flip scn|ce SEEDS(1,2,3) OUT.json
 */
import { openStore } from '../dist/src/store/db.js';
import { resolveDataset } from '../dist/src/store/datasets.js';
import { loadDatasetView } from '../dist/src/scn/data.js';
import { trainHead, HEAD_DEFAULTS, SCN_DEFAULTS } from '../dist/src/scn/train.js';
import { initBackend } from '../dist/src/features/backend.js';
import { writeFileSync } from 'node:fs';
const [dbPath, tta, method, seedsArg, outPath] = process.argv.slice(2);
const db = openStore(dbPath);
const ds = resolveDataset(db, undefined);
const view = loadDatasetView(db, ds, 'faceexpr', { kind: 'given' }, tta);
await initBackend('auto');
const N = view.imageIds.length, C = ds.taxonomy.length;
const train = [], valid = [];
for (let i = 0; i < N; i++) { if (view.source[i] < 0) continue; if (view.splits[i] === 'train') train.push(i); else if (view.splits[i] === 'valid') valid.push(i); }
const res = {};
for (const seed of seedsArg.split(',').map(Number)) {
  const t0 = Date.now();
  const r = await trainHead({ features: view.features, dim: view.dim, classes: C, labels: view.source, train, valid }, { ...HEAD_DEFAULTS, seed, method });
  res[seed] = Array.from(r.logits);
  console.error(`seed ${seed} ${(Date.now() - t0) / 1000}s`);
}
writeFileSync(outPath, JSON.stringify({ C, splits: view.splits, given: Array.from(view.given), reference: Array.from(view.reference), ids: view.imageIds, logits: res }));
