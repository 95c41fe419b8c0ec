/**
 * `npm run bench -- scale [--sizes 100000,1000000] [--embeddings-from DB] [--steps ingest,embed,train-scn,...]
 *   [--replicate-from 100000] [--train-epochs E]`
 *
 * The whole workflow on datasets of N images made from the 35,710 shared FER2013 faces: row i is the face
 * i mod 35,710 under a path of its own (a symlink in .tmp/scale-N/links/), with that face's split, original label
 * and FER+ votes. Every row is really read, decoded and hashed by ingest (the files are few and stay in the page
 * cache, so disk reads are not measured); what is measured is the cost per row in fer-clean and SQLite.
 *
 * Embeddings are not computed per row: each row gets the real faceexpr embedding of its face, copied from a
 * database that holds them for the 35,710 shared images (--embeddings-from; default .tmp/bench.db, which
 * `npm run bench -- embed` fills). Embedding speed per image is the embed benchmark's subject.
 *
 * Each step is the real CLI in a process of its own (`/usr/bin/time` gives its peak resident memory); review is the
 * CLI in a pseudo-terminal (start-up to the first face, then 60 keys timed to the next face drawn).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { backboneVersion, resolveBackbone } from '../src/features/backbones.js';
import { openStore } from '../src/store/db.js';
import { BENCH_DB, cli, DATA_DIR, machine, median, quantile, timed } from './common.js';
import { runTeam } from './team-driver.js';

/**
 * Row j shows shared face (j mod PERIOD) mod 35,710: up to 100,000 rows that is face j mod 35,710; above, the
 * dataset repeats every 100,000 rows, so a large database can also be made by replicating a 100,000-row one
 * (--replicate-from) with every row still matching its face, labels and embedding.
 */
const PERIOD = 100_000;
const faceOf = (j: number, faces: number): number => (j % PERIOD) % faces;

const STEPS = ['ingest', 'embed', 'train-scn', 'train-cl', 'report', 'review', 'queue', 'export'] as const;
type Step = (typeof STEPS)[number];

interface Measure {
  step: Step;
  seconds: number;
  peakRss: number;
  note: string;
}

function arg(name: string): string | undefined {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return argv[i + 1];
    if (argv[i]!.startsWith(`--${name}=`)) return argv[i]!.slice(name.length + 3);
  }
  return undefined;
}


/** The N-row source: labels.csv (FER+ columns) and one symlink per row to its shared face. */
function makeSource(n: number, dir: string): string {
  const csv = join(dir, 'labels.csv');
  const marker = join(dir, `source-${n}.done`);
  if (existsSync(marker)) return csv;
  rmSync(join(dir, 'links'), { recursive: true, force: true });
  const rows = parse(readFileSync(join(DATA_DIR, 'labels.csv')), { columns: true }) as Record<string, string>[];
  const header = Object.keys(rows[0]!);
  const out: string[][] = [];
  for (let i = 0; i < n; i++) {
    const src = rows[faceOf(i, rows.length)]!;
    const sub = `links/${Math.floor(i / 1000)}`;
    if (i % 1000 === 0) mkdirSync(join(dir, sub), { recursive: true });
    const path = `${sub}/${i}.png`;
    symlinkSync(resolve(DATA_DIR, src['image']!), join(dir, path));
    out.push(header.map((h) => (h === 'image' ? path : src[h]!)));
  }
  writeFileSync(csv, stringify(out, { header: true, columns: header }));
  writeFileSync(marker, '');
  return csv;
}

/** Copies the real faceexpr embedding of each row's shared face (see the file's comment); returns seconds. */
function copyEmbeddings(dbPath: string, sourceDb: string): { seconds: number; note: string } {
  const t = performance.now();
  const part = resolveBackbone('faceexpr').parts[0]!;
  const version = backboneVersion(part);
  const src = new Database(sourceDb, { readonly: true, fileMustExist: true });
  const byPath = new Map<string, Buffer>();
  for (const r of src
    .prepare(`SELECT i.path, e.vector FROM embeddings e JOIN images i ON i.id = e.image_id WHERE e.backbone = 'faceexpr' AND e.backbone_version = ?`)
    .iterate(version) as IterableIterator<{ path: string; vector: Buffer }>) {
    byPath.set(r.path, r.vector);
  }
  src.close();
  if (byPath.size === 0) throw new Error(`${sourceDb}: no faceexpr (${version}) embeddings: run \`npm run bench -- embed\` first or pass --embeddings-from`);
  const rows = (parse(readFileSync(join(DATA_DIR, 'labels.csv')), { columns: true }) as Record<string, string>[]).map((r) => r['image']!);
  const db = openStore(dbPath, { mustExist: true });
  const ins = db.prepare(
    `INSERT INTO embeddings (image_id, backbone, backbone_version, dim, vector, backend, created_at) VALUES (?, 'faceexpr', ?, ?, ?, 'copied', ?)`,
  );
  const now = new Date().toISOString();
  let missing = 0;
  // ids and paths first (a connection cannot write while it iterates), then the inserts in batches
  const images = db.prepare(`SELECT id, path FROM images ORDER BY id`).raw().all() as [number, string][];
  const write = db.transaction((batch: [number, string][]) => {
    for (const [id, path] of batch) {
      const i = Number(/(\d+)\.png$/.exec(path)![1]);
      const v = byPath.get(rows[faceOf(i, rows.length)]!);
      if (!v) {
        missing++;
        continue;
      }
      ins.run(id, version, part.dim, v, now);
    }
  });
  for (let k = 0; k < images.length; k += 50_000) write(images.slice(k, k + 50_000));
  db.close();
  if (missing) throw new Error(`${missing} rows have no embedding in ${sourceDb}`);
  return { seconds: (performance.now() - t) / 1000, note: `copied from ${byPath.size} real embeddings` };
}

/**
 * A database of n rows made from the `base`-row one (which must hold its ingest, embeddings and runs): rows
 * base..n-1 are copies of rows j mod base (same face, labels, embedding and per-run output) under their own paths.
 */
async function replicate(base: number, n: number, baseDb: string, dbPath: string): Promise<number> {
  if (n % base !== 0 || base % PERIOD !== 0) throw new Error(`--replicate-from ${base}: sizes must be multiples of it (and of ${PERIOD})`);
  const t = performance.now();
  for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) rmSync(f, { force: true });
  const src = new Database(baseDb, { readonly: true, fileMustExist: true });
  await src.backup(dbPath);
  src.close();
  {
    const db = openStore(dbPath, { mustExist: true });
    const pathOf = (expr: string): string => `'links/' || ((${expr}) / 1000) || '/' || (${expr}) || '.png'`;
    db.transaction(() => {
      // images are numbered 1..base in the base database (one dataset), so row j = id - 1
      for (let c = 1; c < n / base; c++) {
        const off = c * base;
        db.exec(`
          INSERT INTO images (id, dataset_id, path, sha256, width, height, channels, split, source_line, source_row,
                              crop_x, crop_y, crop_w, crop_h, crop_source, quality)
          SELECT id + ${off}, dataset_id, ${pathOf(`id - 1 + ${off}`)}, sha256, width, height, channels, split,
                 source_line + ${off}, json_set(source_row, '$.image', ${pathOf(`id - 1 + ${off}`)}),
                 crop_x, crop_y, crop_w, crop_h, crop_source, quality
          FROM images WHERE id <= ${base};
          INSERT INTO labels (image_id, given, given_raw, reference, reference_votes, trainable)
          SELECT image_id + ${off}, given, given_raw, reference, reference_votes, trainable FROM labels WHERE image_id <= ${base};
          INSERT INTO embeddings (image_id, backbone, backbone_version, dim, vector, backend, created_at)
          SELECT image_id + ${off}, backbone, backbone_version, dim, vector, backend, created_at FROM embeddings WHERE image_id <= ${base};
          INSERT INTO run_images (run_id, image_id, given_label, trained_label, in_training, importance, importance_mean, probs,
                                  predicted_label, proposed_label, proposal_margin)
          SELECT run_id, image_id + ${off}, given_label, trained_label, in_training, importance, importance_mean, probs,
                 predicted_label, proposed_label, proposal_margin FROM run_images WHERE image_id <= ${base};`);
      }
    })();
    db.close();
  }
  return (performance.now() - t) / 1000;
}

/** Keys after the first face whose worst time the review step reports (the rest of the queue is read meanwhile). */
const FIRST_KEYS = 10;

const fmtS = (s: number): string => (s >= 120 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`);
const fmtMb = (b: number): string => (Number.isFinite(b) ? `${(b / 2 ** 20).toFixed(0)} MB` : '-');

export async function main(): Promise<void> {
  const sizes = (arg('sizes') ?? '100000').split(',').map(Number);
  const steps = (arg('steps') ?? STEPS.join(',')).split(',') as Step[];
  const sourceDb = resolve(arg('embeddings-from') ?? BENCH_DB);
  const base = resolve(dirname(BENCH_DB));
  const all = new Map<number, Measure[]>();
  console.log(`## Scale (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)`);
  console.log(`machine: ${machine()}`);
  console.log(`command: npm run build && npm run bench -- scale ${process.argv.slice(process.argv.indexOf('scale') + 1).join(' ')}`);
  for (const n of sizes) {
    const dir = join(base, `scale-${n}`);
    mkdirSync(dir, { recursive: true });
    const t = performance.now();
    const csv = makeSource(n, dir);
    console.error(`scale ${n}: source ready (${fmtS((performance.now() - t) / 1000)})`);
    const dbPath = join(dir, 'scale.db');
    const ms: Measure[] = [];
    all.set(n, ms);
    const loads: string[] = [];
    const note = (m: Measure): void => {
      ms.push(m);
      loads.push(`${m.step} ${os.loadavg()[0]!.toFixed(1)}`);
      console.error(`scale ${n}: ${m.step} ${fmtS(m.seconds)} ${fmtMb(m.peakRss)} ${m.note}`);
    };
    let scnRun = 0;
    const from = arg('replicate-from') ? Number(arg('replicate-from')) : 0;
    if (from && n > from) {
      const secs = await replicate(from, n, join(base, `scale-${from}`, 'scale.db'), dbPath);
      note({ step: 'embed', seconds: secs, peakRss: NaN, note: `(set-up, not a product step: the ${from.toLocaleString('en')}-row database with its embeddings and runs, replicated)` });
    } else if (steps.includes('ingest')) {
      for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) rmSync(f, { force: true });
      const r = timed(['ingest', csv, '--db', dbPath], dir);
      note({ step: 'ingest', seconds: r.seconds, peakRss: r.peakRss, note: `${(n / r.seconds).toFixed(0)} images/s` });
    }
    if (steps.includes('embed') && !(from && n > from)) {
      const r = copyEmbeddings(dbPath, sourceDb);
      note({ step: 'embed', seconds: r.seconds, peakRss: NaN, note: `(set-up, not a product step: ${r.note})` });
    }
    for (const method of ['scn', 'cl'] as const) {
      if (!steps.includes(`train-${method}`)) continue;
      const epochs = arg('train-epochs');
      const r = timed(['train', '--method', method, '--db', dbPath, ...(epochs ? ['--epochs', epochs] : [])], dir);
      const id = Number(r.stdout.trim().split('\n').at(-1));
      // a run trained here with fewer epochs is not the one to review: keep the replicated full run for that
      if (method === 'scn' && !epochs) scnRun = id;
      note({ step: `train-${method}`, seconds: r.seconds, peakRss: r.peakRss, note: `run ${id}${epochs ? `, --epochs ${epochs} (default 20)` : ''}` });
    }
    // review, queue and export are given the scn run: the latest run may be cl's (trained after it)
    if (!scnRun && ['report', 'review', 'queue', 'export'].some((x) => steps.includes(x as Step))) {
      const db = openStore(dbPath, { mustExist: true });
      scnRun =
        (
          db
            .prepare(`SELECT max(id) AS id FROM runs WHERE status = 'done' AND method = 'scn' AND json_extract(config, '$.head.epochs') = 20`)
            .get() as { id: number | null }
        ).id ?? 0;
      db.close();
    }
    if (steps.includes('report')) {
      const r = timed(['report', '--run', String(scnRun), '--db', dbPath], dir);
      note({ step: 'report', seconds: r.seconds, peakRss: r.peakRss, note: `run ${scnRun}` });
    }
    if (steps.includes('review')) {
      const db = openStore(dbPath, { mustExist: true });
      db.exec(`DELETE FROM decisions; DELETE FROM claims;`);
      const proposals = (db.prepare(`SELECT count(*) AS n FROM run_images WHERE run_id = ? AND proposed_label IS NOT NULL`).get(scnRun) as { n: number }).n;
      db.close();
      const t0 = performance.now();
      const r = await runTeam({ dbPath, workDir: dir, sessions: 1, steps: 60, paceMs: 20, burstEvery: 0, exportMeanwhile: false, runId: scnRun });
      const s = r.sessions[0]!;
      note({
        step: 'review',
        seconds: (performance.now() - t0) / 1000,
        peakRss: s.peakRss,
        note:
          `start-up to first face ${(s.firstFaceMs / 1000).toFixed(2)} s; key to next face median ${median(s.timed).toFixed(0)} ms, p90 ${quantile(s.timed, 0.9).toFixed(0)} ms, max ${Math.max(...s.timed).toFixed(0)} ms (${s.timed.length} keys timed, ${s.handled}/${s.keysSent} handled); ` +
          // The first keys after the first face come while the rest of the queue and the estimates are being read.
          `first keys after the first face: key 1 ${s.timed[0]?.toFixed(0)} ms, max of keys 1-${FIRST_KEYS} ${Math.max(...s.timed.slice(0, FIRST_KEYS)).toFixed(0)} ms; ${proposals} proposals`,
      });
    }
    if (steps.includes('queue')) {
      const has = spawnOk(['queue', '--help']);
      if (!has) note({ step: 'queue', seconds: NaN, peakRss: NaN, note: 'no `queue` command on this branch (issue 8)' });
      else {
        const r = timed(['queue', '--run', String(scnRun), '--db', dbPath], dir);
        note({ step: 'queue', seconds: r.seconds, peakRss: r.peakRss, note: `run ${scnRun}` });
      }
    }
    if (steps.includes('export')) {
      const r = timed(['export', join(dir, 'export.csv'), '--run', String(scnRun), '--db', dbPath], dir);
      note({ step: 'export', seconds: r.seconds, peakRss: r.peakRss, note: `run ${scnRun}, ${(n / r.seconds).toFixed(0)} rows/s` });
    }
    console.log('');
    console.log(`### ${n.toLocaleString('en')} images (load average at the end of each step: ${loads.join(', ')})`);
    console.log('');
    console.log('| step | time | peak RSS | notes |');
    console.log('|---|---|---|---|');
    for (const m of ms) console.log(`| ${m.step} | ${Number.isFinite(m.seconds) ? fmtS(m.seconds) : '-'} | ${fmtMb(m.peakRss)} | ${m.note} |`);
  }
  if (sizes.length > 1) {
    const [a, b] = [sizes[0]!, sizes.at(-1)!];
    console.log('');
    console.log(`### Growth from ${a.toLocaleString('en')} to ${b.toLocaleString('en')} images (x${(b / a).toFixed(0)} rows)`);
    console.log('');
    console.log('| step | time x | peak RSS x |');
    console.log('|---|---|---|');
    for (const m of all.get(b)!) {
      const first = all.get(a)!.find((x) => x.step === m.step);
      if (!first) continue;
      console.log(`| ${m.step} | ${(m.seconds / first.seconds).toFixed(1)} | ${(m.peakRss / first.peakRss).toFixed(1)} |`);
    }
  }
  console.log('');
  console.log(`(load average (1 min) ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores at the end)`);
}

function spawnOk(args: string[]): boolean {
  try {
    execFileSync(process.execPath, [cli(), ...args], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

