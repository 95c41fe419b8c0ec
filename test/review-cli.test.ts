import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { run } from '../cli/run.js';
import { openStore } from '../src/store/db.js';
import { packageRoot } from '../src/paths.js';
import { decisionsOfRun } from '../src/review/domain/decisions.js';
import { captureIo, tempDir, useStore, useTempDir } from './helpers.js';
import { seedReviewDb } from './review-helpers.js';

const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

describe('fer-clean review: messages instead of a blank screen', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir()));
  afterEach(() => t.cleanup());

  const review = async (...args: string[]) => {
    const io = captureIo(t.dir);
    const code = await run(['review', ...args], io);
    return { code, out: io.stdout.text, err: io.stderr.text };
  };

  it('a missing database, an empty database, a missing run id, bad flags', async () => {
    let r = await review('--db', join(t.dir, 'none.db'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/none\.db: no such database/);
    openStore(join(t.dir, 'empty.db')).close();
    r = await review('--db', join(t.dir, 'empty.db'), '--annotator', 'a');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/holds no dataset yet: run `fer-clean ingest SOURCE` first/);
    const s = seedReviewDb(join(t.dir, 'r.db'), { images: 3 });
    s.db.close();
    r = await review('--db', join(t.dir, 'r.db'), '--run', '7', '--annotator', 'a');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no run with id 7 \(runs in this database: 1\)/);
    r = await review('--db', join(t.dir, 'r.db'), '--order', 'random');
    expect([r.code, r.err]).toEqual([1, "fer-clean review: --order must be one of estimate, margin, importance, class, got 'random'\n"]);
    r = await review('--db', join(t.dir, 'r.db'), '--run', 'x');
    expect(r.err).toMatch(/--run must be an integer >= 1, got 'x'/);
    r = await review('--db', join(t.dir, 'r.db'), '--color', 'sepia');
    expect(r.err).toMatch(/--color must be one of auto, truecolor, 256, none, got 'sepia'/);
  });

  it('a run with no proposals says there is nothing to review', async () => {
    const s = seedReviewDb(join(t.dir, 'r.db'), { images: 3, emptyRun: true });
    s.db.close();
    const r = await review('--db', join(t.dir, 'r.db'), '--annotator', 'a');
    expect(r.code).toBe(0);
    expect(r.out).toBe(`Nothing to review: run ${s.emptyRunId} (ferplus-fixture) proposes no relabels.\n`);
  });

  it('refuses to start without a terminal', async () => {
    const s = seedReviewDb(join(t.dir, 'r.db'), { images: 3 });
    s.db.close();
    const r = await review('--db', join(t.dir, 'r.db'), '--annotator', 'a');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/review is interactive and needs a terminal/);
  });
});

/**
 * The real CLI (dist/cli/main.js, built by `npm run build`) in a pseudo-terminal made by util-linux `script`, which
 * is on every Debian/Ubuntu machine; keys go in through script's stdin and the screen comes out of its stdout.
 */
class Pty {
  /** Every pseudo-terminal started, so a failed test still ends its processes. */
  static readonly started: Pty[] = [];
  screen = '';
  readonly exited: Promise<number>;
  private readonly child: ChildProcessWithoutNullStreams;
  private mark = 0;

  constructor(args: string[], readonly pidFile: string) {
    const cli = join(packageRoot(), 'dist', 'cli', 'main.js');
    const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const cmd = `stty cols 80 rows 24; echo $$ > '${pidFile}'; exec node '${cli}' review ${quoted}`;
    this.child = spawn('script', ['-qfec', cmd, '/dev/null'], {
      env: Object.fromEntries(
        Object.entries({
          ...process.env,
          TERM: 'xterm-256color',
          // as on a CI machine: Ink must still draw every frame in an interactive terminal
          CI: 'true',
        }).filter(([k]) => !['COLORTERM', 'NO_COLOR', 'FORCE_COLOR'].includes(k)),
      ),
    });
    this.child.on('error', (e) => (this.screen += `\n[cannot start util-linux script: ${e.message}]\n`));
    this.child.stdout.on('data', (d: Buffer) => (this.screen += d.toString()));
    this.child.stderr.on('data', (d: Buffer) => (this.screen += d.toString()));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code ?? -1)));
    Pty.started.push(this);
  }

  /** Ends the CLI and `script`, if still running. */
  dispose(): void {
    try {
      process.kill(Number(readFileSync(this.pidFile, 'utf8').trim()), 'SIGKILL');
    } catch {
      // already gone, or never started
    }
    this.child.kill('SIGKILL');
  }

  /** Waits until the output written since the last key contains `text`. */
  async waitFor(text: string, ms = 30_000): Promise<string> {
    const start = Date.now();
    while (Date.now() - start < ms) {
      const since = stripAnsi(this.screen.slice(this.mark));
      if (since.includes(text)) return since;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no '${text}' on screen after ${ms} ms; screen:\n${stripAnsi(this.screen).slice(-3000)}`);
  }

  press(keys: string): void {
    this.mark = this.screen.length;
    this.child.stdin.write(keys);
  }

  /** kill -9 of the fer-clean process itself (not of `script`). */
  kill9(): void {
    process.kill(Number(readFileSync(this.pidFile, 'utf8').trim()), 'SIGKILL');
  }
}

describe('fer-clean review in a pseudo-terminal', { timeout: 180_000 }, () => {
  const t = useTempDir();
  const s = useStore(t, (dir) => seedReviewDb(join(dir, 'r.db'), { images: 6 }));
  afterEach(() => {
    for (const p of Pty.started.splice(0)) p.dispose();
  });

  it('the default learning order: the estimate on screen, decisions stored with it', async () => {
    const db = join(t.dir, 'r.db');
    const pty = new Pty(['--db', db, '--annotator', 'dora', '--color', 'none'], join(t.dir, 'pid'));
    await pty.waitFor('0/6 reviewed');
    // The estimates are loaded after the first frame (from the run alone here: no validation split, raw probability).
    await pty.waitFor('P(accept) 0.70 · prior');
    pty.press('a');
    await pty.waitFor('1/6 reviewed');
    pty.press('q');
    expect(await pty.exited).toBe(0);
    const rows = decisionsOfRun(s.db, s.runId);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.estimate).toBeGreaterThan(0);
  });

  // The tests below walk a fixed order (--order margin: insertion order here).
  it('makes decisions, survives kill -9 with every decision shown as made, resumes, and quits cleanly', async () => {
    expect(existsSync(join(packageRoot(), 'dist', 'cli', 'main.js')), 'run `npm run build` first').toBe(true);
    const db = join(t.dir, 'r.db');
    const path = (k: number) => `${s.images[k]!.path} (train)`;
    const pty = new Pty(['--db', db, '--order', 'margin', '--annotator', 'carol', '--color', '256'], join(t.dir, 'pid'));
    // The face is drawn (so the process really had a TTY: review refuses to start without one).
    await pty.waitFor(path(0));
    await pty.waitFor('▀');
    await pty.waitFor('0/6 reviewed');
    await pty.waitFor('a/⏎ accept');
    pty.press('a');
    await pty.waitFor(path(1));
    pty.press('r');
    await pty.waitFor(path(2));
    pty.press('3');
    await pty.waitFor(path(3));
    pty.press('s');
    await pty.waitFor(path(4));
    await pty.waitFor('3/6 reviewed · 1 accepted · 1 rejected · 1 manual');
    pty.kill9();
    await pty.exited;

    const rows = decisionsOfRun(s.db, s.runId);
    expect(rows.map((r) => [r.image_id, r.action, r.new_label, r.annotator])).toEqual([
      [s.images[0]!.imageId, 'accepted', s.images[0]!.proposed, 'carol'],
      [s.images[1]!.imageId, 'rejected', s.images[1]!.given, 'carol'],
      [s.images[2]!.imageId, 'manual', 'fear', 'carol'],
      [s.images[3]!.imageId, 'skipped', s.images[3]!.given, 'carol'],
    ]);

    // Reopened: resumes at the first undecided item (the skipped one), although the dead session's lease on
    // item 4 has not expired yet; then undo, decide, walk to the end and quit.
    const again = new Pty(['--db', db, '--order', 'margin', '--annotator', 'carol', '--color', 'none'], join(t.dir, 'pid2'));
    await again.waitFor(path(3));
    await again.waitFor('3/6 done · 1 acc · 1 rej · 1 man'); // short form: '1 held by others' makes it long
    again.press('a');
    await again.waitFor(path(5));
    again.press('u');
    await again.waitFor('undid accepted');
    again.press('\r');
    await again.waitFor(path(5));
    again.press('a');
    await again.waitFor('1 item(s) are being reviewed by other annotators');
    await again.waitFor('5/6 done');
    again.press('q');
    expect(await again.exited).toBe(0);
    expect(stripAnsi(again.screen)).toContain('run 1: 5/6 reviewed (3 accepted, 1 rejected, 1 manual)');

    // `fer-clean export` after the review writes the expected final labels.
    const io = captureIo(t.dir);
    expect(await run(['export', join(t.dir, 'final.csv'), '--db', db], io)).toBe(0);
    const csv = parse(readFileSync(join(t.dir, 'final.csv')), { columns: true }) as Record<string, string>[];
    const final = new Map(csv.map((r) => [r['path'], [r['final_label'], r['decision']]]));
    const expected = [
      [s.images[0]!.proposed, 'accepted'],
      [s.images[1]!.given, 'rejected'],
      ['fear', 'manual'],
      [s.images[3]!.proposed, 'accepted'],
      [s.images[4]!.given, 'none'],
      [s.images[5]!.proposed, 'accepted'],
    ];
    expect(s.images.map((i) => final.get(i.path))).toEqual(expected);
    // The dead session's lease was on item 4; the quit released carol's own claims.
    const claims = s.db.prepare(`SELECT image_id FROM claims`).all() as { image_id: number }[];
    expect(claims.map((c) => c.image_id)).toEqual([s.images[4]!.imageId]);
  });

  it('two terminals on one database never show the same image', async () => {
    const db = join(t.dir, 'r.db');
    const path = (k: number) => `${s.images[k]!.path} (train)`;
    const a = new Pty(['--db', db, '--order', 'margin', '--annotator', 'ann', '--color', 'none'], join(t.dir, 'pa'));
    await a.waitFor(path(0));
    const b = new Pty(['--db', db, '--order', 'margin', '--annotator', 'ben', '--color', 'none'], join(t.dir, 'pb'));
    await b.waitFor(path(1));
    a.press('a');
    await a.waitFor(path(2));
    b.press('r');
    await b.waitFor(path(3));
    a.press('a');
    await a.waitFor(path(4));
    a.press('q');
    b.press('q');
    expect([await a.exited, await b.exited]).toEqual([0, 0]);
    const rows = decisionsOfRun(s.db, s.runId);
    expect(rows.map((r) => [r.annotator, r.image_id])).toEqual([
      ['ann', s.images[0]!.imageId],
      ['ben', s.images[1]!.imageId],
      ['ann', s.images[2]!.imageId],
    ]);
    expect(s.db.prepare(`SELECT count(*) AS n FROM claims`).get()).toEqual({ n: 0 });
  });
});
