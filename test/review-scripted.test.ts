import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { claimImage } from '../src/review/domain/claims.js';
import { decisionsOfRun, decisionsInForce } from '../src/review/domain/decisions.js';
import { finalLabels } from '../src/export/index.js';
import { formatEstimateSummary, loadEstimates, MIN_DECISIONS_FOR_BULK, summarizeEstimates } from '../src/review/estimates/run-estimates.js';
import { loadQueue } from '../src/review/domain/proposals.js';
import { resolveRun } from '../src/store/runs.js';
import { bulkAccept, decideFromCsv, nextItems, previewBulkAccept, undoLastScripted } from '../src/review/verbs.js';
import { cliRunner, useStore, useTempDir } from './helpers.js';
import { seedSynthetic, simulatedAction } from './learn-helpers.js';

const t = useTempDir();
const s = useStore(t, (dir) => seedSynthetic(join(dir, 'r.db')));

const csv = (name: string, rows: string[][]): string => {
  const f = join(t.dir, name);
  writeFileSync(f, ['path,action,label', ...rows.map((r) => r.join(','))].join('\n') + '\n');
  return f;
};
const byPath = () => new Map(s.proposals.map((p) => [p.path, p]));

/** Decides the next `k` queue items as the simulated reviewer, through nextItems + decideFromCsv. */
function decideNext(k: number, annotator = 'sim', name = 'batch.csv'): void {
  const paths = byPath();
  const q = nextItems(s.db, { runId: s.runId, limit: k, annotator });
  const rows = q.items.map((it) => {
    const a = simulatedAction(paths.get(it.path)!);
    return [it.path, a.action, a.label];
  });
  decideFromCsv(s.db, { runId: s.runId, annotator, file: csv(name, rows) });
}

describe('queue', () => {
  it('before any decision: the prior from the validation split, every proposal undecided, estimate order', () => {
    const q = nextItems(s.db, { runId: s.runId });
    expect(q.estimate).toEqual({ prior: 'valid-reference', priorRows: 300, fittedOn: 0 });
    expect([q.total, q.undecided, q.items.length]).toEqual([400, 400, 400]);
    // nothing decided yet: no random draw, the prior's estimate alone orders the queue (highest first)
    expect(q.items.filter((i) => i.explore)).toHaveLength(0);
    for (let i = 1; i < q.items.length; i++) expect(q.items[i - 1]!.estimate).toBeGreaterThanOrEqual(q.items[i]!.estimate);
    expect(nextItems(s.db, { runId: s.runId, limit: 5 }).items.map((i) => i.path)).toEqual(q.items.slice(0, 5).map((i) => i.path));
    // --order margin is the review session's margin order.
    const margin = nextItems(s.db, { runId: s.runId, order: 'margin' });
    expect(margin.items.map((i) => i.imageId)).toEqual(loadQueue(s.db, resolveRun(s.db, { runId: s.runId }), 'margin').map((i) => i.imageId));
  });

  it('learns from decisions: the pair that reviewers reject sinks, decided items leave the queue', () => {
    decideNext(100);
    const q = nextItems(s.db, { runId: s.runId });
    expect(q.estimate.fittedOn).toBe(100);
    expect(q.undecided).toBe(300);
    const mean = (g: string) => {
      const v = q.items.filter((i) => i.given === g);
      return v.reduce((a, i) => a + i.estimate, 0) / v.length;
    };
    expect(mean('anger')).toBeGreaterThan(0.75);
    expect(mean('fear')).toBeLessThan(0.35);
    expect(q.items.slice(0, 100).filter((i) => i.given === 'anger').length).toBeGreaterThan(80);
    // once decisions exist, every tenth place is a random draw, marked as such
    expect(q.items.filter((i) => i.explore)).toHaveLength(30);
    q.items.forEach((it, p) => expect(it.explore).toBe((p + 1) % 10 === 0));
  });

  it('leaves out items leased to other annotators', () => {
    const first = nextItems(s.db, { runId: s.runId, limit: 1 }).items[0]!;
    const run = resolveRun(s.db, { runId: s.runId });
    expect(claimImage(s.db, { runId: run.id, sessionId: 'other', annotator: 'bob' }, first.imageId).ok).toBe(true);
    expect(nextItems(s.db, { runId: s.runId, limit: 1 }).items[0]!.imageId).not.toBe(first.imageId);
    expect(nextItems(s.db, { runId: s.runId, limit: 1, annotator: 'bob' }).items[0]!.imageId).toBe(first.imageId);
  });
});

describe('decide', () => {
  it('applies a CSV through the audit trail, with the estimate; the same file twice changes nothing', () => {
    const [a, b, c] = s.proposals;
    const f = csv('d.csv', [
      [a!.path, 'accepted', ''],
      [b!.path, 'rejected', ''],
      [c!.path, 'manual', 'happiness'],
    ]);
    const r = decideFromCsv(s.db, { runId: s.runId, annotator: 'ana', file: f });
    expect([r.accepted, r.rejected, r.manual, r.unchanged]).toEqual([1, 1, 1, 0]);
    const rows = decisionsOfRun(s.db, s.runId);
    expect(rows.map((d) => [d.image_id, d.action, d.new_label, d.annotator])).toEqual([
      [a!.imageId, 'accepted', a!.proposed, 'ana'],
      [b!.imageId, 'rejected', b!.given, 'ana'],
      [c!.imageId, 'manual', 'happiness', 'ana'],
    ]);
    for (const d of rows) {
      expect(d.estimate).toBeGreaterThan(0);
      expect(d.bulk_id).toBeNull();
    }
    const again = decideFromCsv(s.db, { runId: s.runId, annotator: 'ana', file: f });
    expect([again.accepted, again.rejected, again.manual, again.unchanged]).toEqual([0, 0, 0, 3]);
    expect(decisionsOfRun(s.db, s.runId)).toHaveLength(3);
  });

  it('names every bad line (file:line) and applies nothing', () => {
    const [a, b, c, d] = s.proposals;
    decideFromCsv(s.db, { runId: s.runId, annotator: 'bob', file: csv('bob.csv', [[d!.path, 'accepted', '']]) });
    const f = csv('bad.csv', [
      [a!.path, 'accepted', ''],
      ['images/train/nope.png', 'accepted', ''],
      [b!.path, 'manual', 'joy'],
      [c!.path, 'maybe', ''],
      [a!.path, 'rejected', ''],
      [d!.path, 'rejected', ''],
    ]);
    let err: (Error & { details?: readonly string[] }) | undefined;
    try {
      decideFromCsv(s.db, { runId: s.runId, annotator: 'ana', file: f });
    } catch (e) {
      err = e as Error & { details?: readonly string[] };
    }
    expect(err?.message).toBe('bad.csv: 5 problems; nothing was applied');
    expect(err?.details).toEqual([
      `bad.csv:3: 'images/train/nope.png' is not a proposal of run ${s.runId}`,
      `bad.csv:4: unknown label 'joy' (classes: ${s.taxonomy.join(', ')})`,
      `bad.csv:5: action 'maybe' is not one of accepted, rejected, manual`,
      `bad.csv:6: '${a!.path}' already appears on line 2`,
      `bad.csv:7: '${d!.path}' was already decided by bob (accepted -> ${d!.proposed})`,
    ]);
    expect(decisionsOfRun(s.db, s.runId)).toHaveLength(1);
  });

  it('refuses an item another session holds', () => {
    const [a] = s.proposals;
    claimImage(s.db, { runId: s.runId, sessionId: 'ink', annotator: 'carol' }, a!.imageId);
    expect(() => decideFromCsv(s.db, { runId: s.runId, annotator: 'ana', file: csv('x.csv', [[a!.path, 'accepted', '']]) })).toThrow(
      `x.csv:2: '${a!.path}' is being reviewed by carol now (in another session); nothing was applied`,
    );
    expect(decisionsOfRun(s.db, s.runId)).toHaveLength(0);
  });
});

describe('bulk accept', () => {
  it('refuses a threshold outside (0, 1] and a run with too few decisions', () => {
    for (const p of [0, -0.1, 1.5, Number.NaN]) {
      expect(() => bulkAccept(s.db, { runId: s.runId, annotator: 'ana', minEstimate: p })).toThrow(`minEstimate must be a number in (0, 1], got '${p}'`);
    }
    decideNext(50);
    expect(() => bulkAccept(s.db, { runId: s.runId, annotator: 'ana', minEstimate: 0.9 })).toThrow(
      `run ${s.runId} has 50 reviewer decision(s) on its proposals; bulk accept needs at least ${MIN_DECISIONS_FOR_BULK} to estimate from (150 more)`,
    );
  });

  it('accepts every undecided proposal at or above P, each a bulk decision; one undo reverts them all', () => {
    for (let k = 0; k < 4; k++) decideNext(50, 'sim', `b${k}.csv`);
    const before = decisionsOfRun(s.db, s.runId).length;
    const preview = previewBulkAccept(s.db, { runId: s.runId, annotator: 'ana', minEstimate: 0.8 });
    expect(preview.fittedOn).toBe(200);
    expect(preview.items).toBeGreaterThan(10);
    const r = bulkAccept(s.db, { runId: s.runId, annotator: 'ana', minEstimate: 0.8 });
    expect([r.items, r.expectedWrong]).toEqual([preview.items, preview.expectedWrong]);
    expect(r.expectedWrong).toBeLessThan(0.2 * r.items);
    const rows = decisionsOfRun(s.db, s.runId).slice(before);
    expect(rows).toHaveLength(r.items);
    for (const d of rows) {
      expect(d.action).toBe('accepted');
      expect(d.bulk_id).toBe(r.bulkId);
      expect(d.estimate).toBeGreaterThanOrEqual(0.8);
    }
    // The bulk accepts are mostly the pair reviewers accept.
    const truth = new Map(s.proposals.map((p) => [p.imageId, p]));
    const right = rows.filter((d) => truth.get(d.image_id)!.truth === d.new_label).length;
    expect(right / rows.length).toBeGreaterThan(0.8);
    const bulk = s.db.prepare(`SELECT * FROM bulk_actions WHERE id = ?`).get(r.bulkId) as { items: number; rule: string; annotator: string };
    expect(bulk).toMatchObject({ items: r.items, annotator: 'ana', rule: 'accept every undecided proposal with estimate >= 0.8' });
    // A bulk accept does not teach the estimate (only reviewers' decisions do).
    expect(nextItems(s.db, { runId: s.runId }).estimate.fittedOn).toBe(200);

    const effectiveBefore = decisionsInForce(s.db, { runId: s.runId }).size;
    const u = undoLastScripted(s.db, { runId: s.runId, annotator: 'ana' });
    expect(u?.count).toBe(r.items);
    expect(decisionsInForce(s.db, { runId: s.runId }).size).toBe(effectiveBefore - r.items);
    expect(s.db.prepare(`SELECT count(*) AS n FROM claims`).get()).toEqual({ n: 0 });
    // The next undo goes to ana's previous action: there is none.
    expect(undoLastScripted(s.db, { runId: s.runId, annotator: 'ana' })).toBeUndefined();
  });
});

describe('the estimate in report and export', () => {
  it('report: source, what is left, and the estimates shown at decision time against the outcome', () => {
    decideNext(100);
    const run = resolveRun(s.db, { runId: s.runId });
    const sum = summarizeEstimates(s.db, run);
    expect(sum).toMatchObject({ prior: 'valid-reference', priorRows: 300, fittedOn: 100, proposals: 400, undecided: 300 });
    expect(sum.histogram.reduce((a, b) => a + b, 0)).toBe(300);
    expect(sum.calibration.reduce((a, b) => a + b.n, 0)).toBe(100);
    const q = nextItems(s.db, { runId: s.runId });
    expect(sum.expectedAccepted).toBeCloseTo(q.items.reduce((a, i) => a + i.estimate, 0), 6);
    const lines = formatEstimateSummary(sum);
    expect(lines[0]).toMatch(/^estimated correctness \(P a reviewer accepts\): prior valid-reference \(300 validation images\), refitted on 100 reviewer decision\(s\); 300 of 400 proposals undecided/);
    // export: every proposal carries the same estimate as the queue, other images none.
    const rows = finalLabels(s.db, { dataset: run.dataset, runId: s.runId }).rows;
    const est = new Map(q.items.map((i) => [i.path, i.estimate]));
    for (const r of rows) {
      if (r.split === 'valid') expect(r.estimate).toBeNull();
      else if (est.has(r.path)) expect(r.estimate).toBeCloseTo(est.get(r.path)!, 3);
      else expect(r.estimate).toBeGreaterThan(0);
    }
  });
});

describe('CLI: queue, decide, accept, undo', () => {
  const cli = cliRunner({ cwd: () => t.dir, db: () => join(t.dir, 'r.db') });

  it('queue --json, decide FILE, accept --min-estimate, undo', async () => {
    let r = await cli('queue', '--run', String(s.runId), '--limit', '3', '--json');
    expect(r.code).toBe(0);
    const q = JSON.parse(r.stdout) as { run: number; undecided: number; items: { path: string; given: string; proposed: string; margin: number; importance: number; estimate: number }[] };
    expect(q.run).toBe(s.runId);
    expect(q.items).toHaveLength(3);
    expect(Object.keys(q.items[0]!).sort()).toEqual(['estimate', 'explore', 'given', 'imageId', 'importance', 'margin', 'path', 'proposed', 'split']);
    // text: nothing decided, so no line is a random draw
    r = await cli('queue', '--run', String(s.runId), '--limit', '10');
    expect(r.stdout.split('\n').filter((l) => l.endsWith('(random draw)'))).toHaveLength(0);
    const f = csv('cli.csv', [[q.items[0]!.path, 'accepted', '']]);
    r = await cli('decide', '--run', String(s.runId), '--annotator', 'ana', f);
    // text after a decision: the tenth item is a random draw and says so
    const lines = (await cli('queue', '--run', String(s.runId), '--limit', '10')).stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(11);
    expect(lines.slice(1).map((l) => l.endsWith('  (random draw)'))).toEqual([false, false, false, false, false, false, false, false, false, true]);
    expect([r.code, r.stdout]).toEqual([0, `run ${s.runId}: 1 decision(s) by ana (1 accepted, 0 rejected, 0 manual)\n`]);
    r = await cli('decide', '--run', String(s.runId), '--annotator', 'ana', csv('bad.csv', [['nope.png', 'accepted', '']]));
    expect([r.code, r.stderr]).toEqual([1, `fer-clean decide: bad.csv:2: 'nope.png' is not a proposal of run ${s.runId}; nothing was applied\n`]);
    r = await cli('accept', '--run', String(s.runId), '--annotator', 'ana', '--min-estimate', '1.5');
    expect([r.code, r.stderr]).toEqual([1, "fer-clean accept: --min-estimate must be a number in (0, 1], got '1.5'\n"]);
    r = await cli('accept', '--run', String(s.runId), '--annotator', 'ana', '--min-estimate', '0.9');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/needs at least 200 to estimate from \(199 more\)/);
    r = await cli('undo', '--run', String(s.runId), '--annotator', 'ana');
    expect(r.stdout).toMatch(/undid accepted on image \d+ \(back to anger\)/);
    r = await cli('decide', '--run', String(s.runId), f);
    expect(r.stderr).toMatch(/pass --annotator NAME/);
  });
});

it('calibrates the prior on every k-th validation image beyond maxPriorRows (1M images: 72k rows of JSON)', () => {
  const run = resolveRun(s.db, { runId: s.runId });
  const valid = (s.db.prepare(`SELECT count(*) AS n FROM images WHERE split = 'valid'`).get() as { n: number }).n;
  expect(loadEstimates(s.db, run, { maxPriorRows: valid }).model.prior).toMatchObject({ source: 'valid-reference', rows: 300 });
  const quarter = loadEstimates(s.db, run, { maxPriorRows: Math.ceil(valid / 4) }).model.prior;
  expect(quarter.source).toBe('valid-reference');
  expect(quarter.rows).toBeGreaterThan(40);
  expect(quarter.rows).toBeLessThan(110);
});
