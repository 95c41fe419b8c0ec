import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { cleanup, render } from 'ink-testing-library';
import { App } from '../src/review/terminal/App.js';
import { decisionsOfRun } from '../src/review/domain/decisions.js';
import { BULK_START, handleKey, initialKeyState } from '../src/review/terminal/keys.js';
import { REFIT_EVERY } from '../src/review/estimates/learner.js';
import { ReviewSession } from '../src/review/session/session.js';
import { nextItems } from '../src/review/verbs.js';
import { useStore, useTempDir } from './helpers.js';
import { seedSynthetic } from './learn-helpers.js';

const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

async function until(frame: () => string | undefined, ok: (f: string) => boolean, what: string): Promise<string> {
  const start = Date.now();
  while (Date.now() - start < 20_000) {
    const f = stripAnsi(frame() ?? '');
    if (ok(f)) return f;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}; last frame:\n${stripAnsi(frame() ?? '')}`);
}

describe('keys: bulk accept needs a confirmation', () => {
  const tax = ['anger', 'neutral'];
  it('b offers at 0.95, + and - move the threshold, y accepts, any other key cancels', () => {
    let r = handleKey(initialKeyState(tax), { input: 'b' });
    expect(r.state.mode).toBe('bulk');
    expect(r.effect).toEqual({ kind: 'bulk-offer', min: BULK_START });
    r = handleKey(r.state, { input: '+' });
    expect(r.effect).toEqual({ kind: 'bulk-offer', min: 0.96 });
    r = handleKey(r.state, { input: '-' });
    r = handleKey(r.state, { input: '-' });
    expect(r.effect).toEqual({ kind: 'bulk-offer', min: 0.94 });
    const yes = handleKey(r.state, { input: 'y' });
    expect([yes.state.mode, yes.effect]).toEqual(['main', { kind: 'bulk', min: 0.94 }]);
    // 'a' in the confirmation does not accept the item shown: it cancels.
    const no = handleKey(r.state, { input: 'a' });
    expect([no.state.mode, no.effect]).toEqual(['main', { kind: 'say', status: 'bulk accept cancelled' }]);
    let top = handleKey(initialKeyState(tax), { input: 'b' });
    for (let k = 0; k < 10; k++) top = handleKey(top.state, { input: '+' });
    expect(top.effect).toEqual({ kind: 'bulk-offer', min: 1 });
  });
});

describe('review session in the learning order', () => {
  const t = useTempDir();
  const s = useStore(t, (dir) => seedSynthetic(join(dir, 'r.db')));
  let session: ReviewSession;
  afterEach(() => {
    cleanup();
    session?.close();
  });
  const truth = () => new Map(s.proposals.map((p) => [p.imageId, p]));

  it('re-ranks what follows the item shown by the estimate, refitted every few decisions; decisions store the estimate', () => {
    session = ReviewSession.open(s.db, { annotator: 'ana', runId: s.runId, order: 'estimate' }).start();
    const first = session.current!;
    expect(session.estimateOf(first)).toBeUndefined();
    expect(session.relearnDue()).toBe(true);
    session.relearn();
    expect(session.relearnDue()).toBe(false);
    expect(session.current).toBe(first); // the item shown stays
    const q = nextItems(s.db, { runId: s.runId, annotator: 'ana' }); // ana's own lease on the item shown counts as hers
    expect(session.estimateOf(first)).toBeCloseTo(q.items.find((i) => i.imageId === first.imageId)!.estimate, 10);
    // After the item shown, the queue's order.
    session.decide('accepted');
    const expected = q.items.filter((i) => i.imageId !== first.imageId).map((i) => i.imageId);
    expect(session.current!.imageId).toBe(expected[0]);
    const tr = truth();
    for (let k = 1; k < REFIT_EVERY; k++) {
      const it = tr.get(session.current!.imageId)!;
      session.decide(it.truth === it.proposed ? 'accepted' : 'rejected');
    }
    expect(session.relearnDue()).toBe(true);
    session.relearn();
    expect(session.learner.lastFit!.fittedOn).toBe(REFIT_EVERY);
    // The item shown stays; what comes after it is the queue's order now (same refit, same seed).
    const shown = session.current!;
    const q2 = nextItems(s.db, { runId: s.runId, limit: 5, annotator: 'ana' });
    session.decide('rejected');
    expect(session.current!.imageId).toBe(q2.items.filter((i) => i.imageId !== shown.imageId)[0]!.imageId);
    const rows = decisionsOfRun(s.db, s.runId);
    expect(rows).toHaveLength(REFIT_EVERY + 1);
    expect(rows.every((r) => typeof r.estimate === 'number' && r.estimate > 0 && r.estimate < 1)).toBe(true);
  });

  it('a filter keeps the learning order (decided items first, so ← goes back to them)', () => {
    session = ReviewSession.open(s.db, { annotator: 'ana', runId: s.runId, order: 'estimate' }).start();
    session.relearn();
    const first = session.current!;
    session.decide('accepted');
    // The order of the session's last refit (the queue's has refitted on the decision since).
    const ranked = [...session.items]
      .filter((i) => session.decisionOf(i) === undefined)
      .sort((a, b) => session.learner.rankOf(a.imageId) - session.learner.rankOf(b.imageId));
    session.setFilter({ by: 'given', cls: 'fear' });
    expect(session.current!.imageId).toBe(ranked.find((i) => i.given === 'fear')!.imageId);
    session.setFilter(null);
    expect(session.current!.imageId).toBe(ranked[0]!.imageId);
    expect(session.move(-1).status).toBeNull();
    expect(session.current!.imageId).toBe(first.imageId);
  });

  it('bulk accept from the session: every undecided item at or above P, then one u undoes all of it', () => {
    session = ReviewSession.open(s.db, { annotator: 'ana', runId: s.runId, order: 'estimate' }).start();
    session.relearn();
    expect(() => session.previewBulk(0.9)).toThrow(/needs at least 200/);
    const tr = truth();
    for (let k = 0; k < 200; k++) {
      const it = tr.get(session.current!.imageId)!;
      session.decide(it.truth === it.proposed ? 'accepted' : it.truth === it.given ? 'rejected' : 'manual', it.truth === it.proposed || it.truth === it.given ? undefined : it.truth);
      if (session.relearnDue()) session.relearn();
    }
    const offer = session.previewBulk(0.8);
    expect(offer.fittedOn).toBe(200);
    expect(offer.items).toBeGreaterThan(0);
    const before = session.stats().reviewed;
    const out = session.bulkAccept(0.8);
    expect(out.status).toMatch(new RegExp(`accepted ${offer.items} proposal\\(s\\) with estimate >= 0.8`));
    expect(session.stats().reviewed).toBe(before + offer.items);
    expect(session.current === undefined || session.decisionOf(session.current) === undefined).toBe(true);
    const undo = session.undo();
    expect(undo.status).toBe(`undid bulk accept ${decisionsOfRun(s.db, s.runId).find((r) => r.bulk_id)!.bulk_id}: ${offer.items} proposal(s) undecided again`);
    expect(session.stats().reviewed).toBe(before);
  });

  it('App: shows the estimate, and b explains why there is no bulk accept yet', async () => {
    session = ReviewSession.open(s.db, { annotator: 'ana', runId: s.runId, order: 'estimate' }).start();
    const app = render(<App session={session} colorMode="none" />);
    let f = await until(app.lastFrame, (x) => /P\(accept\) 0\.\d\d · prior/.test(x), 'the estimate');
    app.stdin.write('b');
    f = await until(app.lastFrame, (x) => x.includes('bulk accept: run'), 'the refusal');
    expect(f).toMatch(/bulk accept: run \d+ has 0 reviewer decision\(s\) on its proposals; bulk accept needs at least 200/);
    // Back in the main view: a accepts the item shown.
    app.stdin.write('a');
    await until(app.lastFrame, (x) => x.includes('1/400 reviewed'), 'a decision');
  });

  it('App: b shows how many and the expected number wrong; y accepts them', async () => {
    session = ReviewSession.open(s.db, { annotator: 'ana', runId: s.runId, order: 'estimate' }).start();
    session.relearn();
    const tr = truth();
    for (let k = 0; k < 200; k++) {
      const it = tr.get(session.current!.imageId)!;
      session.decide(it.truth === it.proposed ? 'accepted' : 'rejected');
      if (session.relearnDue()) session.relearn();
    }
    const app = render(<App session={session} colorMode="none" />);
    await until(app.lastFrame, (x) => x.includes('200/400 reviewed'), 'the session');
    app.stdin.write('b');
    app.stdin.write('-');
    app.stdin.write('-');
    app.stdin.write('-');
    app.stdin.write('-');
    app.stdin.write('-');
    const f = await until(app.lastFrame, (x) => x.includes('estimate >= 0.90'), 'the offer at 0.90');
    const offer = session.previewBulk(0.9);
    expect(f).toContain(`${offer.items} proposal(s) would be accepted; expected wrong: ${offer.expectedWrong.toFixed(1)}`);
    app.stdin.write('y');
    await until(app.lastFrame, (x) => x.includes(`${200 + offer.items}/400 reviewed`), 'the bulk accept');
  });
});
