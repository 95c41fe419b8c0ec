import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { ReviewSession } from '../src/review/session/session.js';
import { loadQueue, loadQueueHead, REVIEW_ORDERS } from '../src/review/domain/proposals.js';
import { recordDecision } from '../src/review/domain/decisions.js';
import { releaseClaims } from '../src/review/domain/claims.js';
import { resolveRun } from '../src/store/runs.js';
import { cleanup, render } from 'ink-testing-library';
import { App } from '../src/review/terminal/App.js';
import { useStore, useTempDir } from './helpers.js';
import { seedReviewDb } from './review-helpers.js';

/**
 * Issue 10: a session opens on the first window of its queue (loadQueueHead) and reads the rest after its first
 * frame (loadRest), or as soon as a step needs it. These tests open sessions with a window of 3 on a 30-item queue.
 */
describe('review queue read in a first window', () => {
  const t = useTempDir();
  const s = useStore(t, (dir) => seedReviewDb(join(dir, 'w.db'), { images: 40, proposals: 30 }));

  const open = (annotator = 'alice') => ReviewSession.open(s.db, { annotator, firstWindow: 3, order: 'margin' });
  const marginOrder = () => loadQueue(s.db, resolveRun(s.db, { runId: s.runId }), 'margin').map((i) => i.imageId);

  it('the window is the prefix of the whole queue in every order, with tied and missing margins and importances', () => {
    // Ties and NULLs: the comparator in JS (whole queue) must agree with ORDER BY in SQL (window).
    s.db.exec(`UPDATE run_images SET proposal_margin = 0.5 WHERE image_id % 3 = 0;
               UPDATE run_images SET proposal_margin = NULL WHERE image_id % 7 = 0;
               UPDATE run_images SET importance = 0.25 WHERE image_id % 4 = 0;
               UPDATE run_images SET importance = NULL WHERE image_id % 5 = 0;`);
    const run = resolveRun(s.db, { runId: s.runId });
    for (const order of REVIEW_ORDERS) {
      const all = loadQueue(s.db, run, order);
      expect(all).toHaveLength(30);
      for (const k of [1, 2, 5, 13, 30, 31]) {
        const head = loadQueueHead(s.db, run, order, k);
        expect(head.map((i) => i.imageId), `${order}, first ${k}`).toEqual(all.slice(0, k).map((i) => i.imageId));
      }
    }
    // Paths are read when asked for, and P(proposed), P(given) come from the run's probs.
    const first = loadQueue(s.db, run, 'margin')[0]!;
    const seeded = s.images.find((i) => i.imageId === first.imageId)!;
    expect([first.path, first.split, first.given, first.proposed]).toEqual([seeded.path, 'train', seeded.given, seeded.proposed]);
    const probs = JSON.parse(
      (s.db.prepare(`SELECT probs FROM run_images WHERE run_id = ? AND image_id = ?`).get(s.runId, first.imageId) as { probs: string }).probs,
    ) as number[];
    expect(first.pProposed).toBe(probs[s.taxonomy.indexOf(first.proposed)]);
    expect(first.pGiven).toBe(probs[s.taxonomy.indexOf(first.given)]);
  });

  it('shows the first face from the window, then goes on past its end in queue order', () => {
    const r = open().start();
    expect(r.loaded).toBe(false);
    expect(r.items).toHaveLength(3);
    expect(r.position).toEqual({ index: 1, of: 30 });
    expect(r.stats().total).toBe(30);
    const order = marginOrder();
    const shown: number[] = [];
    for (let k = 0; k < 6; k++) {
      shown.push(r.current!.imageId);
      r.decide('accepted');
    }
    expect(shown).toEqual(order.slice(0, 6));
    expect(r.loaded).toBe(true);
    expect(r.position).toEqual({ index: 7, of: 30 });
    expect(r.stats()).toMatchObject({ total: 30, reviewed: 6, accepted: 6, sessionDecisions: 6 });
  });

  it('resumes past a window that is all decided, and counts decisions made outside the window once read', () => {
    const order = marginOrder();
    const subject = (id: number) => {
      const i = s.images.find((x) => x.imageId === id)!;
      return { imageId: id, given: i.given, proposed: i.proposed! };
    };
    const bob = { runId: s.runId, sessionId: 'bob-1', annotator: 'bob' };
    for (const id of order.slice(0, 4)) recordDecision(s.db, bob, subject(id), 'rejected');
    const r = open().start();
    expect(r.current?.imageId).toBe(order[4]);
    expect(r.stats()).toMatchObject({ reviewed: 4, rejected: 4 });
    // Another session decides an item far down the queue after this one opened.
    const r2 = open();
    expect(r2.loaded).toBe(false);
    recordDecision(s.db, bob, subject(order[20]!), 'accepted');
    r2.tick();
    r2.loadRest();
    expect(r2.stats()).toMatchObject({ reviewed: 5, accepted: 1, rejected: 4 });
    r.close();
    r2.close();
  });

  it('undo, filters and moves reach items beyond the window', () => {
    const order = marginOrder();
    const alice = { runId: s.runId, sessionId: 'alice-old', annotator: 'alice' };
    const far = s.images.find((x) => x.imageId === order[25])!;
    recordDecision(s.db, alice, { imageId: far.imageId, given: far.given, proposed: far.proposed! }, 'accepted');
    releaseClaims(s.db, 'alice-old'); // that earlier session has quit
    const r = open().start();
    expect(r.undo().status).toMatch(/^undid accepted/);
    expect(r.current?.imageId).toBe(far.imageId);
    r.close();

    const f = open().start();
    const cls = far.proposed!;
    f.setFilter({ by: 'proposed', cls });
    const want = loadQueue(s.db, resolveRun(s.db, { runId: s.runId }), 'margin').filter((i) => i.proposed === cls);
    expect(f.position.of).toBe(want.length);
    f.close();

    const m = open().start();
    for (let k = 0; k < 4; k++) expect(m.move(1).status).toBeNull();
    expect(m.current?.imageId).toBe(order[4]);
    m.close();
  });

  it('the App reads the rest of the queue after its first frame, then fits the estimates, without a key', async () => {
    const r = ReviewSession.open(s.db, { annotator: 'alice', firstWindow: 3 }).start();
    expect([r.loaded, r.learner.ready]).toEqual([false, false]);
    const app = render(<App session={r} colorMode="none" />);
    try {
      const start = Date.now();
      while (!(r.loaded && r.learner.ready) && Date.now() - start < 10_000) await new Promise((res) => setTimeout(res, 5));
      expect([r.loaded, r.learner.ready]).toEqual([true, true]);
      expect(r.items).toHaveLength(30);
      expect(app.lastFrame()).toContain('item 1/30');
    } finally {
      cleanup();
      r.close();
    }
  });
});
