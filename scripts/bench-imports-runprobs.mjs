// Writes a finished run's stored probabilities (run_images.probs, taxonomy order) as a --probs CSV: path + one column
// per class. For a cl run these are out-of-fold for its training images and from models that never saw the others.
// Usage: node scripts/bench-imports-runprobs.mjs DB RUN OUT.csv
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';

const [dbPath, run, out] = process.argv.slice(2);
const db = new Database(dbPath, { readonly: true });
const r = db.prepare(`SELECT r.method, d.taxonomy FROM runs r JOIN datasets d ON d.id = r.dataset_id WHERE r.id = ?`).get(Number(run));
const tax = JSON.parse(r.taxonomy);
const rows = db
  .prepare(`SELECT i.path, ri.probs FROM run_images ri JOIN images i ON i.id = ri.image_id WHERE ri.run_id = ? ORDER BY i.id`)
  .all(Number(run));
const lines = [['path', ...tax].join(',')];
for (const x of rows) {
  const p = JSON.parse(x.probs);
  const s = p.reduce((a, b) => a + b, 0);
  lines.push([x.path, ...p.map((v) => (v / s).toFixed(6))].join(','));
}
writeFileSync(out, lines.join('\n') + '\n');
console.log(`run ${run} (${r.method}): ${rows.length} rows -> ${out}`);
