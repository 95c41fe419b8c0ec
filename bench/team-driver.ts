/**
 * A review team under load: several `fer-clean review` sessions, each in a real pseudo-terminal (util-linux
 * `script`), on one database, pressing keys as fast as a person can repeat them, while another process exports in
 * a loop. Used by `npm run bench -- team` and, smaller, by test/team.test.ts.
 *
 * Each session runs a script of steps: most are one decision key (a or r) written alone, timed from the write to
 * the next item's face drawn on its screen, and spaced at least `paceMs` apart; every `burstEvery`-th step writes
 * `burst` decision keys in ONE write, as a terminal delivers keys typed faster than the program reads them (they
 * arrive as one chunk). Nothing is assumed about which item comes next (other sessions take items too): the next
 * face is any item path not shown before the key. At the end the database says what was handled: decision rows
 * per annotator against keys sent, images decided more than once, and every export's exit code.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openStore } from '../src/store/db.js';
import { packageRoot } from '../src/paths.js';
import { computeLayout } from '../src/review/terminal/layout.js';

export interface TeamOptions {
  dbPath: string;
  /** Folder for pid files and the export's output. */
  workDir: string;
  sessions: number;
  /** Decision steps per session (a burst step counts once). */
  steps: number;
  /** Least time between the starts of two steps, ms. */
  paceMs?: number;
  /** Every n-th step is a burst (0: none). */
  burstEvery?: number;
  /** Keys in one burst. */
  burst?: number;
  /** Run `fer-clean export` in a loop meanwhile. */
  exportMeanwhile?: boolean;
  cols?: number;
  rows?: number;
  classes?: number;
  /** The run to review (default: the latest finished run, as `fer-clean review` picks it). */
  runId?: number;
}

export interface SessionResult {
  annotator: string;
  keysSent: number;
  /** Single-key steps whose next face appeared. */
  timed: number[];
  /** Decision rows this annotator wrote (accepted/rejected). */
  handled: number;
  /** Keys that were part of bursts, and bursts whose keys were not all handled (from the row counts). */
  burstKeys: number;
  /** Single keys that never brought a next face within the timeout. */
  noFace: number;
  exitCode: number;
  /** From spawning the session to its first face drawn, ms. */
  firstFaceMs: number;
  /** Peak resident memory of the review process (VmHWM), bytes; NaN if unknown. */
  peakRss: number;
  /** CPU time (user + system) of the review process from its first face to its last key, per key sent, ms; NaN if unknown. */
  cpuMsPerKey: number;
}

export interface TeamResult {
  sessions: SessionResult[];
  /** Images with more than one accepted/rejected decision in force... or ever written (no undo is pressed). */
  decidedTwice: number;
  /** Decision rows in the database against the sum of keys sent. */
  rows: number;
  keysSent: number;
  exports: { runs: number; failures: string[] };
  wallS: number;
}

const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
const PATH_RE = /(\S+\.(?:png|jpe?g|webp|bmp|tiff?)) \((?:train|valid|test)\)/g;

/** One review session in a pseudo-terminal; watches its screen for item paths and face cells. */
class Session {
  readonly exited: Promise<number>;
  private readonly child: ChildProcessWithoutNullStreams;
  readonly startedAt = performance.now();
  private tail = '';
  private shown = new Set<string>();
  private fresh: string | null = null;
  /** The fresh path shows the same picture as the path before it (its face cells are not redrawn). */
  private freshSame = false;
  private lastPath: string | null = null;
  private blocks = 0;
  private waiter: { cells: number; resolve: (ok: boolean) => void; timer: NodeJS.Timeout } | null = null;
  screen = '';

  constructor(
    dbPath: string,
    readonly annotator: string,
    private readonly pidFile: string,
    cols: number,
    rows: number,
    runId: number | undefined,
    /** The picture a path shows (its sha256), to know when the next item's face needs no redraw. */
    private readonly pictureOf: (path: string) => string | undefined = () => undefined,
  ) {
    const cli = reviewCli();
    const cmd = `stty cols ${cols} rows ${rows}; echo $$ > '${pidFile}'; exec node '${cli}' review --db '${dbPath}'${runId === undefined ? '' : ` --run ${runId}`} --annotator ${annotator} --color 256`;
    this.child = spawn('script', ['-qfec', cmd, '/dev/null'], {
      env: Object.fromEntries(
        Object.entries({ ...process.env, TERM: 'xterm-256color', CI: 'true' }).filter(([k]) => !['COLORTERM', 'NO_COLOR', 'FORCE_COLOR'].includes(k)),
      ),
    });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => this.onData(chunk));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code ?? -1)));
  }

  private onData(chunk: string): void {
    if (this.screen.length < 200_000) this.screen += chunk;
    const text = stripAnsi(this.tail + chunk);
    this.tail = chunk.slice(-512);
    for (const m of text.matchAll(PATH_RE)) {
      if (!this.shown.has(m[1]!)) {
        this.shown.add(m[1]!);
        this.fresh = m[1]!;
        // The overlay rewrites only the rows that change: the same picture under another path draws no cells
        // (a replicated dataset shows each picture under several paths, often one after the other).
        const picture = this.pictureOf(m[1]!);
        this.freshSame = picture !== undefined && this.lastPath !== null && picture === this.pictureOf(this.lastPath);
        this.lastPath = m[1]!;
      }
    }
    this.blocks += chunk.split('▀').length - 1;
    const w = this.waiter;
    if (w && this.drawn(w.cells)) {
      clearTimeout(w.timer);
      this.waiter = null;
      w.resolve(true);
    }
  }

  /** Resolves true once a path not shown before and `cells` face cells have been drawn since the last write. */
  nextFace(cells: number, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.drawn(cells)) return resolve(true);
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve(false);
      }, ms);
      this.waiter = { cells, resolve, timer };
    });
  }

  private drawn(cells: number): boolean {
    return this.fresh !== null && (this.blocks >= cells || this.freshSame);
  }

  write(keys: string): void {
    this.fresh = null;
    this.freshSame = false;
    this.blocks = 0;
    this.child.stdin.write(keys);
  }

  /** Ends the CLI (its pid is in the pid file) and `script`, if still running. */
  /** Peak resident memory of the CLI process so far (VmHWM), bytes. */
  peakRss(): number {
    try {
      const pid = readFileSync(this.pidFile, 'utf8').trim();
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : NaN;
    } catch {
      return NaN;
    }
  }

  /** CPU time (user + system) the CLI process has used so far, ms (from /proc/PID/stat); NaN if unknown. */
  cpuMs(): number {
    try {
      const pid = readFileSync(this.pidFile, 'utf8').trim();
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
      return ((Number(fields[11]) + Number(fields[12])) / 100) * 1000;
    } catch {
      return NaN;
    }
  }

  kill(): void {
    try {
      process.kill(Number(readFileSync(this.pidFile, 'utf8').trim()), 'SIGKILL');
    } catch {
      // already gone
    }
    this.child.kill('SIGKILL');
  }
}

/** The CLI the sessions run: this checkout's build, or BENCH_CLI (another build, to compare under the same load). */
const reviewCli = (): string => process.env['BENCH_CLI'] ?? join(packageRoot(), 'dist', 'cli', 'main.js');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runTeam(o: TeamOptions): Promise<TeamResult> {
  const cols = o.cols ?? 80;
  const rows = o.rows ?? 24;
  const pace = o.paceMs ?? 20;
  const burstEvery = o.burstEvery ?? 10;
  const burst = o.burst ?? 4;
  const layout = computeLayout(cols, rows, o.classes ?? 7);
  // A face is drawn when most of its cells are written (rows equal to the previous face's are not rewritten).
  const faceCells = Math.floor(layout.faceCols * layout.faceRows * 0.6);
  const t0 = performance.now();

  const pictures = openStore(o.dbPath, { mustExist: true });
  const shaOf = pictures.prepare(`SELECT sha256 FROM images WHERE dataset_id IN (SELECT id FROM datasets) AND path = ?`).pluck();
  const seen = new Map<string, string | undefined>();
  const pictureOf = (path: string): string | undefined => {
    if (!seen.has(path)) seen.set(path, shaOf.get(path) as string | undefined);
    return seen.get(path);
  };
  const sessions = Array.from(
    { length: o.sessions },
    (_, k) => new Session(o.dbPath, `team${k + 1}`, join(o.workDir, `team${k + 1}.pid`), cols, rows, o.runId, pictureOf),
  );
  const exports = { runs: 0, failures: [] as string[] };
  let exporting = Boolean(o.exportMeanwhile);
  const exportLoop = (async () => {
    const cli = reviewCli();
    while (exporting) {
      const out = join(o.workDir, 'team-export.csv');
      const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
        const c = spawn(process.execPath, [cli, 'export', out, '--db', o.dbPath], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        c.stderr.on('data', (d: Buffer) => (err += d.toString()));
        c.on('close', (code) => resolve({ code, err }));
      });
      exports.runs++;
      if (r.code !== 0) exports.failures.push(`rc ${r.code}: ${r.err.trim().split('\n')[0]}`);
    }
  })();

  try {
    const results = await Promise.all(
      sessions.map(async (s): Promise<SessionResult> => {
        const res: SessionResult = {
          annotator: s.annotator,
          keysSent: 0,
          timed: [],
          handled: 0,
          burstKeys: 0,
          noFace: 0,
          exitCode: -1,
          firstFaceMs: NaN,
          peakRss: NaN,
          cpuMsPerKey: NaN,
        };
        if (!(await s.nextFace(faceCells, 120_000))) throw new Error(`${s.annotator}: no first face within 120 s:\n${stripAnsi(s.screen).slice(-2000)}`);
        res.firstFaceMs = performance.now() - s.startedAt;
        const cpu0 = s.cpuMs();
        for (let step = 0; step < o.steps; step++) {
          const started = performance.now();
          if (burstEvery > 0 && step % burstEvery === burstEvery - 1) {
            const keys = Array.from({ length: burst }, (_, i) => (i % 2 ? 'r' : 'a')).join('');
            s.write(keys);
            res.keysSent += burst;
            res.burstKeys += burst;
            await s.nextFace(faceCells, 2000);
            await sleep(50); // let the rest of the chunk's faces go by before the next single key is timed
          } else {
            const key = step % 3 === 1 ? 'r' : 'a';
            s.write(key);
            res.keysSent++;
            if (await s.nextFace(faceCells, 5000)) res.timed.push(performance.now() - started);
            else res.noFace++;
          }
          const wait = pace - (performance.now() - started);
          if (wait > 0) await sleep(wait);
        }
        await sleep(300);
        res.cpuMsPerKey = (s.cpuMs() - cpu0) / res.keysSent;
        res.peakRss = s.peakRss();
        s.write('q');
        const code = await Promise.race([s.exited, sleep(10_000).then(() => -2)]);
        res.exitCode = code;
        return res;
      }),
    );
    exporting = false;
    await exportLoop;
    const db = openStore(o.dbPath, { mustExist: true });
    try {
      const byAnnotator = new Map(
        (db.prepare(`SELECT annotator, count(*) AS n FROM decisions WHERE action IN ('accepted', 'rejected') GROUP BY annotator`).all() as {
          annotator: string;
          n: number;
        }[]).map((r) => [r.annotator, r.n]),
      );
      for (const r of results) r.handled = byAnnotator.get(r.annotator) ?? 0;
      const decidedTwice = (
        db
          .prepare(`SELECT count(*) AS n FROM (SELECT image_id FROM decisions WHERE action IN ('accepted', 'rejected') GROUP BY image_id HAVING count(*) > 1)`)
          .get() as { n: number }
      ).n;
      const rowsTotal = (db.prepare(`SELECT count(*) AS n FROM decisions WHERE action IN ('accepted', 'rejected')`).get() as { n: number }).n;
      return {
        sessions: results,
        decidedTwice,
        rows: rowsTotal,
        keysSent: results.reduce((a, r) => a + r.keysSent, 0),
        exports,
        wallS: (performance.now() - t0) / 1000,
      };
    } finally {
      db.close();
    }
  } finally {
    exporting = false;
    pictures.close();
    for (const s of sessions) s.kill();
    rmSync(join(o.workDir, 'team-export.csv'), { force: true });
  }
}
