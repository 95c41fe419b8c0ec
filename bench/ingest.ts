import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ingest } from '../src/ingest/index.js';
import { packageRoot } from '../src/paths.js';
import { openStore } from '../src/store/db.js';
import { BENCH_DB, DATA_DIR, machine, mb, median, peakRss } from './common.js';

const load = (): string => loadavg().map((x) => x.toFixed(1)).join(' ');

/**
 * The issue-21 figure: `fer-clean ingest labels.csv` of the whole shared data (35,710 images) into a fresh database,
 * as one process (start-up, CSV, reading, decoding, hashing and checking every image, the write, the face step),
 * timed from outside: BENCH_INGEST_RUNS runs (default 3), each with the load average before it and, where
 * /usr/bin/time exists, the process's CPU seconds and peak RSS.
 */
function wholeProcess(labels: string): void {
  const runs = Number(process.env['BENCH_INGEST_RUNS'] ?? 3);
  const main = join(packageRoot(), 'dist', 'cli', 'main.js');
  const time = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
  console.log(`whole data as one process: \`fer-clean ingest ${labels}\` into a fresh database, ${runs} runs`);
  const rates: number[] = [];
  for (let k = 1; k <= runs; k++) {
    const tmp = mkdtempSync(join(tmpdir(), 'fer-bench-ingest-whole-'));
    try {
      const before = load();
      const args = [main, 'ingest', labels, '--db', join(tmp, 'whole.db')];
      const t0 = performance.now();
      const r = time
        ? spawnSync(time, ['-f', 'TIME %U %S %M', process.execPath, ...args], { encoding: 'utf8' })
        : spawnSync(process.execPath, args, { encoding: 'utf8' });
      const secs = (performance.now() - t0) / 1000;
      if (r.status !== 0) throw new Error(`ingest failed: ${r.stderr}`);
      const images = Number(/: (\d+) images/.exec(r.stdout)?.[1]);
      const t = /TIME ([\d.]+) ([\d.]+) (\d+)/.exec(r.stderr ?? '');
      const cpu = t ? `, CPU ${(Number(t[1]) + Number(t[2])).toFixed(1)} s (${((1000 * (Number(t[1]) + Number(t[2]))) / images).toFixed(2)} ms/image), peak RSS ${mb(Number(t[3]) * 1024)}` : '';
      rates.push(images / secs);
      console.log(`  run ${k}: ${images} images in ${secs.toFixed(1)} s = ${(images / secs).toFixed(0)} images/s${cpu}; load average before ${before}`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  console.log(`  median ${median(rates).toFixed(0)} images/s; load average after ${load()}`);
}

/**
 * Ingest throughput: the whole shared FER2013/FER+ data as one process (wholeProcess), the 28,558 train images into
 * a fresh database in this process (images/s, peak RSS), then the full 35,710 into the shared benchmark database
 * (idempotent) and a check of the README's label-noise figures against what was stored.
 */
export async function main(): Promise<void> {
  const labels = join(DATA_DIR, 'labels.csv');
  console.log(`## Ingest (${new Date().toISOString().slice(0, 10)})`);
  console.log(`machine: ${machine()}`);
  console.log(`command: npm run build && npm run bench -- ingest`);
  wholeProcess(labels);
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
