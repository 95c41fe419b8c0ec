import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { nowIso, openStore, type DB } from '../src/store/db.js';
import { defaultTaxonomy } from '../src/taxonomy.js';
import { loadQueue, type QueueItem } from '../src/review/domain/proposals.js';
import { resolveRun } from '../src/store/runs.js';
import { computeLayout } from '../src/review/terminal/layout.js';
import { ReviewSession } from '../src/review/session/session.js';
import { BENCH_DB, DATA_DIR, machine, median, quantile } from './common.js';

/**
 * Review speed, end to end, with the real CLI in a pseudo-terminal (util-linux `script`):
 * - start-up: from spawning `fer-clean review` to the first face fully drawn on the terminal;
 * - key latency: from writing a key to the terminal to the next item's face fully drawn (accept, reject, undo,
 *   move), one key at a time.
 * The database holds the 28,558 train images of the shared FER2013/FER+ data and one finished run. No SCN run of
 * that size exists yet, so the run is synthesized: its probabilities are the FER+ ten-tagger vote shares (smoothed),
 * and it proposes the most voted class wherever that differs from the original label (about a third of the images),
 * which is the size and shape of queue a real run gives.
 */
export async function main(): Promise<void> {
  const dbPath = resolve(dirname(BENCH_DB), 'bench-review.db');
  const t0 = performance.now();
  const built = buildDatabase(dbPath);
  const buildSecs = (performance.now() - t0) / 1000;

  const db = openStore(dbPath, { mustExist: true });
  const run = resolveRun(db);
  const queue = loadQueue(db, run, 'margin');
  // In-process cost of opening the run (queue, decisions in force, first claim), without terminal or drawing.
  const opens: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    ReviewSession.open(db, { annotator: 'bench-open' }).start().close();
    opens.push(performance.now() - t);
  }
  db.close();

  console.log(`## Review (${new Date().toISOString().slice(0, 10)})`);
  console.log(`machine: ${machine()}`);
  console.log('command: npm run build && npm run bench -- review');
  console.log(
    `database: ${built.images} train images, one synthetic finished run with ${queue.length} proposals (built in ${buildSecs.toFixed(1)} s: ${dbPath})`,
  );
  console.log(`in-process open of the run (queue + decisions in force + first claim): median ${fmt(median(opens))} over 5`);

  // BENCH_REVIEW_SIZES=80x24,160x48 and BENCH_REVIEW_COLORS=truecolor,256 choose what is measured.
  const sizes = (process.env['BENCH_REVIEW_SIZES'] ?? '80x24,160x48').split(',').map((x) => x.split('x').map(Number) as [number, number]);
  const colors = (process.env['BENCH_REVIEW_COLORS'] ?? 'truecolor,256').split(',') as ('truecolor' | '256')[];
  if (process.env['BENCH_REVIEW_LEARNING'] !== '0') {
    const [cols, rows] = sizes[0]!;
    const k = await measureLearning(dbPath, queue.length, cols, rows, colors[0]!);
    console.log(
      `- learning order (default), ${cols}x${rows}, ${colors[0]}: key to next face median ${fmt(median(k))}, p90 ${fmt(quantile(k, 0.9))}, ` +
        `max ${fmt(Math.max(...k))} (${k.length} accepts; refits after a frame every 10 decisions)`,
    );
  }
  for (const [cols, rows] of sizes) {
    for (const color of colors) {
      const r = await measureTerminal(dbPath, queue, cols, rows, color);
      console.log(
        `- ${cols}x${rows}, ${color}: start-up to first face median ${fmt(median(r.startups))} (max ${fmt(Math.max(...r.startups))}, ${r.startups.length} starts; ` +
          `CPU time of the CLI process by then median ${fmt(median(r.startupCpu))}); ` +
          `key to next face median ${fmt(median(r.keys))}, p90 ${fmt(quantile(r.keys, 0.9))}, max ${fmt(Math.max(...r.keys))} (${r.keys.length} keys: accept, undo, reject, move)`,
      );
    }
  }
  // Where start-up goes: node itself, the CLI without a command, and the review command's imports, each in a fresh
  // process (median of 5).
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const timed = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> => {
    const runs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await new Promise<void>((r) => spawn('node', args, { cwd: root, env: { ...process.env, ...env } }).on('close', () => r()));
      runs.push(performance.now() - t);
    }
    return fmt(median(runs));
  };
  const importing = (mods: string[]) => ['--input-type=module', '-e', mods.map((m) => `await import('${m}');`).join(' ')];
  console.log(
    `- start-up breakdown, each a fresh process: \`node -e 0\` ${await timed(['-e', '0'])}; ` +
      `\`fer-clean --version\` ${await timed([join(root, 'dist', 'cli', 'main.js'), '--version'])}; ` +
      `importing better-sqlite3 + sharp ${await timed(importing(['better-sqlite3', 'sharp']))}; ` +
      `importing react + ink (production) ${await timed(importing(['react', 'ink']), { NODE_ENV: 'production' })}`,
  );
  console.log(`load average (1 min) at the end: ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores`);
  console.log('(2 shared cores: other engineers\' jobs may run at the same time, so the maxima are noisy.)');
}


/** A fresh database with the train split and one synthetic finished run (see main). */
export function buildDatabase(path: string): { images: number } {
  for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
  const rows = (parse(readFileSync(join(DATA_DIR, 'labels.csv')), { columns: true }) as Record<string, string>[]).filter(
    (r) => r['split'] === 'train',
  );
  const taxonomy = defaultTaxonomy(false);
  const db: DB = openStore(path);
  const now = nowIso();
  db.transaction(() => {
    const datasetId = Number(
      db
        .prepare(
          `INSERT INTO datasets (name, format, source, root, taxonomy, options, created_at, updated_at)
           VALUES ('fer2013plus-train', 'ferplus', ?, ?, ?, '{}', ?, ?)`,
        )
        .run(join(DATA_DIR, 'labels.csv'), DATA_DIR, JSON.stringify(taxonomy), now, now).lastInsertRowid,
    );
    const runId = Number(
      db
        .prepare(
          `INSERT INTO runs (dataset_id, method, backbone, backend, seed, config, status, started_at, finished_at)
           VALUES (?, 'scn', 'synthetic', 'none', 0, '{"synthetic":"probabilities = FER+ vote shares"}', 'done', ?, ?)`,
        )
        .run(datasetId, now, now).lastInsertRowid,
    );
    const insImage = db.prepare(
      `INSERT INTO images (dataset_id, path, sha256, width, height, channels, split) VALUES (?, ?, ?, 48, 48, 1, 'train')`,
    );
    const insLabel = db.prepare(`INSERT INTO labels (image_id, given, given_raw) VALUES (?, ?, ?)`);
    const insRun = db.prepare(
      `INSERT INTO run_images (run_id, image_id, given_label, trained_label, importance, importance_mean, probs,
         predicted_label, proposed_label, proposal_margin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const r of rows) {
      const sha = createHash('sha256').update(readFileSync(join(DATA_DIR, r['image']!))).digest('hex');
      const imageId = Number(insImage.run(datasetId, r['image']!, sha).lastInsertRowid);
      const given = r['fer2013_label']!;
      insLabel.run(imageId, given, given);
      const votes = taxonomy.map((c) => Number(r[`votes_${c}`] ?? 0) + 0.3);
      const sum = votes.reduce((a, b) => a + b, 0);
      const probs = votes.map((v) => Math.round((v / sum) * 1e4) / 1e4);
      const best = probs.indexOf(Math.max(...probs));
      const gi = taxonomy.indexOf(given);
      const proposed = best !== gi ? taxonomy[best]! : null;
      const margin = proposed ? probs[best]! - probs[gi]! : null;
      insRun.run(runId, imageId, given, given, probs[gi]!, probs[gi]!, JSON.stringify(probs), taxonomy[best]!, proposed, margin);
    }
  })();
  db.close();
  return { images: rows.length };
}

/**
 * Runs the CLI in a pseudo-terminal of cols x rows: 5 starts (each quits after its first face), then one session
 * timed over a sequence of keys whose next item is known from the queue order.
 */
async function measureTerminal(
  dbPath: string,
  queue: QueueItem[],
  cols: number,
  rows: number,
  color: 'truecolor' | '256',
): Promise<{ startups: number[]; startupCpu: number[]; keys: number[] }> {
  const layout = computeLayout(cols, rows, 7);
  // A face is drawn when most of its cells have been written since the key (lines equal to the previous face's
  // are not rewritten by Ink's incremental rendering, so not all of them).
  const faceCells = Math.floor(layout.faceCols * layout.faceRows * 0.6);
  const startups: number[] = [];
  const startupCpu: number[] = [];
  const keys: number[] = [];
  // Each measurement uses its own annotator name on a fresh copy of the run's state: decisions are cleared first.
  const reset = () => resetReview(dbPath);
  for (let i = 0; i < 5; i++) {
    reset();
    const term = new Terminal(dbPath, cols, rows, color);
    await term.until(queue[0]!.path, faceCells);
    startups.push(term.elapsed());
    startupCpu.push(term.cpuAtHit);
    term.key('q');
    await term.exited;
  }
  reset();
  const term = new Terminal(dbPath, cols, rows, color);
  await term.until(queue[0]!.path, faceCells);
  // Script: 40 accepts, 10 undos, 10 rejects, 10 moves back, 10 moves forward. Expected item after each key:
  let at = 0;
  const script: [string, number][] = [];
  for (let k = 0; k < 40; k++) script.push(['a', ++at]);
  for (let k = 0; k < 10; k++) script.push(['u', --at]);
  for (let k = 0; k < 10; k++) script.push(['r', ++at]);
  for (let k = 0; k < 10; k++) script.push(['\x1b[D', --at]);
  for (let k = 0; k < 10; k++) script.push(['\x1b[C', ++at]);
  for (const [key, expect] of script) {
    await new Promise((r) => setTimeout(r, 30));
    await term.keyUntil(key, queue[expect]!.path, faceCells);
    keys.push(term.elapsed());
    if (process.env['BENCH_VERBOSE']) console.error(JSON.stringify(key), expect, term.elapsed().toFixed(0));
  }
  term.key('q');
  await term.exited;
  return { startups, startupCpu, keys };
}

/**
 * Key to next face in the learning order (issue 8, the default): one session, 60 accepts. The next item is not known
 * in advance (the order is refitted at start and every 10 decisions, after a frame), but its place is: after an
 * accept at item k, the header says item k+1; its face must be drawn too.
 */
async function measureLearning(dbPath: string, total: number, cols: number, rows: number, color: 'truecolor' | '256'): Promise<number[]> {
  const layout = computeLayout(cols, rows, 7);
  const faceCells = Math.floor(layout.faceCols * layout.faceRows * 0.6);
  resetReview(dbPath);
  const term = new Terminal(dbPath, cols, rows, color, 'estimate');
  await term.until(`item 1/${total}`, faceCells);
  // Let the estimates load (the first refit runs just after the first frame).
  await new Promise((r) => setTimeout(r, 2000));
  const keys: number[] = [];
  for (let k = 1; k <= 60; k++) {
    await new Promise((r) => setTimeout(r, 30));
    await term.keyUntil('a', `item ${k + 1}/${total}`, faceCells);
    keys.push(term.elapsed());
  }
  term.key('q');
  await term.exited;
  return keys;
}

/** CPU time used so far by the process whose pid is in `pidFile` (/proc, 10 ms resolution), NaN if unknown. */
function cpuMs(pidFile: string): number {
  try {
    const pid = readFileSync(pidFile, 'utf8').trim();
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of /proc/PID/stat (11 and 12 after the command name).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/** Clears decisions and claims, so the next session starts at the queue's first item. */
function resetReview(dbPath: string): void {
  const db = openStore(dbPath, { mustExist: true });
  db.exec(`DELETE FROM decisions; DELETE FROM claims;`);
  db.close();
}

const count = (s: string, ch: string): number => s.split(ch).length - 1;

/**
 * The CLI in `script`'s pseudo-terminal. `until(path, cells)` resolves when, since the last key, the output has
 * contained `path` and at least `cells` half-blocks; it is checked as each chunk arrives, in time proportional to the
 * chunk (the terminal blocks the CLI's writes while this end does not read).
 */
class Terminal {
  private tail = '';
  private seenPath = false;
  private blocks = 0;
  private t = performance.now();
  private lastHit = 0;
  private waiter: { path: string; cells: number; resolve: () => void; timer: NodeJS.Timeout } | undefined;
  readonly exited: Promise<void>;
  private readonly child;
  private readonly pidFile: string;
  private static seq = 0;
  /** CPU time (user + system, ms) the CLI process had used when the last `until` matched. */
  cpuAtHit = NaN;

  constructor(dbPath: string, cols: number, rows: number, color: string, order: 'margin' | 'estimate' = 'margin') {
    const cli = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');
    // --order margin: the keys' next items are known in advance from the queue order. The learning order
    // (measureLearning) re-ranks as decisions arrive, so there the next item is known by its place instead.
    const node = `node '${cli}' review --db '${dbPath}' --order ${order} --annotator bench --color ${color}`;
    this.pidFile = join(tmpdir(), `fer-bench-review-${process.pid}-${Terminal.seq++}.pid`);
    const cmd = `stty cols ${cols} rows ${rows}; echo $$ > '${this.pidFile}'; exec ${node}`;
    this.child = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, TERM: 'xterm-256color' } });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => {
      const w = this.waiter;
      if (!w) return;
      const text = this.tail + chunk;
      if (!this.seenPath && text.includes(w.path)) this.seenPath = true;
      this.tail = chunk.slice(-256);
      this.blocks += count(chunk, '▀');
      if (this.seenPath && this.blocks >= w.cells) {
        this.lastHit = performance.now();
        this.cpuAtHit = cpuMs(this.pidFile);
        clearTimeout(w.timer);
        this.waiter = undefined;
        w.resolve();
      }
    });
    this.exited = new Promise((r) => this.child.on('close', () => r()));
  }

  /** Expects `path` and `cells` half-blocks after the next key (or, before any key, from the start). */
  until(path: string, cells: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bench review: no ${path} with ${cells} cells within 30 s`)), 30_000);
      this.waiter = { path, cells, resolve, timer };
    });
  }

  /** Arms `until` and sends the key (arming first: the answer may come back before the next line runs). */
  keyUntil(k: string, path: string, cells: number): Promise<void> {
    const p = this.until(path, cells);
    this.tail = '';
    this.seenPath = false;
    this.blocks = 0;
    this.t = performance.now();
    this.child.stdin.write(k);
    return p;
  }

  key(k: string): void {
    this.child.stdin.write(k);
  }

  elapsed(): number {
    return this.lastHit - this.t;
  }
}

const fmt = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
