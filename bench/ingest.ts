import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ingest } from '../src/ingest/index.js';
import { openStore } from '../src/store/db.js';
import { BENCH_DB, DATA_DIR, machine, mb, peakRss } from './common.js';

/**
 * Ingest throughput: the 28,558 train images of the shared FER2013/FER+ data into a fresh database (images/s, peak
 * RSS of the whole process), then the full 35,710 into the shared benchmark database (idempotent) and a check of
 * the README's label-noise figures against what was stored.
 */
export async function main(): Promise<void> {
  const labels = join(DATA_DIR, 'labels.csv');
  const rows = parse(readFileSync(labels), { columns: true }) as Record<string, string>[];
  const train = rows.filter((r) => r['split'] === 'train');
  const tmp = mkdtempSync(join(tmpdir(), 'fer-bench-ingest-'));
  try {
    const csv = join(tmp, 'train.csv');
    writeFileSync(csv, stringify(train, { header: true, columns: Object.keys(rows[0]!) }));
    const db = openStore(join(tmp, 'bench.db'));
    const mem = peakRss();
    const t0 = performance.now();
    const s = await ingest(db, { source: csv, images: DATA_DIR, name: 'train' });
    const secs = (performance.now() - t0) / 1000;
    const peak = mem.stop();
    db.close();
    console.log(`## Ingest (${new Date().toISOString().slice(0, 10)})`);
    console.log(`machine: ${machine()}`);
    console.log(`command: npm run build && npm run bench -- ingest`);
    console.log(`train split: ${s.images} images in ${secs.toFixed(1)} s = ${(s.images / secs).toFixed(0)} images/s; peak RSS ${mb(peak)}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const db = openStore(BENCH_DB);
  const t0 = performance.now();
  const all = await ingest(db, { source: labels, name: 'fer2013plus' });
  console.log(`full dataset into ${BENCH_DB}: ${all.images} images (${all.added} added, ${all.unchanged} unchanged) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const stat = db
    .prepare(
      `SELECT i.split, count(*) AS scorable, sum(l.given != l.reference) AS disagree
       FROM images i JOIN labels l ON l.image_id = i.id JOIN datasets d ON d.id = i.dataset_id
       WHERE d.name = 'fer2013plus' AND l.reference IS NOT NULL GROUP BY i.split ORDER BY i.split`,
    )
    .all() as { split: string; scorable: number; disagree: number }[];
  for (const r of stat) console.log(`  ${r.split}: original label disagrees with the FER+ majority on ${r.disagree} of ${r.scorable} scorable images (${((100 * r.disagree) / r.scorable).toFixed(1)}%)`);
  const dups = all.duplicates.filter((d) => d.conflicting).length;
  console.log(`  exact-duplicate groups: ${all.duplicates.length}, ${dups} with disagreeing original labels`);
  db.close();
}
