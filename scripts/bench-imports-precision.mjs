// Precision of the first N proposals of a run, against the FER+ majority (labels.reference): in margin order
// (P(proposed) - P(given), highest first) and in the review order `fer-clean queue` gives (default: estimate).
// Images without a majority count as wrong. Usage: node scripts/bench-imports-precision.mjs DB RUN [N ...]
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [dbPath, run, ...ns] = process.argv.slice(2);
const sizes = (ns.length ? ns : ['100', '250', '1000']).map(Number);
const db = new Database(dbPath, { readonly: true });
const margin = db
  .prepare(
    `SELECT i.path, r.proposed_label AS proposed, l.reference FROM run_images r JOIN images i ON i.id = r.image_id
     JOIN labels l ON l.image_id = r.image_id WHERE r.run_id = ? AND r.proposed_label IS NOT NULL
     ORDER BY r.proposal_margin DESC, r.image_id`,
  )
  .all(Number(run));
const refOf = new Map(margin.map((m) => [m.path, m.reference]));
const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli', 'main.js');
const q = JSON.parse(
  execFileSync(process.execPath, [cli, 'queue', '--run', run, '--limit', String(Math.max(...sizes)), '--json', '--db', dbPath], { maxBuffer: 1 << 28 }).toString(),
);
const queue = q.items.map((it) => ({ proposed: it.proposed ?? it.proposed_label, reference: refOf.get(it.path) ?? null }));
const right = (xs, n) => xs.slice(0, n).filter((x) => x.reference !== null && x.reference === x.proposed).length;
console.log(`run ${run}: ${margin.length} proposals; queue order '${q.order}'`);
for (const n of sizes) {
  const a = right(margin, n);
  const b = right(queue, n);
  console.log(`first ${n}: margin order ${a}/${Math.min(n, margin.length)} = ${(a / Math.min(n, margin.length)).toFixed(3)}; review order ${b}/${Math.min(n, queue.length)} = ${(b / Math.min(n, queue.length)).toFixed(3)}`);
}
