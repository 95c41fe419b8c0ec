import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Learner, REFIT_EVERY } from '../src/review/learner.js';
import { resolveRun } from '../src/store/runs.js';
import { decideFromCsv, nextItems } from '../src/review/scripted.js';
import { tempDir } from './helpers.js';
import { seedSynthetic, simulatedAction, type Synthetic } from './learn-helpers.js';

let t: ReturnType<typeof tempDir>;
let s: Synthetic;
beforeEach(() => {
  t = tempDir();
  s = seedSynthetic(join(t.dir, 'r.db'));
});
afterEach(() => {
  s.db.close();
  t.cleanup();
});

describe('Learner: the review session estimates', () => {
  it('follows the queue: same estimates and order after each refit', () => {
    const l = new Learner(s.db, resolveRun(s.db, { runId: s.runId }));
    expect([l.ready, l.due, l.estimate(s.proposals[0]!.imageId)]).toEqual([false, true, undefined]);
    l.relearn();
    expect([l.ready, l.due, l.lastFit?.fittedOn]).toEqual([true, false, 0]);
    const q = nextItems(s.db, { runId: s.runId });
    q.items.forEach((it, k) => {
      expect(l.rankOf(it.imageId)).toBe(k);
      expect(l.estimate(it.imageId)).toBeCloseTo(it.estimate, 10);
      expect(l.isExplore(it.imageId)).toBe(it.explore);
    });
    const truth = new Map(s.proposals.map((p) => [p.path, p]));
    const f = join(t.dir, 'd.csv');
    writeFileSync(f, ['path,action,label', ...q.items.slice(0, 60).map((it) => { const a = simulatedAction(truth.get(it.path)!); return `${it.path},${a.action},${a.label}`; })].join('\n'));
    decideFromCsv(s.db, { runId: s.runId, annotator: 'sim', file: f });
    l.pending = REFIT_EVERY;
    expect(l.due).toBe(true);
    l.relearn();
    expect(l.lastFit?.fittedOn).toBe(60);
    expect(l.rankOf(q.items[0]!.imageId)).toBe(Infinity); // decided
    const q2 = nextItems(s.db, { runId: s.runId, limit: 20 });
    q2.items.forEach((it, k) => expect(l.rankOf(it.imageId)).toBe(k));
  });
});
